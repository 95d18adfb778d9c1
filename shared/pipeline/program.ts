/**
 * Programmable tokens: the seed is born here, straight into Key Vault, and leaves once, in the answer, as a
 * provisioning package (otpauth URI, its QR code, base32 and hex) for burning onto the token. Nothing else keeps
 * it: no report, log, blob or table row.
 *
 * A programmed token is stored exactly as an ingested one (same secret name, content type, tags and inventory
 * row, state `stored`), under a batch `programmed@<UTC>-<id>`, and follows the usual flow from there.
 *
 * All or nothing. Every serial is checked first (no inventory row, no active vault secret); then every secret is
 * written; only then the inventory rows. If anything fails part-way, the rows this request inserted are deleted
 * and the versions it wrote are disabled, so a retry starts from a clean slate and no secret that was never
 * delivered is ever used: builds and verify read the version the inventory records, and a name whose newest
 * version is disabled falls back to the version before it (see SecretStore in ./ports.ts).
 */
import type { SeedCache } from './seed-cache.js';
import { randomBytes } from 'node:crypto';
import { toCanonicalBase32 } from '../core/encoding.js';
import { quoteValue, type ProblemCode } from '../core/problems.js';
import { parseHashAlgorithm, mintSecret, type HashAlgorithm, type OathToken } from '../core/token.js';
import { checkSerial } from '../core/validate.js';
import { ENTRA_MAX_FIELD_CHARS } from '../entra/import-rules.js';
import { otpauthSerialFault, otpauthUri } from '../formats/otpauth.js';
import { qrSvg } from '../formats/qr.js';
import { updateWithRetry, writeRow } from './conditional-update.js';
import { ConflictError, SecretDeletedError } from './errors.js';
import { SECRET_CONTENT_TYPE, secretTags } from './ingest.js';
import { appendHistory, newTokenEntity } from './inventory.js';
import { programmedReportNames, type ReportNames } from './blob-names.js';
import { secretNameForSerial } from './secret-names.js';
import type { BlobStore, Clock, EntityTable, Logger, TokenEntity } from './ports.js';
import { mapPool } from './map-pool.js';
import { writeRunReport, type RunReport } from './report.js';
import type { PacedVault } from './vault.js';

export const PROGRAM_ALGORITHMS = ['SHA1', 'SHA256'] as const;
export const PROGRAM_DIGITS = [6, 8] as const;
export const PROGRAM_PERIODS = [30, 60] as const;
export const PROGRAMMED_BATCH_PREFIX = 'programmed@';

/** The report (in `reports`) of a programmed batch; undefined for any other batch. */
export function reportOfProgrammedBatch(batch: string): ReportNames | undefined {
  return batch.startsWith(PROGRAMMED_BATCH_PREFIX) ? programmedReportNames(batch.slice(PROGRAMMED_BATCH_PREFIX.length)) : undefined;
}

export interface ProgramRequest {
  tokens: { serial: string; manufacturer: string; model: string }[];
  algorithm: (typeof PROGRAM_ALGORITHMS)[number];
  digits: (typeof PROGRAM_DIGITS)[number];
  period: (typeof PROGRAM_PERIODS)[number];
}

/** What the caller gets, once. */
export interface ProvisioningPackage {
  serial: string;
  otpauthUri: string;
  qrSvg: string;
  secretBase32: string;
  secretHex: string;
}

export interface RequestProblem {
  status: 400 | 413;
  code: ProblemCode;
  message: string;
}

export type ProgramResult =
  | { kind: 'programmed'; batch: string; report: string | null; tokens: ProvisioningPackage[] }
  /** 409: nothing was programmed (and nothing this request wrote is left in use). */
  | { kind: 'refused'; code: ProblemCode; message: string; serials: string[] };

export type ReprogramResult =
  | { kind: 'reprogrammed'; batch: string; report: string | null; tokens: ProvisioningPackage[] }
  | { kind: 'not-found' }
  | { kind: 'refused'; status: 400 | 409; code: ProblemCode; message: string };

