/**
 * Names of every blob the pipeline derives from another blob's name (reports, quarantine copies) or from a build,
 * in one place, so each one is valid in Azure whatever the input name.
 *
 * Azure's rules for a blob name: 1 to 1,024 characters and at most 254 path segments ('/'-separated). The service
 * counts UTF-16 code units (an emoji counts two); this module budgets UTF-8 bytes instead, which are never fewer,
 * so a derived name holds under either count. Input names are already valid (Azure refused anything else), but an
 * input name plus a prefix, an ETag and an extension can pass the limit. Such a name is shortened: the start of the
 * input name, flattened to one segment, then `~` and a hash of the whole input name, then the ETag, so two inputs
 * never share a derived name and the report (which quotes the input name in full) can still be found by prefix.
 */
import { createHash } from 'node:crypto';

export const MAX_BLOB_NAME_LENGTH = 1024;
export const MAX_BLOB_NAME_SEGMENTS = 254;

/** Longest file name of a quarantined copy: what common file systems accept when someone downloads it. */
const MAX_LEAF_BYTES = 255;
const REPORT_LEAF = 'report.json';
const ASSIGNMENTS_SCOPE = 'assignments/';
const RESULTS_SCOPE = 'results/';
const HASH_HEX_CHARS = 16;

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function segmentCount(name: string): number {
  return name.split('/').length;
}

/** True when `name` is valid in Azure under either count of its length. */
export function isWithinBlobNameLimits(name: string): boolean {
  return name.length > 0 && utf8Length(name) <= MAX_BLOB_NAME_LENGTH && segmentCount(name) <= MAX_BLOB_NAME_SEGMENTS;
}

/** The longest start of `text` whose UTF-8 form fits in `maxBytes`, never splitting a character. */
function head(text: string, maxBytes: number): string {
  let out = '';
  let used = 0;
  for (const ch of text) {
    const bytes = utf8Length(ch);
    if (used + bytes > maxBytes) break;
    out += ch;
    used += bytes;
  }
  return out;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, HASH_HEX_CHARS);
}

/** The quarantined copy's file name: the input's last segment, shortened (extension kept) past MAX_LEAF_BYTES. */
function quarantineLeaf(source: string): string {
  let leaf = source.slice(source.lastIndexOf('/') + 1) || 'file';
  // The report sits beside the copy under this name; the copy must not overwrite it.
  if (leaf === REPORT_LEAF) leaf = `input-${leaf}`;
  if (utf8Length(leaf) <= MAX_LEAF_BYTES) return leaf;
  const dot = leaf.lastIndexOf('.');
  const extension = dot > 0 && utf8Length(leaf.slice(dot)) <= 16 ? leaf.slice(dot) : '';
  return head(leaf.slice(0, leaf.length - extension.length), MAX_LEAF_BYTES - utf8Length(extension)) + extension;
}

export interface InputBlobNames {
  /** In the reports container. */
  reportJson: string;
  reportHtml: string;
  /** In the quarantine container: the input's copy, and its report beside it. */
  quarantinedFile: string;
  quarantinedReport: string;
}

/**
 * Derived names for one version (ETag) of an input blob: `<scope><name>-<etag>.json|.html` in `reports`,
 * `<scope><name>-<etag>/<file name>` and `.../report.json` in `quarantine`, or their shortened forms.
 */
function inputBlobNames(scope: string, source: string, etag: string): InputBlobNames {
  const tag = etag.replace(/"/g, '');
  const leaf = quarantineLeaf(source);
  const make = (stem: string): InputBlobNames => ({
    reportJson: `${scope}${stem}.json`,
    reportHtml: `${scope}${stem}.html`,
    quarantinedFile: `${scope}${stem}/${leaf}`,
    quarantinedReport: `${scope}${stem}/${REPORT_LEAF}`,
  });
  const natural = make(`${source}-${tag}`);
  if (Object.values(natural).every(isWithinBlobNameLimits)) return natural;
  // Budget the stem for the longest name built on it; the suffix keeps the hash and the ETag whole.
  const longestTail = Math.max(utf8Length('.html'), 1 + utf8Length(leaf), 1 + utf8Length(REPORT_LEAF));
  const suffix = `~${shortHash(source)}-${tag}`;
  const room = MAX_BLOB_NAME_LENGTH - utf8Length(scope) - longestTail - utf8Length(suffix);
  return make(`${head(source.replace(/\//g, '_'), Math.max(0, room))}${suffix}`);
}

/** A seed file dropped in `seeds`. */
export function seedFileBlobNames(name: string, etag: string): InputBlobNames {
  return inputBlobNames('', name, etag);
}

/** An assignment list dropped in `assignments`: its derived blobs live under `assignments/`. */
export function assignmentFileBlobNames(name: string, etag: string): InputBlobNames {
  return inputBlobNames(ASSIGNMENTS_SCOPE, name, etag);
}

/** A failure file from Entra dropped in `results`: its report lives under `results/`. */
export function resultsFileBlobNames(name: string, etag: string): InputBlobNames {
  return inputBlobNames(RESULTS_SCOPE, name, etag);
}

/** A report's pair of blobs in `reports`: JSON for machines (what results point to), HTML for people. */
export interface ReportNames {
  reportJson: string;
  reportHtml: string;
}

/** An import build's report in `reports` (the build id is short: always within the limits). */
export function buildReportNames(buildId: string): ReportNames {
  return { reportJson: `build-${buildId}.json`, reportHtml: `build-${buildId}.html` };
}

/** A programming request's report in `reports`, by the part of its batch name after `programmed@` (short as well). */
export function programmedReportNames(batchId: string): ReportNames {
  return { reportJson: `programmed-${batchId}.json`, reportHtml: `programmed-${batchId}.html` };
}

/** A running build's heartbeat in `reports` (./liveness.ts). */
export function buildHeartbeatName(buildId: string): string {
  return `build-${buildId}.heartbeat`;
}

export const IMPORT_FILE_PREFIX = 'entra-oath-';

/**
 * A build's import file in `imports`: `entra-oath-<UTC start, to the second>-<build id>.csv`, so a listing sorts by
 * time. A build split by IMPORT_MAX_ROWS numbers its parts from this name (partFileName).
 */
export function importFileName(buildId: string, startedAt: Date): string {
  const stamp = startedAt
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${IMPORT_FILE_PREFIX}${stamp}-${buildId}.csv`;
}

/**
 * The vault's shared budget ledger in `state` (./vault-budget.ts): one record per vault, so every instance (and
 * every app pointed at the same storage account) that spends that vault's budget claims from the same ledger.
 */
export function vaultBudgetLedgerName(vaultHost: string): string {
  return `vault-budget/${vaultHost.toLowerCase().replace(/[^a-z0-9.-]/g, '_')}.json`;
}

export const INGEST_CHECKPOINT_PREFIX = 'ingest-checkpoints/';

/**
 * The checkpoint of one version (ETag) of a seed file in `state` (./ingest-checkpoint.ts). Named by a hash of the
 * blob name, so any name fits, plus the ETag, so a file dropped again under the same name starts afresh.
 */
export function ingestCheckpointName(seedBlob: string, etag: string): string {
  return `${INGEST_CHECKPOINT_PREFIX}${shortHash(seedBlob)}-${etag.replace(/"/g, '')}.json`;
}
