/**
 * `npm run bench:readme`: rewrites the Performance table in README.md (and in any docs/**.md holding the
 * same markers) from bench/results.json, the file `npm run bench` writes. Figures are never copied by hand.
 *
 *   <!-- bench:table:start --> ... <!-- bench:table:end -->
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../bench/dist.js';

const START = '<!-- bench:table:start -->';
const END = '<!-- bench:table:end -->';

interface Results {
  generatedAt: string;
  machine: { node: string; cpus: number; cpuModel: string; loadAverageAtStart: number[] };
  checks: { figure: string; value: string; target: string; pass: boolean | null }[];
}

const cellText = (text: string) => text.replace(/\|/g, '\\|').trim();

export function benchTable(results: Results): string {
  const { machine } = results;
  const lines = [
    `Measured ${results.generatedAt.slice(0, 10)} on ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node.replace(/^v/, '')} (load average ${machine.loadAverageAtStart[0]} at the start), by \`npm run bench\`:`,
    '',
    '| Figure | Measured | Target | Result |',
    '| --- | --- | --- | --- |',
    ...results.checks.map(
      (c) =>
        `| ${cellText(c.figure)} | **${cellText(c.value)}** | ${cellText(c.target)} | ${c.pass === null ? 'reported' : c.pass ? 'pass' : 'not met'} |`,
    ),
  ];
  return lines.join('\n');
}

/** The text with everything between the markers replaced; undefined when the text has no markers. */
export function replaceBetweenMarkers(text: string, body: string): string | undefined {
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start === -1 || end === -1 || end < start) return undefined;
  return `${text.slice(0, start + START.length)}\n${body}\n${text.slice(end)}`;
}

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? markdownFiles(path) : name.endsWith('.md') ? [path] : [];
  });
}

function main(): void {
  const results = JSON.parse(readFileSync(join(repoRoot, 'bench', 'results.json'), 'utf8')) as Results;
  const body = benchTable(results);
  const files = [join(repoRoot, 'README.md'), ...markdownFiles(join(repoRoot, 'docs'))];
  let written = 0;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const updated = replaceBetweenMarkers(text, body);
    if (updated === undefined || updated === text) continue;
    writeFileSync(file, updated);
    written++;
    process.stdout.write(`Updated ${relative(repoRoot, file)}\n`);
  }
  if (written === 0) process.stdout.write('No table changed.\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