export interface ProgramDeps {
  vault: PacedVault;
  tokens: EntityTable<TokenEntity>;
  blobs: BlobStore;
  clock: Clock;
  log: Logger;
  containers: { reports: string };
  issuer: string;
  /** Parallel vault and table calls; the vault limiters pace them, this bounds sockets and memory. */
  concurrency?: number;
  /** The verify seed cache: a version disabled here is dropped from it at once. */
  seeds?: SeedCache;
}

const REQUEST_KEYS = new Set(['tokens', 'algorithm', 'digits', 'period']);
const TOKEN_KEYS = new Set(['serial', 'manufacturer', 'model']);
const INVISIBLE_OR_CONTROL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
/** Serials named in one message; the rest are counted. */
const SERIALS_SHOWN = 20;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const invalid = (message: string, code: ProblemCode = 'REQUEST_INVALID'): { ok: false; problem: RequestProblem } => ({
  ok: false,
  problem: { status: 400, code, message },
});

function choice<T extends string | number>(
  value: unknown,
  allowed: readonly T[],
  fallback: T,
  name: string,
): { ok: true; value: T } | { ok: false; problem: RequestProblem } {
  if (value === undefined) return { ok: true, value: fallback };
  if ((allowed as readonly unknown[]).includes(value)) return { ok: true, value: value as T };
  return invalid(`"${name}" must be ${allowed.map((a) => JSON.stringify(a)).join(' or ')} (default ${JSON.stringify(fallback)}).`);
}

/**
 * Checks a programming request body (already parsed JSON). Messages name positions and fields, and quote a
 * serial only once it passed the serial check: a client that put a secret where a serial goes never sees it echoed.
 */
export function parseProgramRequest(
  value: unknown,
  maxTokens: number,
): { ok: true; request: ProgramRequest } | { ok: false; problem: RequestProblem } {
  const shape =
    'The body must be { "tokens": [ { "serial", "manufacturer"?, "model"? } ], "period"?: 30|60, "algorithm"?: "SHA1"|"SHA256", "digits"?: 6|8 }.';
  if (!isRecord(value) || Object.keys(value).some((k) => !REQUEST_KEYS.has(k)) || !Array.isArray(value.tokens)) return invalid(shape);
  const list = value.tokens as unknown[];
  if (list.length === 0) return invalid(`"tokens" is empty. ${shape}`);
  if (list.length > maxTokens) {
    return {
      ok: false,
      problem: {
        status: 413,
        code: 'REQUEST_TOO_LARGE',
        message: `The request names ${list.length} tokens; at most ${maxTokens} may be programmed at once (PROGRAM_MAX_TOKENS). Send them in smaller requests.`,
      },
    };
  }
  const algorithm = choice(value.algorithm, PROGRAM_ALGORITHMS, 'SHA1', 'algorithm');
  if (!algorithm.ok) return algorithm;
  const digits = choice(value.digits, PROGRAM_DIGITS, 6, 'digits');
  if (!digits.ok) return digits;
  const period = choice(value.period, PROGRAM_PERIODS, 30, 'period');
  if (!period.ok) return period;

  const tokens: ProgramRequest['tokens'] = [];
  const firstIndex = new Map<string, number>();
  for (const [i, entry] of list.entries()) {
    const at = `tokens[${i}]`;
    if (!isRecord(entry) || Object.keys(entry).some((k) => !TOKEN_KEYS.has(k)))
      return invalid(
        `${at} must be an object with "serial" and optionally "manufacturer" and "model" (nothing else: the secret is made here).`,
      );
    if (typeof entry.serial !== 'string') return invalid(`${at}.serial must be a string.`, 'SERIAL_MISSING');
    const serial = entry.serial;
    const refused = checkSerial(serial);
    if (refused) return invalid(`${at}.serial is not one a token can have: ${refused.message.replace(/^Line \?: /, '')}`, refused.code);
    const labelFault = otpauthSerialFault(serial);
    if (labelFault) return invalid(`${at}.serial cannot be programmed: ${labelFault}.`, 'SERIAL_INVALID');
    const previous = firstIndex.get(serial);
    if (previous !== undefined) return invalid(`${at}.serial ${quoteValue(serial)} repeats tokens[${previous}]; name each token once.`);
    firstIndex.set(serial, i);
    const fields: Record<'manufacturer' | 'model', string> = { manufacturer: '', model: '' };
    for (const field of ['manufacturer', 'model'] as const) {
      const text = entry[field];
      if (text === undefined) continue;
      if (typeof text !== 'string' || text.length > ENTRA_MAX_FIELD_CHARS || INVISIBLE_OR_CONTROL.test(text)) {
        return invalid(
          `${at}.${field} must be text of at most ${ENTRA_MAX_FIELD_CHARS} characters without control or invisible characters.`,
          'FIELD_INVALID',
        );
      }
      fields[field] = text.trim();
    }
    tokens.push({ serial, ...fields });
  }
  return { ok: true, request: { tokens, algorithm: algorithm.value, digits: digits.value, period: period.value } };
}

