/** Process entry of the `entra-oath` command. */
import { epochMs, systemClock } from '../pipeline/clock.js';
import { runCli } from './cli.js';

const exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stderrIsTTY: process.stderr.isTTY === true,
  now: () => epochMs(systemClock),
});
process.exitCode = exitCode;
