/**
 * The console's pages, rendered on the server from the inventory and the reports. Every value is escaped by
 * `html`; forms that change something are sent by console.js to the console API (api.ts) with a same-origin
 * header, and the API checks the role again.
 */
import { PROBLEM_CODES, type Problem, type ProblemCode } from '../../core/problems.js';
import type { HistoryEvent } from '../../pipeline/inventory.js';
import type { publicTokenView } from '../../pipeline/inventory.js';
import type { InventoryPage, InventoryQuery } from '../../pipeline/inventory-query.js';
import { TOKEN_STATES } from '../../pipeline/inventory-query.js';
import type { RunReport } from '../../pipeline/report.js';
import { can, type Principal } from '../auth.js';
import type { ReportEntry, ReportSummary, StateCounts, WaitingImport } from './data.js';
import { isIdleBuild, reportOfBatch } from './data.js';
import { CONSOLE_API_PATH, consoleUrl, formatDrift, formatTime, html, STATE_LABELS, type Html } from './html.js';

type TokenView = ReturnType<typeof publicTokenView>;

// ---- Overview ------------------------------------------------------------------------------------------------

/**
 * Tokens by state as a bar chart that is also a table: each row names the state and its count in text (what a
 * screen reader reads), and draws the bar as a small SVG beside it, hidden from assistive technology.
 */
export function stateChart(counts: StateCounts): Html {
  const max = Math.max(1, ...counts.counts.map((c) => c.count));
  return html`<figure class="chart">
<table>
<caption>Tokens by state, ${counts.total} in all</caption>
<thead><tr><th scope="col">State</th><th scope="col">Tokens</th><th scope="col"><span class="visually-hidden">Bar</span></th></tr></thead>
<tbody>
${counts.counts.map((c) => {
  const width = c.count === 0 ? 0 : Math.max(0.5, (c.count / max) * 100);
  return html`<tr class="state-${c.state}"><th scope="row">${c.state}</th><td class="count">${c.count}</td>
<td class="bar"><svg aria-hidden="true" focusable="false" viewBox="0 0 100 10" preserveAspectRatio="none"><rect x="0" y="0" width="${width.toFixed(2)}" height="10"></rect></svg></td></tr>`;
})}
</tbody>
</table>
<figcaption>Counted at ${formatTime(counts.countedAt)}.</figcaption>
</figure>`;
}

function outcomeBadge(outcome: string): Html {
  const words: Record<string, string> = {
    completed: 'Completed',
    'completed-with-problems': 'Completed with problems',
    rejected: 'Rejected',
    'nothing-to-do': 'Nothing to do',
  };
  return html`<span class="badge outcome-${outcome}">${words[outcome] ?? outcome}</span>`;
}

function reportLink(name: string, text: string): Html {
  return html`<a href="${consoleUrl('batch', { name })}">${text}</a>`;
}

/** What a report is about, for lists: the file, or "Build <id>". */
function reportTitle(r: { kind: string; subject: string; name: string }): string {
  if (r.kind === 'build') return `Build ${r.subject}`;
  return r.subject || r.name;
}

/** camelCase count names as words: tokensInFile -> tokens in file. */
function words(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
}

function problemCounts(r: ReportSummary): Html {
  if (r.errors === 0 && r.warnings === 0) return html`no problems`;
  return html`${r.errors} error${r.errors === 1 ? '' : 's'}, ${r.warnings} warning${r.warnings === 1 ? '' : 's'}`;
}

function kindLabel(kind: string): string {
  return { 'seed-file': 'Seed file', assignments: 'Assignment list', build: 'Import build', programmed: 'Programmed tokens' }[kind] ?? kind;
}

export function reportTable(reports: ReportSummary[], caption: string): Html {
  if (reports.length === 0) return html`<p>No reports yet.</p>`;
  return html`<table class="cards">
<caption>${caption}</caption>
<thead><tr><th scope="col">Report</th><th scope="col">Kind</th><th scope="col">Outcome</th><th scope="col">Problems</th><th scope="col">Finished</th></tr></thead>
<tbody>
${reports.map(
  (r) => html`<tr>
<td data-label="Report" class="wrap">${reportLink(r.name, reportTitle(r))}</td>
<td data-label="Kind">${kindLabel(r.kind)}</td>
<td data-label="Outcome">${outcomeBadge(r.outcome)}</td>
<td data-label="Problems">${problemCounts(r)}</td>
<td data-label="Finished">${formatTime(r.finishedAt)}</td>
</tr>`,
)}
</tbody>
</table>`;
}