function listSerials(serials: readonly string[]): string {
  const shown = serials
    .slice(0, SERIALS_SHOWN)
    .map((s) => quoteValue(s))
    .join(', ');
  return serials.length > SERIALS_SHOWN ? `${shown} and ${serials.length - SERIALS_SHOWN} more` : shown;
}

function compactTimestamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** A token minted by this request, with what it wrote so far (for the rollback). */
interface Minted {
  token: OathToken;
  secretName: string;
  value: string;
  /** A write was sent: it may have landed even if it failed. */
  attempted: boolean;
  version?: string;
}

/** Why a request stopped part-way, carried to the rollback and then to the answer. */
class Refusal extends Error {
  constructor(
    readonly code: ProblemCode,
    message: string,
    readonly serials: string[],
  ) {
    super(message);
    this.name = 'Refusal';
  }
}

export class ProgramService {
  constructor(private readonly deps: ProgramDeps) {}

  private get concurrency(): number {
    return this.deps.concurrency ?? 16;
  }

  private newBatch(): { batch: string; reportNames: ReportNames } {
    const batch = `${PROGRAMMED_BATCH_PREFIX}${compactTimestamp(this.deps.clock.now())}-${randomBytes(6).toString('hex')}`;
    return { batch, reportNames: reportOfProgrammedBatch(batch)! };
  }

