#!/usr/bin/env node
// The compiled CLI; `npm run build` produces it (npm install runs the build through "prepare").
// `npm run cli` starts in the package's folder; a relative path means the folder the user ran npm from.
if (process.env.npm_lifecycle_event === 'cli' && process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
await import('../dist/shared/cli/main.js');