function importsSection(principal: Principal, imports: WaitingImport[]): Html {
  const admin = can(principal, 'imports');
  const body =
    imports.length === 0
      ? html`<p>No import CSV is waiting: every built file has been confirmed as uploaded.</p>`
      : html`<p>Each file holds token seeds. ${admin ? "Download it to a local, non-synced folder, upload it on the Entra admin center's hardware OATH tokens page, then mark it as uploaded here (that deletes it) and delete your copy." : 'An administrator downloads, uploads and confirms them.'}</p>
<ul class="imports">
${imports.map(
  (file) => html`<li>
<p><strong>${file.name}</strong> <span class="muted">(${file.bytes} bytes, built ${formatTime(file.createdAt)})</span></p>
${
  admin
    ? html`<form class="api-form actions" data-api="imports/uploaded" data-confirm="Mark ${file.name} as uploaded to Entra ID? The file is deleted and its tokens marked imported." data-done="uploaded">
<input type="hidden" name="file" value="${file.name}">
<a class="button" href="${`${CONSOLE_API_PATH}/imports/download?${new URLSearchParams({ file: file.name }).toString()}`}" download="${file.name}">Download<span class="visually-hidden"> ${file.name}</span></a>
<button type="submit">Mark<span class="visually-hidden"> ${file.name}</span> as uploaded</button>
<p class="result" role="status"></p>
</form>`
    : ''
}
</li>`,
)}
</ul>`;
  return html`<section aria-labelledby="imports-h"><h2 id="imports-h">Import CSVs waiting for upload (${imports.length})</h2>
${body}
${
  admin
    ? html`<form class="api-form" data-api="imports/build" data-done="built">
<p>Builds normally run after each drop. <button type="submit" class="secondary">Build import CSV now</button></p>
<p class="result" role="status"></p>
</form>`
    : ''
}
</section>`;
}

export function overviewPage(
  principal: Principal,
  counts: StateCounts,
  recent: ReportSummary[],
  imports: WaitingImport[],
  notice?: string,
): Html {
  return html`<h1>Overview</h1>
${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
<section aria-labelledby="counts-h"><h2 id="counts-h">Tokens by state</h2>
${stateChart(counts)}
<p><a href="${consoleUrl('tokens')}">Search the tokens</a></p>
</section>
${importsSection(principal, imports)}
<section aria-labelledby="recent-h"><h2 id="recent-h">Recent batches</h2>
${reportTable(recent, 'The newest ingest and build reports')}
<p><a href="${consoleUrl('batches')}">All batches</a></p>
</section>`;
}

// ---- Tokens --------------------------------------------------------------------------------------------------

export interface TokenSearchForm {
  q: string;
  state: string;
  batch: string;
}

