/**
 * Moved to ./drift-windows.ts. Kept only while shared/pipeline/verify.ts (being restructured on another branch)
 * still imports this path: change that import and delete this file.
 */
export { activationWindowSteps, signInWindowSteps } from './drift-windows.js';
