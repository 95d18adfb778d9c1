/**
 * Files dropped from the console's Upload page go where a person with Storage Explorer would put them: seed files
 * into `seeds`, assignment lists into `assignments`, and the blob triggers take it from there. A PSKC file's
 * pre-shared key or password arrives once with the file and goes straight into Key Vault as a secret of its own
 * under the transport-key prefix, named in the blob's metadata (README "Store a vendor's transport key or
 * password"): the same mechanism, without a person handling the vault. It is never logged, echoed or stored
 * anywhere else. The page then follows the file to its report (uploadStatus).
 */
import { createHash, randomBytes } from 'node:crypto';
import { assignmentFileBlobNames, seedFileBlobNames } from '../../pipeline/blob-names.js';
import { BlobExistsError } from '../../pipeline/errors.js';
import { METADATA_SECRET_ENCODING, METADATA_TRANSPORT_KEY_SECRET } from '../../pipeline/ingest.js';
import type { BlobStore, Clock, Logger, SecretStore } from '../../pipeline/ports.js';
import { readReport, summarize, type ReportSummary } from './data.js';

export type UploadKind = 'seeds' | 'assignments';

export interface UploadDeps {
  blobs: BlobStore;
  vault: Pick<SecretStore, 'set' | 'listVersions' | 'disable'>;
  clock: Clock;
  log: Logger;
  containers: { seeds: string; assignments: string; reports: string };
  transportKeyPrefix: string;
  maxFileBytes: number;
}

export type UploadRefusal = { status: 400 | 413; message: string };

export interface UploadAccepted {
  kind: UploadKind;
  /** The blob the file became, in its container. */
  name: string;
  etag: string;
  /** The report the pipeline will write for it (in `reports`). */
  report: string;
  /** For seed files: the batch its tokens will carry. */
  batch?: string;
  /** The vault secret holding the file's transport key, when one came with it (its name only). */
  transportKeySecret?: string;
}

/** Transport keys are 32-64 hex digits and passwords short; this bounds what is stored, not what is valid. */
const MAX_TRANSPORT_KEY_CHARS = 1024;

function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** A blob name for an uploaded file: when, a random part (two uploads never collide), and its own name made safe. */
export function uploadBlobName(fileName: string, now: Date, random = randomBytes(3).toString('hex')): string {
  const base = fileName.split(/[\\/]/).pop() ?? '';
  const safe =
    base
      .replace(/[^\w.-]+/g, '_')
      .replace(/^[._]+/, '')
      .slice(-120) || 'file';
  return `console-${stamp(now)}-${random}-${safe}`;
}

function field(form: FormData, name: string): string {
  const value = form.get(name);
  return typeof value === 'string' ? value : '';
}