export function tokensPage(form: TokenSearchForm, search: InventoryQuery, result: InventoryPage | { error: string }): Html {
  const rows = 'error' in result ? [] : result.items;
  const stateOptions = [
    html`<option value="">Any state</option>`,
    ...TOKEN_STATES.map((s) => html`<option value="${s}"${form.state === s ? html` selected` : ''}>${s}</option>`),
  ];
  const next = 'error' in result ? null : result.continuationToken;
  const filtered = form.q !== '' || form.state !== '' || form.batch !== '';
  return html`<h1>Tokens</h1>
<form class="search" method="get" action="${consoleUrl('tokens')}" role="search" aria-label="Tokens">
<div class="field"><label for="q">Serial or UPN</label>
<input id="q" name="q" type="search" value="${form.q}" autocomplete="off" spellcheck="false" aria-describedby="q-hint">
<p id="q-hint" class="hint">A serial or its beginning, or a user's full UPN (name@domain).</p></div>
<div class="field"><label for="state">State</label>
<select id="state" name="state">${stateOptions}</select></div>
<div class="field"><label for="batch">Batch</label>
<input id="batch" name="batch" type="text" value="${form.batch}" autocomplete="off" spellcheck="false" aria-describedby="batch-hint">
<p id="batch-hint" class="hint">The whole batch name, as on a token's page (file@etag).</p></div>
<div class="field buttons"><button type="submit">Search</button>${filtered ? html` <a href="${consoleUrl('tokens')}">Clear</a>` : ''}</div>
</form>
${'error' in result ? html`<p class="error" role="alert">${result.error}</p>` : ''}
<section aria-labelledby="results-h"><h2 id="results-h">${search.after ? 'More tokens' : 'Tokens'}${filtered ? ' matching the search' : ''}</h2>
${
  rows.length === 0
    ? html`<p>No token matches.</p>`
    : html`<table class="cards">
<caption>${rows.length} token${rows.length === 1 ? '' : 's'} on this page, ordered by serial</caption>
<thead><tr><th scope="col">Serial</th><th scope="col">State</th><th scope="col">User</th><th scope="col">Model</th><th scope="col">Batch</th><th scope="col">Updated</th></tr></thead>
<tbody>
${rows.map(
  (t) => html`<tr>
<td data-label="Serial"><a href="${consoleUrl('token', { serial: t.serial })}">${t.serial}</a></td>
<td data-label="State"><span class="badge state-${t.state}">${t.state}</span></td>
<td data-label="User">${t.upn ?? html`<span class="muted">none</span>`}</td>
<td data-label="Model">${t.manufacturer} ${t.model}</td>
<td data-label="Batch" class="wrap">${t.batch}</td>
<td data-label="Updated">${formatTime(t.updatedAt)}</td>
</tr>`,
)}
</tbody>
</table>`
}
<nav aria-label="Pages" class="pager">
${search.after ? html`<a href="${consoleUrl('tokens', { q: form.q, state: form.state, batch: form.batch })}">First page</a>` : ''}
${next ? html`<a href="${consoleUrl('tokens', { q: form.q, state: form.state, batch: form.batch, continuationToken: next })}" rel="next">Next page</a>` : ''}
</nav>
</section>`;
}

// ---- A token -------------------------------------------------------------------------------------------------

const DONE_NOTICES: Record<string, string> = {
  unlocked: 'The token is unlocked; its failure count starts again from zero.',
  retired:
    'The token is retired: code checks refuse it, builds skip it, and its secret is disabled in Key Vault. If it was imported into Entra ID, delete it there too (Authentication methods, Hardware OATH tokens).',
  'retired-secret-pending': 'The token is retired, but its secret could not be disabled in Key Vault yet: retire it again to finish.',
  assigned: 'The token is assigned to the new user; a build has been started for it.',
  uploaded: 'The import file is marked as uploaded: its tokens are imported and the file is deleted.',
  built: 'A build ran; its report is in Recent batches.',
};

export function noticeFor(done: string | null): string | undefined {
  return done ? DONE_NOTICES[done] : undefined;
}

function lockState(token: TokenView, now: Date): Html {
  if (token.lockedUntil && isLocked(token, now)) {
    return html`<strong class="locked">Locked</strong> until ${formatTime(token.lockedUntil)} after ${token.failedAttempts} failed checks`;
  }
  return html`Not locked${token.failedAttempts > 0 ? ` (${token.failedAttempts} failed check${token.failedAttempts === 1 ? '' : 's'} since the last accepted code)` : ''}`;
}

const HISTORY_WORDS: Record<string, string> = {
  stored: 'Stored in Key Vault from batch',
  'stored-again': 'Seed stored again from batch',
  exporting: 'Claimed by a build',
  exported: 'Exported in import file',
  imported: 'Imported into Entra ID',
  'export-released': 'Export released',
  retired: 'Retired',
  verified: 'Code accepted',
  locked: 'Locked',
  unlocked: 'Unlocked',
  assigned: 'Assigned to',
};

