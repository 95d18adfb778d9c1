/**
 * What the console's pages read: token counts by state, reports (batches), import CSVs waiting for upload. Reads
 * only; no secret is read here (an import CSV's content is read only by the download route, in api.ts).
 */
import type { Problem } from '../../core/problems.js';
import type { BlobInfo, BlobStore, Clock, EntityTable, TokenEntity } from '../../pipeline/ports.js';
import type { RunReport } from '../../pipeline/report.js';
import { seedFileBlobNames } from '../../pipeline/blob-names.js';
import { TOKEN_STATES } from '../../pipeline/inventory-query.js';
import { reportOfProgrammedBatch } from '../../pipeline/program.js';

export interface ConsoleData {
  blobs: BlobStore;
  tokens: EntityTable<TokenEntity>;
  clock: Clock;
  containers: { reports: string; imports: string };
}

export interface StateCounts {
  counts: { state: string; count: number }[];
  total: number;
  countedAt: string;
}

/**
 * Counting reads one field of every row: instant for a few thousand tokens, seconds for 100,000. A count is
 * reused for ten times as long as it took (at least 2 s, at most 60 s), so the overview stays current for a small
 * inventory and never spends more than a tenth of its time counting a large one.
 */
const COUNT_REUSE = { factor: 10, minMs: 2_000, maxMs: 60_000 } as const;
let cachedCounts: { until: number; value: Promise<StateCounts> } | undefined;

/** Tokens by state, every state listed (zero included). */
export function tokenCounts(data: ConsoleData): Promise<StateCounts> {
  const started = data.clock.now().getTime();
  if (cachedCounts && started < cachedCounts.until) return cachedCounts.value;
  const entry: { until: number; value: Promise<StateCounts> } = {
    until: Number.POSITIVE_INFINITY,
    value: Promise.resolve({ counts: [], total: 0, countedAt: '' }),
  };
  entry.value = data.tokens.countBy('state').then(
    (byState) => {
      const finished = data.clock.now().getTime();
      entry.until = finished + Math.min(COUNT_REUSE.maxMs, Math.max(COUNT_REUSE.minMs, (finished - started) * COUNT_REUSE.factor));
      const counts = TOKEN_STATES.map((state) => ({ state, count: byState[state] ?? 0 }));
      return { counts, total: counts.reduce((sum, c) => sum + c.count, 0), countedAt: new Date(finished).toISOString() };
    },
    (err: unknown) => {
      if (cachedCounts === entry) cachedCounts = undefined;
      throw err;
    },
  );
  cachedCounts = entry;
  return entry.value;
}

/** Forget the cached counts (after an action that changes a token's state). */
export function forgetTokenCounts(): void {
  cachedCounts = undefined;
}

export interface ReportEntry {
  name: string;
  lastModified: string | null;
}

function isReportName(name: string): boolean {
  return name.endsWith('.json');
}

/** Report blobs (JSON), newest first. The reports container keeps them for `reportRetentionDays`. */
export async function listReports(data: ConsoleData, limit: number): Promise<{ reports: ReportEntry[]; total: number }> {
  const all: BlobInfo[] = [];
  for await (const blob of data.blobs.list(data.containers.reports)) if (isReportName(blob.name)) all.push(blob);
  all.sort((a, b) => (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0) || a.name.localeCompare(b.name));
  return {
    reports: all.slice(0, limit).map((b) => ({ name: b.name, lastModified: b.lastModified?.toISOString() ?? null })),
    total: all.length,
  };
}

/** A report name as the console accepts it in a URL: one of the reports container's JSON blobs. */
export function isReportParameter(name: string): boolean {
  // eslint-disable-next-line no-control-regex -- control characters are what it refuses
  return name.length > 0 && name.length <= 1024 && isReportName(name) && !/[\u0000-\u001f\u007f]/.test(name);
}

/** Reports are a few MB at most (one line per token); a larger blob is not read into a page. */
const MAX_REPORT_BYTES = 16 * 1024 * 1024;

export type ReportRead = { status: 'found'; report: RunReport; raw: string } | { status: 'not-found' } | { status: 'unreadable' };

export async function readReport(
  data: Pick<ConsoleData, 'blobs'> & { containers: { reports: string } },
  name: string,
): Promise<ReportRead> {
  const blob = await data.blobs.read(data.containers.reports, name, { maxBytes: MAX_REPORT_BYTES });
  if (!blob) return { status: 'not-found' };
  if (blob.bytes.length > MAX_REPORT_BYTES) return { status: 'unreadable' };
  const raw = Buffer.from(blob.bytes).toString('utf8');
  try {
    const report = JSON.parse(raw) as RunReport;
    if (typeof report !== 'object' || report === null || !Array.isArray(report.problems) || typeof report.outcome !== 'string')
      return { status: 'unreadable' };
    report.items = Array.isArray(report.items) ? report.items : [];
    report.counts = typeof report.counts === 'object' && report.counts !== null ? report.counts : {};
    return { status: 'found', report, raw };
  } catch {
    return { status: 'unreadable' };
  }
}

export interface ReportSummary {
  name: string;
  kind: string;
  subject: string;
  outcome: string;
  finishedAt: string | null;
  errors: number;
  warnings: number;
  tokens: number;
}

export function summarize(name: string, report: RunReport): ReportSummary {
  const count = (severity: Problem['severity']) => report.problems.filter((p) => p.severity === severity).length;
  return {
    name,
    kind: report.kind,
    subject: report.subject,
    outcome: report.outcome,
    finishedAt: report.finishedAt ?? null,
    errors: count('error'),
    warnings: count('warning'),
    tokens: report.items.length,
  };
}

/** A build that found nothing to export: every drop ends with one, and listing them would hide the rest. */
export function isIdleBuild(summary: ReportSummary): boolean {
  return summary.kind === 'build' && summary.outcome === 'nothing-to-do';
}

/** The newest reports, read and summarized, idle builds left out (the overview's "recent batches"). */
export async function recentReports(data: ConsoleData, limit: number): Promise<ReportSummary[]> {
  const { reports } = await listReports(data, limit * 3);
  const read = await Promise.all(reports.map(async (entry) => ({ entry, read: await readReport(data, entry.name) })));
  const summaries = read.flatMap(({ entry, read: r }) => (r.status === 'found' ? [summarize(entry.name, r.report)] : []));
  return summaries.filter((s) => !isIdleBuild(s)).slice(0, limit);
}

/** The report of a token's batch: a programmed batch's, or the ingest report of `<seed file>@<etag>`. */
export function reportOfBatch(batch: string): string | undefined {
  const programmed = reportOfProgrammedBatch(batch);
  if (programmed) return programmed.reportJson;
  const at = batch.lastIndexOf('@');
  if (at <= 0 || at === batch.length - 1) return undefined;
  return seedFileBlobNames(batch.slice(0, at), batch.slice(at + 1)).reportJson;
}

export interface WaitingImport {
  name: string;
  bytes: number;
  createdAt: string | null;
}

/** Import CSVs in `imports`: built, not yet confirmed as uploaded to Entra. Names and sizes only. */
export async function importsWaiting(data: ConsoleData): Promise<WaitingImport[]> {
  const files: WaitingImport[] = [];
  for await (const blob of data.blobs.list(data.containers.imports)) {
    files.push({ name: blob.name, bytes: blob.contentLength, createdAt: (blob.createdOn ?? blob.lastModified)?.toISOString() ?? null });
  }
  return files.sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? ''));
}