  async program(request: ProgramRequest): Promise<ProgramResult> {
    const { deps } = this;
    const startedAt = deps.clock.now().toISOString();
    const { batch, reportNames } = this.newBatch();

    // 1. Every serial must be new: no inventory row, no active secret under its name.
    const found = await mapPool(request.tokens, this.concurrency, async (t) => {
      if (await deps.tokens.get(t.serial)) return 'inventory' as const;
      if (await deps.vault.get(secretNameForSerial(t.serial))) return 'vault' as const;
      return undefined;
    });
    const inInventory = request.tokens.filter((_, i) => found[i] === 'inventory').map((t) => t.serial);
    const inVault = request.tokens.filter((_, i) => found[i] === 'vault').map((t) => t.serial);
    if (inInventory.length + inVault.length > 0) return this.refusedAsExisting(inInventory, inVault);

    const minted: Minted[] = request.tokens.map((t) => {
      const token: OathToken = {
        serial: t.serial,
        manufacturer: t.manufacturer,
        model: t.model,
        type: 'totp',
        algorithm: request.algorithm,
        digits: request.digits,
        period: request.period,
        secret: mintSecret(request.algorithm),
      };
      return { token, secretName: secretNameForSerial(t.serial), value: toCanonicalBase32(token.secret), attempted: false };
    });
    const inserted = new Map<string, string>();
    try {
      // 2. Every secret; a write retried after an ambiguous failure re-reads first, so it lands once.
      await mapPool(minted, this.concurrency, async (m) => {
        m.attempted = true;
        let stored;
        try {
          stored = await deps.vault.ensureSecret(m.secretName, m.value, {
            contentType: SECRET_CONTENT_TYPE,
            tags: secretTags(m.token, batch),
          });
        } catch (err) {
          if (!(err instanceof SecretDeletedError)) throw err;
          throw new Refusal(
            'VAULT_SECRET_DELETED',
            `Serial ${quoteValue(m.token.serial)}: Key Vault holds a deleted (recoverable) secret under its name ${m.secretName}, which blocks a new one. Purge it in Key Vault if that token is gone for good (or recover it: the serial then exists, and a stored token can be reprogrammed), then send the request again`,
            [m.token.serial],
          );
        }
        // Another writer (an ingest, a second request) put a secret there since the check.
        if (stored.outcome === 'conflict') throw this.existing([], [m.token.serial]);
        m.version = stored.version;
      });
      // 3. Only now the inventory: a row never points at a secret that is not there.
      await mapPool(minted, this.concurrency, async (m) => {
        try {
          inserted.set(
            m.token.serial,
            await deps.tokens.insert(
              m.token.serial,
              newTokenEntity(m.token, m.secretName, m.version!, batch, deps.clock.now().toISOString()),
            ),
          );
        } catch (err) {
          if (err instanceof ConflictError) throw this.existing([m.token.serial], []);
          throw err;
        }
      });
    } catch (err) {
      const undone = await this.rollback(minted, inserted, batch);
      if (err instanceof Refusal)
        return { kind: 'refused', code: err.code, message: `${err.message}. Nothing was programmed.${undone}`, serials: err.serials };
      deps.log.error('Programming failed part-way and was rolled back', {
        batch,
        tokens: minted.length,
        error: (err as Error)?.name ?? 'error',
      });
      throw err;
    }

    const items = minted.map((m) => ({ serial: m.token.serial, result: 'programmed' }));
    const summary = `${minted.length} tokens programmed (${request.algorithm}, ${request.digits} digits, ${request.period} s): their secrets are in Key Vault. The provisioning package went to the caller once and is kept nowhere else.`;
    const report = await this.writeReport(reportNames, batch, startedAt, summary, { programmed: minted.length }, request, items);
    deps.log.info('Tokens programmed', { batch, tokens: minted.length, report });
    return { kind: 'programmed', batch, report, tokens: await Promise.all(minted.map((m) => this.package(m.token))) };
  }