function timeline(events: HistoryEvent[]): Html {
  if (events.length === 0) return html`<p>No history recorded.</p>`;
  return html`<ol class="timeline" reversed>
${[...events].reverse().map((e) => html`<li><p class="when">${formatTime(e.at)}</p><p class="what"><strong>${HISTORY_WORDS[e.event] ?? e.event}</strong>${e.detail ? html` <span class="detail">${e.detail}</span>` : ''}</p></li>`)}
</ol>`;
}

function isLocked(token: TokenView, now: Date): boolean {
  return token.lockedUntil !== null && new Date(token.lockedUntil).getTime() > now.getTime();
}

/** The administrator's actions on a token: each shown only where it can do something. */
function manageSection(token: TokenView, now: Date): Html {
  const lockout = isLocked(token, now) || token.failedAttempts > 0;
  return html`<section aria-labelledby="manage-h"><h2 id="manage-h">Manage</h2>
${
  lockout
    ? html`<h3>Lockout</h3>
<form class="api-form" data-api="unlock" data-done="unlocked">
<input type="hidden" name="serial" value="${token.serial}">
<p>Clears the lockout and the failed checks behind it; the next lock is a first one again.</p>
<div class="field buttons"><button type="submit">Unlock</button></div>
<p class="result" role="status"></p>
</form>`
    : ''
}
${
  token.state === 'stored'
    ? html`<h3>Reassign</h3>
<form class="api-form" data-api="reassign" data-done="assigned">
<input type="hidden" name="serial" value="${token.serial}">
<div class="field"><label for="upn">New user (UPN)</label>
<input id="upn" name="upn" type="email" autocomplete="off" spellcheck="false" required aria-describedby="upn-hint">
<p id="upn-hint" class="hint">The token is not yet in an import file, so its user can still change. A build follows.</p></div>
<div class="field buttons"><button type="submit">Reassign</button></div>
<p class="result" role="status"></p>
</form>`
    : ''
}
<h3>Retire</h3>
<form class="api-form" data-api="retire" data-done="retired" data-confirm="Retire token ${token.serial}? Code checks will refuse it and builds skip it; this cannot be undone here.">
<input type="hidden" name="serial" value="${token.serial}">
<p>For a token that is lost, broken or replaced: code checks refuse it and builds skip it. Its secret stays in Key Vault.</p>
<div class="field"><label for="reason">Reason for retiring (optional)</label>
<input id="reason" name="reason" type="text" maxlength="200" autocomplete="off"></div>
<div class="field buttons"><button type="submit" class="danger">Retire token</button></div>
<p class="result" role="status"></p>
</form>
</section>`;
}

export function tokenPage(principal: Principal, token: TokenView, now: Date, notice?: string): Html {
  const batchReport = reportOfBatch(token.batch);
  const facts: [string, Html | string][] = [
    ['State', html`<span class="badge state-${token.state}">${token.state}</span> ${STATE_LABELS[token.state] ?? ''}`],
    ['User', token.upn ?? html`<span class="muted">not exported to a user yet</span>`],
    ['Model', `${token.manufacturer} ${token.model}`],
    ['Type', `${token.type.toUpperCase()}, ${token.algorithm}, ${token.digits} digits`],
    // An HOTP token counts presses, not time: its counter (as the seed file gave it) replaces the period.
    token.type === 'hotp'
      ? ['Counter', token.counter ?? html`<span class="muted">not given by the seed file (0)</span>`]
      : ['Period', `${token.period} s`],
    ['Batch', batchReport ? reportLink(batchReport, token.batch) : token.batch],
    ['Import file', token.exportFile ?? html`<span class="muted">none</span>`],
    ['Drift', formatDrift(token.driftSeconds)],
    ['Lock', lockState(token, now)],
    ['Last code check', formatTime(token.lastVerifiedAt)],
  ];
  const retired = token.state === 'retired';
  return html`<p class="crumbs"><a href="${consoleUrl('tokens')}">Tokens</a> › <span>${token.serial}</span></p>
<h1>Token ${token.serial}</h1>
${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
<dl class="facts">
${facts.map(([term, value]) => html`<div><dt>${term}</dt><dd>${value}</dd></div>`)}
</dl>
${
  retired
    ? html`<p>This token is retired: codes can no longer be checked.</p>`
    : html`<section aria-labelledby="check-h"><h2 id="check-h">Check a code</h2>
<form class="api-form" data-api="verify" novalidate>
<input type="hidden" name="serial" value="${token.serial}">
<div class="field"><label for="code">Code</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="off" pattern="[0-9]{6,8}" maxlength="8" required aria-describedby="code-hint">
<p id="code-hint" class="hint">The ${token.digits} digits the token shows now.</p></div>
<div class="field next-code" hidden><label for="nextCode">Next code</label>
<input id="nextCode" name="nextCode" type="text" inputmode="numeric" autocomplete="off" pattern="[0-9]{6,8}" maxlength="8" aria-describedby="next-hint" disabled>
<p id="next-hint" class="hint">Wait for the token to show its next code, then type it here.</p></div>
<div class="field buttons"><button type="submit">Check code</button></div>
<p class="result" role="status"></p>
</form>
</section>`
}
${can(principal, 'unlock') && !retired ? manageSection(token, now) : ''}
<section aria-labelledby="history-h"><h2 id="history-h">History</h2>
${timeline(token.history)}
</section>`;
}