/** Checks the form, stores the transport key (if any) in the vault, then writes the file into its container. */
export async function acceptUpload(
  deps: UploadDeps,
  kind: UploadKind,
  form: FormData,
  by: string,
): Promise<UploadAccepted | UploadRefusal> {
  const file = form.get('file');
  if (file === null || typeof file === 'string') return { status: 400, message: 'Choose a file to upload (form field "file").' };
  if (file.size === 0) return { status: 400, message: `${file.name || 'The file'} is empty.` };
  if (file.size > deps.maxFileBytes)
    return {
      status: 413,
      message: `The file is ${file.size} bytes; the limit is ${deps.maxFileBytes} (MAX_SEED_FILE_BYTES). Split it into smaller files.`,
    };
  const metadata: Record<string, string> = {};
  const encoding = field(form, 'secretEncoding');
  const transportKey = field(form, 'transportKey');
  if (kind === 'seeds') {
    if (encoding !== '' && encoding !== 'base32' && encoding !== 'hex')
      return { status: 400, message: 'The secret encoding must be base32, hex or empty (detect).' };
    if (encoding) metadata[METADATA_SECRET_ENCODING] = encoding;
    if (transportKey.length > MAX_TRANSPORT_KEY_CHARS)
      return {
        status: 400,
        message: `The pre-shared key or password is longer than ${MAX_TRANSPORT_KEY_CHARS} characters; check that the right value was pasted.`,
      };
  } else if (encoding !== '' || transportKey !== '') {
    return { status: 400, message: 'An assignment list takes no key or encoding: it holds no secret.' };
  }

  const now = deps.clock.now();
  const name = uploadBlobName(file.name, now);
  const container = kind === 'seeds' ? deps.containers.seeds : deps.containers.assignments;
  let transportKeySecret: string | undefined;
  if (kind === 'seeds' && transportKey.trim() !== '') {
    // A secret of its own per upload, named after it: nobody picks a name, one file's key never serves another's,
    // and the status check below finds it again from the upload alone.
    transportKeySecret = transportKeySecretFor(deps.transportKeyPrefix, name);
    await deps.vault.set(transportKeySecret, transportKey, {
      contentType: 'text/plain',
      tags: { purpose: 'transport-key', source: 'console', file: name.slice(0, 256) },
    });
    metadata[METADATA_TRANSPORT_KEY_SECRET] = transportKeySecret;
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  let etag: string;
  try {
    ({ etag } = await deps.blobs.write(container, name, bytes, { ifNoneMatch: '*', metadata, contentType: 'application/octet-stream' }));
  } catch (err) {
    if (err instanceof BlobExistsError)
      return { status: 400, message: 'A file with this name was uploaded at the same moment; upload it again.' };
    throw err;
  }
  const tag = etag.replace(/"/g, '');
  const derived = kind === 'seeds' ? seedFileBlobNames(name, tag) : assignmentFileBlobNames(name, tag);
  deps.log.info('Console upload', { kind, blob: name, bytes: bytes.length, by, ...(transportKeySecret ? { transportKeySecret } : {}) });
  const accepted: UploadAccepted = { kind, name, etag: tag, report: derived.reportJson };
  if (kind === 'seeds') accepted.batch = `${name}@${tag}`;
  if (transportKeySecret) accepted.transportKeySecret = transportKeySecret;
  return accepted;
}

/** The vault secret that holds the transport key of an uploaded seed file (its blob name decides it). */
export function transportKeySecretFor(prefix: string, blobName: string): string {
  return `${prefix}console-${createHash('sha256').update(blobName, 'utf8').digest('hex').slice(0, 32)}`;
}

export type UploadStatus =
  { state: 'waiting' } | { state: 'reported'; summary: ReportSummary; report: string; transportKeyDisabled?: string };

/**
 * Where an uploaded file is: still waiting in its container, or processed with a report. Once a seed file is
 * reported, its ingest is over (the file is deleted or quarantined), so the transport key stored for it is
 * disabled: it stays in the vault for the record, unreadable; dropping the file again takes the key again.
 */
export async function uploadStatus(
  deps: Pick<UploadDeps, 'blobs' | 'containers' | 'vault' | 'transportKeyPrefix' | 'log'>,
  kind: UploadKind,
  name: string,
  etag: string,
): Promise<UploadStatus> {
  const derived = kind === 'seeds' ? seedFileBlobNames(name, etag) : assignmentFileBlobNames(name, etag);
  const read = await readReport(deps, derived.reportJson);
  if (read.status !== 'found') return { state: 'waiting' };
  const status: UploadStatus = { state: 'reported', summary: summarize(derived.reportJson, read.report), report: derived.reportJson };
  if (kind === 'seeds') {
    const secret = transportKeySecretFor(deps.transportKeyPrefix, name);
    const enabled = (await deps.vault.listVersions(secret)).filter((v) => v.enabled);
    for (const version of enabled) await deps.vault.disable(secret, version.version);
    if (enabled.length > 0) deps.log.info('Console transport key disabled after its ingest', { secret, blob: name });
    if ((await deps.vault.listVersions(secret)).length > 0) status.transportKeyDisabled = secret;
  }
  return status;
}
