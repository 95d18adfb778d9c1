// Loads one function app's entry in this fresh process, as the local host (and the Functions worker) does:
// `@azure/functions-core` is provided first, then the entry is imported. Prints {"loadMs", "functions"}.
// Plain JavaScript on purpose: no TypeScript loader in the measured process.
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const [entry, coreModulePath] = process.argv.slice(2);
const { coreRegistry, installCoreModule } = await import(pathToFileURL(coreModulePath).href);
const started = performance.now();
installCoreModule(entry);
await import(pathToFileURL(entry).href);
const loadMs = performance.now() - started;
process.stdout.write(`${JSON.stringify({ loadMs, functions: coreRegistry.functions.size })}\n`);