// ---- Batches -------------------------------------------------------------------------------------------------

export function batchesPage(reports: ReportEntry[], total: number, summaries: Map<string, ReportSummary>): Html {
  const known = reports.map((r) => summaries.get(r.name)).filter((s): s is ReportSummary => s !== undefined);
  const shown = known.filter((s) => !isIdleBuild(s));
  const idle = known.length - shown.length;
  return html`<h1>Batches</h1>
<p>Every seed file, assignment list and import build leaves a report${total > reports.length ? `; the newest ${reports.length} of ${total} are read here` : ''}.${idle > 0 ? ` ${idle} build${idle === 1 ? '' : 's'} that found nothing to export ${idle === 1 ? 'is' : 'are'} left out.` : ''}</p>
${reportTable(shown, 'Reports, newest first')}`;
}

/** Problems grouped by code, each group with the fix its code says. */
export function groupedProblems(problems: Problem[]): Html {
  if (problems.length === 0) return html`<p>No problems.</p>`;
  const groups = new Map<string, Problem[]>();
  for (const p of problems) groups.set(p.code, [...(groups.get(p.code) ?? []), p]);
  const order = [...groups.entries()].sort(([, a], [, b]) => severityRank(a) - severityRank(b) || b.length - a.length);
  return html`${order.map(
    ([code, list]) => html`<section class="problem-group severity-${list[0]!.severity}" aria-labelledby="p-${code}">
<h3 id="p-${code}"><code>${code}</code> · ${list.length} ${list[0]!.severity}${list.length === 1 ? '' : 's'}</h3>
<p class="fix"><strong>What to do:</strong> ${PROBLEM_CODES[code as ProblemCode] ?? 'See the messages below.'}</p>
<table class="cards">
<caption>Where ${code} occurs</caption>
<thead><tr><th scope="col">Line</th><th scope="col">Serial</th><th scope="col">Message</th></tr></thead>
<tbody>
${list.map((p) => html`<tr><td data-label="Line">${p.line ?? '–'}</td><td data-label="Serial">${p.serial ?? '–'}</td><td data-label="Message" class="wrap">${p.message}</td></tr>`)}
</tbody>
</table>
</section>`,
  )}`;
}

function severityRank(list: Problem[]): number {
  return { error: 0, warning: 1, info: 2 }[list[0]!.severity] ?? 3;
}

/** The items of a report: at most this many rows in the page (the raw JSON has them all). */
const ITEM_ROWS = 500;

