// Child process of the benchmark: reads one seed file once and prints the process's peak resident
// memory (getrusage maxrss), so the figure is not mixed with the rest of the benchmark.
// Plain JavaScript on purpose: no TypeScript loader in the measured process, whose own memory
// (about 30 MB) would otherwise sit under both the reader's figure and csv-parse's.
//
//   node bench/parse-memory-child.js reader|csv-parse <file>
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'csv-parse/sync';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const { readSeedFile } = await import(pathToFileURL(join(repoRoot, 'dist', 'shared', 'formats', 'read-seed-file.js')).href);

const [mode, file] = process.argv.slice(2);
const bytes = readFileSync(file);
const mb = (n) => Math.round((n / (1024 * 1024)) * 10) / 10;
const before = { rss: process.memoryUsage().rss, peak: process.resourceUsage().maxRSS * 1024 };
let count;
if (mode === 'csv-parse') {
  count = parse(bytes.toString('utf8'), { relax_column_count: true, skip_empty_lines: true, info: true }).length - 1;
} else {
  count = readSeedFile(bytes, { fileName: 'bench.csv' }).tokens.length;
}
const peak = process.resourceUsage().maxRSS * 1024;
process.stdout.write(
  `${JSON.stringify({ mode, tokens: count, fileMB: mb(bytes.length), rssBeforeMB: mb(before.rss), peakRssMB: mb(Math.max(peak, before.peak)) })}\n`,
);
