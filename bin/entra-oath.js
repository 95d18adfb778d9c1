#!/usr/bin/env node
// The compiled CLI; `npm run build` produces it (npm install runs the build through "prepare").
import '../dist/shared/cli/main.js';
