/**
 * The app's entry (package.json "main"): the imports register every function
 * (imports run first), then the body validates the configuration. Each function
 * file loads the Azure SDKs lazily.
 */
import { loadConfig } from '../shared/config.js';
import './ingestSeedFile.js';
import './continueIngest.js';
import './ingestAssignments.js';
import './reconcile.js';
import './runDueBuild.js';
import './ingestResults.js';
import './verifyActivationCode.js';
import './unlockToken.js';
import './retireToken.js';
import './activateFromSeed.js';
import './programTokens.js';
import './reprogramToken.js';
import './buildImport.js';
import './confirmImportUploaded.js';
import './deleteAssignment.js';
import './setAssignment.js';
import './listAssignments.js';
import './withdrawImport.js';
import './markRemovedFromEntra.js';
import './getToken.js';
import './listTokens.js';
import './health.js';
import './auditSecrets.js';
import './consolePages.js';
import './consoleApi.js';

// Fail at start with the setting's name rather than on the first request.
loadConfig();