export function batchPage(name: string, report: RunReport, raw: string): Html {
  const counts = Object.entries(report.counts);
  const details = Object.entries(report.details ?? {}).filter(([, v]) => v !== null && v !== '');
  return html`<p class="crumbs"><a href="${consoleUrl('batches')}">Batches</a> › <span>${kindLabel(report.kind)}</span></p>
<h1>${kindLabel(report.kind)}: ${report.subject}</h1>
<p class="summary">${outcomeBadge(report.outcome)} ${report.summary}</p>
<dl class="facts">
<div><dt>Batch</dt><dd class="wrap">${report.batch ?? report.subject}</dd></div>
<div><dt>Started</dt><dd>${formatTime(report.startedAt)}</dd></div>
<div><dt>Finished</dt><dd>${formatTime(report.finishedAt)}</dd></div>
<div><dt>Report</dt><dd class="wrap">${name}</dd></div>
</dl>
<section aria-labelledby="counts-h"><h2 id="counts-h">Counts</h2>
<dl class="counts">${counts.map(([k, v]) => html`<div><dt>${words(k)}</dt><dd>${v}</dd></div>`)}</dl>
${details.length > 0 ? html`<dl class="counts">${details.map(([k, v]) => html`<div><dt>${words(k)}</dt><dd>${String(v)}</dd></div>`)}</dl>` : ''}
</section>
<section aria-labelledby="problems-h"><h2 id="problems-h">Problems (${report.problems.length})</h2>
${groupedProblems(report.problems)}
</section>
<section aria-labelledby="items-h"><h2 id="items-h">Tokens (${report.items.length})</h2>
${
  report.items.length === 0
    ? html`<p>No token rows.</p>`
    : html`<details${report.items.length <= 20 ? html` open` : ''}><summary>Show ${Math.min(report.items.length, ITEM_ROWS)} token row${report.items.length === 1 ? '' : 's'}${report.items.length > ITEM_ROWS ? ` of ${report.items.length} (the raw JSON has all)` : ''}</summary>
<table class="cards">
<caption>What happened to each token</caption>
<thead><tr><th scope="col">Serial</th><th scope="col">Result</th><th scope="col">User</th><th scope="col">File</th></tr></thead>
<tbody>
${report.items.slice(0, ITEM_ROWS).map((i) => html`<tr><td data-label="Serial"><a href="${consoleUrl('token', { serial: i.serial })}">${i.serial}</a></td><td data-label="Result">${i.result}</td><td data-label="User">${i.upn ?? ''}</td><td data-label="File" class="wrap">${i.file ?? ''}</td></tr>`)}
</tbody>
</table>
</details>`
}
</section>
<section aria-labelledby="raw-h"><h2 id="raw-h">Raw JSON</h2>
<details><summary>Show the report as stored</summary>
<pre class="raw" tabindex="0" aria-label="The report's JSON">${raw}</pre>
</details>
</section>`;
}

// ---- Upload --------------------------------------------------------------------------------------------------

export function uploadPage(maxBytes: number, transportKeyPrefix: string): Html {
  const mib = (maxBytes / (1024 * 1024)).toFixed(maxBytes % (1024 * 1024) === 0 ? 0 : 1);
  return html`<h1>Upload</h1>
<p>Files go into the pipeline exactly as when they are dropped into storage: each one is read, checked and reported. This page follows the file to its report.</p>
<section aria-labelledby="seed-h"><h2 id="seed-h">Seed file from the vendor</h2>
<form class="upload-form" data-upload="seeds" novalidate>
<div class="field drop"><label for="seed-file">Seed file (CSV or PSKC, at most ${mib} MiB)</label>
<input id="seed-file" name="file" type="file" required accept=".csv,.txt,.xml,.pskc,.pskcxml" aria-describedby="seed-hint">
<p id="seed-hint" class="hint">Choose the file, or drop it on this field.</p></div>
<div class="field"><label for="transport-key">Pre-shared key (hex) or password, for an encrypted PSKC file</label>
<input id="transport-key" name="transportKey" type="password" autocomplete="off" spellcheck="false" aria-describedby="key-hint">
<p id="key-hint" class="hint">Sent once with the file and kept only in Key Vault, as its own secret under "${transportKeyPrefix}". Leave empty for a plain file.</p></div>
<div class="field"><label for="encoding">Secret encoding</label>
<select id="encoding" name="secretEncoding" aria-describedby="encoding-hint"><option value="">Detect</option><option value="base32">base32</option><option value="hex">hex</option></select>
<p id="encoding-hint" class="hint">Only needed when every secret reads as both base32 and hex.</p></div>
<div class="field buttons"><button type="submit">Upload seed file</button></div>
<div class="progress" role="status" aria-live="polite"></div>
</form>
</section>
<section aria-labelledby="assign-h"><h2 id="assign-h">Assignment list</h2>
<form class="upload-form" data-upload="assignments" novalidate>
<div class="field drop"><label for="assign-file">Assignment list (CSV with upn and serial number columns)</label>
<input id="assign-file" name="file" type="file" required accept=".csv,.txt" aria-describedby="assign-hint">
<p id="assign-hint" class="hint">Choose the file, or drop it on this field.</p></div>
<div class="field buttons"><button type="submit">Upload assignment list</button></div>
<div class="progress" role="status" aria-live="polite"></div>
</form>
</section>`;
}