  /**
   * A new secret for a token whose package was lost or whose burning failed: a new version of its vault secret,
   * the old one disabled, the inventory pointing at the new one. Only while the token is `stored`: once exported
   * the old secret is in an import CSV or in Entra ID, which a new one would not match.
   */
  async reprogram(serial: string): Promise<ReprogramResult> {
    const { deps } = this;
    const startedAt = deps.clock.now().toISOString();
    const labelFault = otpauthSerialFault(serial);
    if (labelFault)
      return {
        kind: 'refused',
        status: 400,
        code: 'SERIAL_INVALID',
        message: `Serial ${quoteValue(serial)} cannot be programmed: ${labelFault}.`,
      };
    const row = await deps.tokens.get(serial);
    if (!row) return { kind: 'not-found' };
    const stateProblem = reprogramStateProblem(row.value);
    if (stateProblem) return stateProblem;
    const algorithm = parseHashAlgorithm(row.value.algorithm) as HashAlgorithm;
    const { batch, reportNames } = this.newBatch();
    const token: OathToken = {
      serial,
      manufacturer: row.value.manufacturer,
      model: row.value.model,
      type: 'totp',
      algorithm,
      digits: row.value.digits,
      period: row.value.period,
      secret: mintSecret(algorithm),
    };
    const m: Minted = { token, secretName: row.value.secretName, value: toCanonicalBase32(token.secret), attempted: true };
    // Every enabled version before this one is disabled once the new one is recorded.
    const previous = new Set([row.value.secretVersion]);

    try {
      const active = await deps.vault.get(m.secretName);
      if (active) previous.add(active.version);
      try {
        m.version = (
          await deps.vault.addVersion(m.secretName, m.value, { contentType: SECRET_CONTENT_TYPE, tags: secretTags(token, batch) })
        ).version;
      } catch (err) {
        if (!(err instanceof SecretDeletedError)) throw err;
        throw new Refusal(
          'VAULT_SECRET_DELETED',
          `Token ${quoteValue(serial)}: its vault secret ${m.secretName} is deleted (recoverable) in Key Vault, so no version can be added. Recover it in Key Vault (or retire the token)`,
          [serial],
        );
      }
      // The commit: the row now names the new version (builds and verify read that one). ETag-conditional, so a
      // build that claimed the token meanwhile wins and this request takes its version back.
      const version = m.version;
      await updateWithRetry(
        deps.tokens,
        serial,
        (current) => {
          if (!current) throw new Refusal('TOKEN_NOT_FOUND', `No token has serial ${quoteValue(serial)} any more`, [serial]);
          const changed = reprogramStateProblem(current.value);
          if (changed)
            throw new Refusal(
              changed.code,
              `Token ${quoteValue(serial)} became ${current.value.state} while it was being reprogrammed (an import build or an operator changed it); only a stored token is given a new secret`,
              [serial],
            );
          previous.add(current.value.secretVersion);
          const now = deps.clock.now().toISOString();
          const next: TokenEntity = {
            ...current.value,
            secretVersion: version,
            secretBytes: token.secret.length,
            batch,
            updatedAt: now,
            // Facts about the old secret: its replay floor, drift, activation and HOTP counter do not carry over.
            lastAcceptedStep: null,
            counter: null,
            activatedBuildId: null,
            deviceId: null,
            userId: null,
            methodId: null,
            driftSeconds: null,
            history: appendHistory(current.value.history, now, 'reprogrammed', batch),
          };
          return writeRow(next, () => undefined);
        },
        { current: row },
      );
    } catch (err) {
      const undone = await this.rollback([m], new Map(), batch);
      if (err instanceof Refusal)
        return { kind: 'refused', status: 409, code: err.code, message: `${err.message}. Nothing was changed.${undone}` };
      throw err;
    }

    previous.delete(m.version);
    for (const version of previous) {
      if (!version) continue;
      try {
        deps.seeds?.forget(m.secretName);
        await deps.vault.disable(m.secretName, version);
      } catch (err) {
        // The new version is recorded and newest: the old one is no longer read, but should not stay enabled.
        deps.log.error('Old secret version still enabled after reprogramming; disable it in Key Vault', {
          serial,
          secretName: m.secretName,
          version,
          error: (err as Error)?.name ?? 'error',
        });
      }
    }
    const summary = `Token ${serial} reprogrammed: a new secret (version ${m.version}) replaces the old one, which is disabled. The provisioning package went to the caller once and is kept nowhere else.`;
    const request = { algorithm: token.algorithm, digits: token.digits, period: token.period };
    const report = await this.writeReport(reportNames, batch, startedAt, summary, { reprogrammed: 1 }, request, [
      { serial, result: 'reprogrammed' },
    ]);
    deps.log.info('Token reprogrammed', { serial, batch, report });
    return { kind: 'reprogrammed', batch, report, tokens: [await this.package(token)] };
  }

  private existing(inInventory: string[], inVault: string[]): Refusal {
    const parts: string[] = [];
    if (inInventory.length) parts.push(`in the inventory: ${listSerials(inInventory)}`);
    if (inVault.length)
      parts.push(
        `as an active Key Vault secret without an inventory row (a seed-file ingest in progress, or a request that failed and could not be rolled back: if no ingest is running, disable or delete that secret): ${listSerials(inVault)}`,
      );
    return new Refusal(
      'TOKEN_ALREADY_EXISTS',
      `${inInventory.length + inVault.length} of the serials already exist, ${parts.join('; ')}. Remove them from the request (a stored token whose package was lost gets a new one with POST /api/tokens/{serial}/reprogram)`,
      [...inInventory, ...inVault],
    );
  }

  private refusedAsExisting(inInventory: string[], inVault: string[]): ProgramResult {
    const refusal = this.existing(inInventory, inVault);
    return { kind: 'refused', code: refusal.code, message: `${refusal.message}. Nothing was programmed.`, serials: refusal.serials };
  }

