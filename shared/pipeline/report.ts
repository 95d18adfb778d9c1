/**
 * Reports the pipeline writes next to each run: JSON for machines (values as
 * read, unchanged) and HTML for people (every value escaped, so a hostile cell
 * such as <script> or a formula stays inert text). Never a secret.
 */
import type { Problem } from '../core/problems.js';
import type { ReportNames } from './blob-names.js';
import type { BlobStore } from './ports.js';

export interface RunReport {
  kind: 'seed-file' | 'assignments' | 'build' | 'programmed' | 'import-results';
  /** Seed or assignment file (container/name), the build id, or the programming batch. */
  subject: string;
  batch?: string;
  startedAt: string;
  finishedAt: string;
  outcome: 'completed' | 'completed-with-problems' | 'rejected' | 'nothing-to-do';
  summary: string;
  counts: Record<string, number>;
  details?: Record<string, string | number | boolean | null>;
  /** Per-item results (serial and what happened), in the CLI's shape where it applies. */
  items: { serial: string; result: string; upn?: string; file?: string }[];
  problems: Problem[];
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(value: string | number | boolean | null | undefined): string {
  return String(value ?? '').replace(/[&<>"'`]/g, (c) => HTML_ESCAPES[c]!);
}

export function renderReportJson(report: RunReport): string {
  return JSON.stringify(report, null, 2) + '\n';
}

/** Writes the report as JSON (for machines) and HTML (for people); returns the JSON's name, which results point to. */
export async function writeRunReport(blobs: BlobStore, container: string, names: ReportNames, report: RunReport): Promise<string> {
  await writeRunReportJson(blobs, container, names.reportJson, report);
  await blobs.write(container, names.reportHtml, renderReportHtml(report), { contentType: 'text/html; charset=utf-8' });
  return names.reportJson;
}

/** The JSON form alone (the copy kept beside a quarantined file). */
export async function writeRunReportJson(blobs: BlobStore, container: string, name: string, report: RunReport): Promise<void> {
  await blobs.write(container, name, renderReportJson(report), { contentType: 'application/json' });
}

export function renderReportHtml(report: RunReport): string {
  const rows = (cells: (string | number | boolean | null | undefined)[]) =>
    `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
  const counts = Object.entries(report.counts)
    .map(([k, v]) => rows([k, v]))
    .join('\n');
  // An empty cell says nothing: details without a value are left out.
  const details = Object.entries(report.details ?? {})
    .filter(([, v]) => v !== null && v !== '')
    .map(([k, v]) => rows([k, v]))
    .join('\n');
  const problems = report.problems.map((p) => rows([p.severity, p.code, p.line ?? '', p.serial ?? '', p.message])).join('\n');
  const items = report.items.map((i) => rows([i.serial, i.result, i.upn ?? '', i.file ?? ''])).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escapeHtml(`${report.kind} report: ${report.subject}`)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; white-space: pre-wrap; }
.error { color: #a4262c; } .warning { color: #8a6d00; }
</style>
</head>
<body>
<h1>${escapeHtml(report.kind)} report</h1>
<p><strong>${escapeHtml(report.subject)}</strong></p>
<p>${escapeHtml(report.summary)}</p>
<table><tr><th>outcome</th><td>${escapeHtml(report.outcome)}</td></tr>
${report.batch ? `<tr><th>batch</th><td>${escapeHtml(report.batch)}</td></tr>\n` : ''}<tr><th>started</th><td>${escapeHtml(report.startedAt)}</td></tr>
<tr><th>finished</th><td>${escapeHtml(report.finishedAt)}</td></tr></table>
<h2>Counts</h2>
<table>${counts}</table>
${details ? `<h2>Details</h2>\n<table>${details}</table>` : ''}
<h2>Problems (${report.problems.length})</h2>
<table><tr><th>severity</th><th>code</th><th>line</th><th>serial</th><th>message</th></tr>
${problems}
</table>
<h2>Tokens (${report.items.length})</h2>
<table><tr><th>serial</th><th>result</th><th>user</th><th>file</th></tr>
${items}
</table>
</body>
</html>
`;
}