/** The landing page for someone signed in without any console role. */
export function noRolePage(): Html {
  return html`<h1>No access</h1>
<p>You are signed in, but you hold neither Tokens.Helpdesk nor Tokens.Admin in this console's app registration.</p>
<p>Ask the console's owners to assign you one (Entra admin center, Enterprise applications, this app, Users and groups).</p>`;
}

// ---- Programmable tokens ----------------------------------------------------------------------------------------

/**
 * Programming tokens that ship without a seed: the seeds are made in Key Vault, and the one answer that carries
 * them is shown here a token at a time (QR code, or the seed as text for a USB tool) until each is marked burned,
 * then forgotten. Nothing of a seed is in this page as served: console.js puts each one in, and takes it out.
 */
export function programPage(maxTokens: number): Html {
  return html`<h1>Program tokens</h1>
<p>For tokens that ship without a seed. A fresh seed for each serial is made in Key Vault and shown here once, a token at a time, for you to burn onto it (a phone app over NFC reads the QR code; a USB tool takes the seed as text). Mark each one burned; then the page forgets them. Programmed tokens then follow the usual way: an assignment list, an import file, activation.</p>
<form class="program-form" novalidate>
<div class="field"><label for="serials">Serials, one per line (at most ${maxTokens})</label>
<textarea id="serials" name="serials" rows="6" required spellcheck="false" aria-describedby="serials-hint"></textarea>
<p id="serials-hint" class="hint">Each serial must be new to the inventory; if one exists, nothing is programmed.</p></div>
<div class="field"><label for="manufacturer">Manufacturer (optional)</label><input id="manufacturer" name="manufacturer" type="text" autocomplete="off"></div>
<div class="field"><label for="model">Model (optional)</label><input id="model" name="model" type="text" autocomplete="off"></div>
<div class="field"><label for="period">Time step</label><select id="period" name="period"><option value="30">30 seconds</option><option value="60">60 seconds</option></select></div>
<div class="field"><label for="algorithm">Algorithm</label><select id="algorithm" name="algorithm"><option value="SHA1">SHA1 (what Entra ID's CSV upload takes)</option><option value="SHA256">SHA256</option></select></div>
<div class="field"><label for="digits">Digits</label><select id="digits" name="digits"><option value="6">6 (what Entra ID's CSV upload takes)</option><option value="8">8</option></select></div>
<div class="field buttons"><button type="submit">Program tokens</button></div>
<p class="result" role="status"></p>
</form>
<section class="burn" aria-labelledby="burn-h" hidden>
<h2 id="burn-h" tabindex="-1">Burn</h2>
<p class="burn-warning"><strong>Shown once.</strong> Keep this page open until every token is burned: the seeds exist nowhere else outside Key Vault, and leaving the page forgets them.</p>
<figure class="qr"><img alt="" width="240" height="240"><figcaption></figcaption></figure>
<details><summary>Show the seed as text, for a USB programming tool</summary>
<dl class="seed"><div><dt>Base32</dt><dd><code class="base32"></code></dd></div><div><dt>Hex</dt><dd><code class="hex"></code></dd></div></dl>
</details>
<p><button type="button" class="burned">Burned: next token</button></p>
</section>
<p class="burn-done notice" role="status" tabindex="-1" hidden></p>`;
}
