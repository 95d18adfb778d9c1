/**
 * Child process of the benchmark: reads one seed file once and prints the
 * process's peak resident memory (getrusage maxrss), so the figure is not
 * mixed with the rest of the benchmark.
 *
 *   node --import tsx bench/parse-memory-child.ts reader|csv-parse <file>
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { fromDist } from './dist.js';

const { readSeedFile } = await fromDist<typeof import('../shared/formats/read-seed-file.js')>('shared/formats/read-seed-file.js');

/** A fixed clock reading for the reader: the benchmark's CSV carries no dates. */
const READ_AT = new Date('2026-06-01T00:00:00Z');
const [mode, file] = process.argv.slice(2);
const bytes = readFileSync(file!);
const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;
const before = { rss: process.memoryUsage().rss, peak: process.resourceUsage().maxRSS * 1024 };
let count: number;
if (mode === 'csv-parse') {
  count = (parse(bytes.toString('utf8'), { relax_column_count: true, skip_empty_lines: true, info: true }) as unknown[]).length - 1;
} else {
  count = readSeedFile(bytes, { now: READ_AT, fileName: 'bench.csv' }).tokens.length;
}
const peak = process.resourceUsage().maxRSS * 1024;
process.stdout.write(`${JSON.stringify({ mode, tokens: count, fileMB: mb(bytes.length), rssBeforeMB: mb(before.rss), peakRssMB: mb(Math.max(peak, before.peak)) })}\n`);