  /**
   * Takes back what a failed request wrote: deletes the rows it inserted (only if unchanged since), disables every
   * version it wrote or may have written. Returns a sentence for the answer when something could not be undone.
   */
  private async rollback(minted: Minted[], inserted: Map<string, string>, batch: string): Promise<string> {
    const { deps } = this;
    let rowsLeft = 0;
    let secretsLeft = 0;
    await mapPool([...inserted], this.concurrency, async ([serial, etag]) => {
      try {
        await deps.tokens.delete(serial, etag);
      } catch (err) {
        rowsLeft++;
        deps.log.error('Rollback could not delete an inventory row this request inserted', {
          batch,
          serial,
          error: (err as Error)?.name ?? 'error',
        });
      }
    });
    await mapPool(
      minted.filter((m) => m.attempted),
      this.concurrency,
      async (m) => {
        try {
          let version = m.version;
          // The write failed, yet may have landed (its answer lost): the value tells whether the newest is ours.
          if (version === undefined) {
            const current = await deps.vault.get(m.secretName);
            if (current?.value === m.value) version = current.version;
          }
          deps.seeds?.forget(m.secretName);
          if (version !== undefined) await deps.vault.disable(m.secretName, version);
        } catch (err) {
          secretsLeft++;
          deps.log.error('Rollback could not disable a secret version this request wrote; disable it in Key Vault', {
            batch,
            secretName: m.secretName,
            version: m.version ?? null,
            error: (err as Error)?.name ?? 'error',
          });
        }
      },
    );
    if (rowsLeft + secretsLeft === 0) return '';
    return ` The rollback left ${rowsLeft} inventory rows and ${secretsLeft} secret versions of batch ${batch} behind (the function log names them).`;
  }

  private async package(token: OathToken): Promise<ProvisioningPackage> {
    const uri = otpauthUri({
      issuer: this.deps.issuer,
      serial: token.serial,
      secret: token.secret,
      algorithm: token.algorithm,
      digits: token.digits,
      period: token.period,
    });
    return {
      serial: token.serial,
      otpauthUri: uri,
      qrSvg: await qrSvg(uri),
      secretBase32: toCanonicalBase32(token.secret),
      secretHex: Buffer.from(token.secret).toString('hex'),
    };
  }

  /** Serials and settings only. Written after the commit; a failure here must not cost the caller the package. */
  private async writeReport(
    names: ReportNames,
    batch: string,
    startedAt: string,
    summary: string,
    counts: Record<string, number>,
    settings: { algorithm: string; digits: number; period: number },
    items: RunReport['items'],
  ): Promise<string | null> {
    const report: RunReport = {
      kind: 'programmed',
      subject: batch,
      batch,
      startedAt,
      finishedAt: this.deps.clock.now().toISOString(),
      outcome: 'completed',
      summary,
      counts,
      details: { algorithm: settings.algorithm, digits: settings.digits, period: settings.period, issuer: this.deps.issuer },
      items,
      problems: [],
    };
    try {
      return await writeRunReport(this.deps.blobs, this.deps.containers.reports, names, report);
    } catch (err) {
      this.deps.log.warn('Programming report not written', { batch, error: (err as Error)?.name ?? 'error' });
      return null;
    }
  }
}

/** Why a token cannot get a new secret, or undefined when it can (state `stored`, a TOTP token). */
function reprogramStateProblem(row: TokenEntity): Extract<ReprogramResult, { kind: 'refused' }> | undefined {
  const serial = quoteValue(row.serial);
  if (row.state === 'retired')
    return {
      kind: 'refused',
      status: 409,
      code: 'TOKEN_STATE_INVALID',
      message: `Token ${serial} is retired; a retired token is never given a new secret.`,
    };
  if (row.state !== 'stored') {
    return {
      kind: 'refused',
      status: 409,
      code: 'TOKEN_STATE_INVALID',
      message: `Token ${serial} is ${row.state}: its secret is already in an import CSV or in Entra ID, which a new one would not match. Burn the package delivered earlier, or retire this token (and delete it in Entra ID) and program the device under a new serial.`,
    };
  }
  if (row.type !== 'totp' || !parseHashAlgorithm(row.algorithm)) {
    return {
      kind: 'refused',
      status: 409,
      code: 'TOKEN_NOT_TOTP',
      message: `Token ${serial} is not a time-based (TOTP) token; only those can be programmed here.`,
    };
  }
  return undefined;
}
