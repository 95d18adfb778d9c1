/**
 * Local stand-in for Azure Key Vault (secrets only), good enough for the unmodified `SecretClient` of
 * `@azure/keyvault-secrets` 4.x.
 *
 * Transport choice: plain HTTP on 127.0.0.1. HTTPS would need a self-signed certificate that every client and child
 * process must be told to trust; for a loopback-only dev tool that buys nothing. Clients therefore pass
 * `allowInsecureConnection: true`, and, because the host is not `*.vault.azure.net`,
 * `disableChallengeResourceVerification: true` (see `client.ts`).
 *
 * WARNING: with `persistPath` the journal file holds every secret value IN PLAINTEXT. This stand-in is for
 * development and tests only; never point it at real token seeds you care about, and never deploy it.
 *
 * Behaviour follows the Key Vault secrets REST API reference (Set/Get/Update/Delete Secret, Get Secrets,
 * Get Secret Versions, Get Deleted Secret(s), Recover/Purge Deleted Secret) and the documented service limits and
 * throttling (429 `Throttled`, rejected calls not counted). Optional "realism" adds throttling, latency and faults.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';

export interface KeyVaultRealism {
  throttling?: boolean;
  createsPer10s?: number;
  othersPer10s?: number;
  latencyMs?: number;
  errorRate?: number /*0..1 share of 500/503*/;
  timeoutRate?: number /*0..1*/;
  timeoutMs?: number;
}

export interface KeyVaultStandInOptions {
  port?: number /*0 = free port*/;
  host?: string /*default 127.0.0.1*/;
  persistPath?: string;
  realism?: KeyVaultRealism;
  log?: (line: string) => void;
}

export interface KeyVaultStandIn {
  url: string /* e.g. http://127.0.0.1:PORT with no path */;
  port: number;
  setRealism(r: KeyVaultRealism): void;
  stats(): KeyVaultStats;
  close(): Promise<void>;
}

export type KeyVaultOperation =
  | 'setSecret'
  | 'getSecret'
  | 'updateSecret'
  | 'deleteSecret'
  | 'getSecrets'
  | 'getSecretVersions'
  | 'getDeletedSecrets'
  | 'getDeletedSecret'
  | 'recoverDeletedSecret'
  | 'purgeDeletedSecret';

export interface KeyVaultStats {
  /** Epoch ms when the counters were last reset (start or `/_admin/reset`). */
  since: number;
  /** API requests received (challenges, throttled and faulted ones included; admin calls excluded). */
  requests: number;
  /** 401 bearer challenges sent. */
  challenges: number;
  /** Successful creates (PUT set secret answered 200). */
  creates: number;
  /** Requests answered 429 Throttled. */
  throttled: number;
  /** Faults injected, all kinds. */
  faults: number;
  faultsByKind: { status500: number; status503: number; timeouts: number };
  /** Requests that reached each operation (passed faults and throttling), whatever their outcome. */
  operations: Record<KeyVaultOperation, number>;
  /** Responses by HTTP status. */
  statusCodes: Record<string, number>;
  /** Epoch ms of each successful create, in order. */
  createTimestamps: number[];
  /** Epoch ms of each get-secret request that passed faults and throttling (it used read budget), in order. */
  readTimestamps: number[];
  /** Secrets not deleted. */
  secrets: number;
  /** Secrets deleted and recoverable. */
  deletedSecrets: number;
  /** Number of versions of each secret that is not deleted, keyed by the secret's name as first written. */
  versionsPerSecret: Record<string, number>;
  realism: Required<KeyVaultRealism>;
}

/** Tenant announced in the bearer challenge; any made-up GUID works for local credentials. */
export const LOCAL_TENANT_ID = '6f1c2a3b-9d4e-4c5f-8a7b-0e1d2c3b4a59';
export const ADMIN_PREFIX = '/_admin/';

/** Documented service limits. "25k bytes" is read as 25 KiB. */
export const LIMITS = {
  nameMaxLength: 127,
  valueMaxBytes: 25 * 1024,
  maxTags: 15,
  tagNameMaxLength: 256,
  tagValueMaxLength: 256,
  contentTypeMaxLength: 255,
  pageSizeMax: 25,
  recoverableDays: 90,
} as const;

const DEFAULT_REALISM: Required<KeyVaultRealism> = {
  throttling: false,
  createsPer10s: 300,
  othersPer10s: 4000,
  latencyMs: 0,
  errorRate: 0,
  timeoutRate: 0,
  timeoutMs: 30_000,
};

const THROTTLE_WINDOW_MS = 10_000;
const MAX_REQUEST_BYTES = 2 * 1024 * 1024;
const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;
const RECOVERY_LEVEL = 'Recoverable+Purgeable';
const SERVICE_VERSION = '1.9.0.0-local';

// ---------------------------------------------------------------------------------------------------------------
// State

interface VersionRecord {
  version: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
  nbf?: number;
  exp?: number;
  /** Epoch seconds, as the service reports them. */
  created: number;
  updated: number;
}

interface DeletionInfo {
  deletedDate: number;
  scheduledPurgeDate: number;
}

interface SecretRecord {
  /** Name as first written; lookups are case-insensitive through the map key. */
  name: string;
  versions: Map<string, VersionRecord>;
  latest: string;
  deleted?: DeletionInfo;
}

type JournalRecord =
  | { t: 'header'; format: 'keyvault-standin-journal'; formatVersion: 1 }
  | { t: 'version'; key: string; name: string; v: VersionRecord; latest: boolean }
  | { t: 'deleted'; key: string; d: DeletionInfo }
  | { t: 'recovered'; key: string }
  | { t: 'purged'; key: string };

class SecretStore {
  readonly secrets = new Map<string, SecretRecord>();

  apply(record: JournalRecord): void {
    switch (record.t) {
      case 'header':
        return;
      case 'version': {
        let secret = this.secrets.get(record.key);
        if (!secret) {
          secret = { name: record.name, versions: new Map(), latest: record.v.version };
          this.secrets.set(record.key, secret);
        }
        secret.versions.set(record.v.version, record.v);
        if (record.latest) secret.latest = record.v.version;
        return;
      }
      case 'deleted': {
        const secret = this.secrets.get(record.key);
        if (secret) secret.deleted = record.d;
        return;
      }
      case 'recovered': {
        const secret = this.secrets.get(record.key);
        if (secret) delete secret.deleted;
        return;
      }
      case 'purged':
        this.secrets.delete(record.key);
        return;
    }
  }

  /** Records that rebuild the current state, used to compact the journal. */
  *snapshot(): Generator<JournalRecord> {
    yield { t: 'header', format: 'keyvault-standin-journal', formatVersion: 1 };
    for (const [key, secret] of this.secrets) {
      for (const v of secret.versions.values()) {
        if (v.version !== secret.latest) yield { t: 'version', key, name: secret.name, v, latest: false };
      }
      const latest = secret.versions.get(secret.latest);
      if (latest) yield { t: 'version', key, name: secret.name, v: latest, latest: true };
      if (secret.deleted) yield { t: 'deleted', key, d: secret.deleted };
    }
  }
}

/**
 * Append-only JSON-lines journal. Each acknowledged write is written and fdatasync'ed before the HTTP response
 * goes out, so a SIGKILL loses nothing that was acknowledged. Compacted (atomic rewrite) at start.
 */
class Journal {
  private fd: number;

  private constructor(
    private readonly filePath: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  static open(filePath: string, store: SecretStore, log: (line: string) => void): Journal {
    fs.mkdirSync(path.dirname(filePath), { recursive: true });
    if (fs.existsSync(filePath)) {
      const lines = fs.readFileSync(filePath, 'utf8').split('\n');
      let lastNonEmpty = lines.length - 1;
      while (lastNonEmpty >= 0 && lines[lastNonEmpty]?.trim() === '') lastNonEmpty--;
      for (let i = 0; i <= lastNonEmpty; i++) {
        const line = lines[i]?.trim() ?? '';
        if (line === '') continue;
        try {
          store.apply(JSON.parse(line) as JournalRecord);
        } catch {
          // Only a torn final line (crash mid-append of an unacknowledged write) is tolerable.
          if (i === lastNonEmpty) {
            log(`keyvault stand-in: ignoring torn last journal line ${i + 1}`);
            continue;
          }
          throw new Error(`Key Vault stand-in journal ${filePath} is corrupt at line ${i + 1}`);
        }
      }
    }
    Journal.compact(filePath, store);
    return new Journal(filePath, fs.openSync(filePath, 'a'));
  }

  private static compact(filePath: string, store: SecretStore): void {
    const tmp = `${filePath}.compact-${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      let chunk = '';
      for (const record of store.snapshot()) {
        chunk += JSON.stringify(record) + '\n';
        if (chunk.length > 1 << 20) {
          fs.writeSync(fd, chunk);
          chunk = '';
        }
      }
      if (chunk) fs.writeSync(fd, chunk);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, filePath);
    Journal.syncDirectory(filePath);
  }

  private static syncDirectory(filePath: string): void {
    try {
      const dirFd = fs.openSync(path.dirname(filePath), 'r');
      try {
        fs.fsyncSync(dirFd);
      } finally {
        fs.closeSync(dirFd);
      }
    } catch {
      // Some platforms cannot fsync a directory; the rename is still atomic.
    }
  }

  append(records: JournalRecord[]): void {
    fs.writeSync(this.fd, records.map((r) => JSON.stringify(r) + '\n').join(''));
    fs.fdatasyncSync(this.fd);
  }

  truncate(): void {
    fs.ftruncateSync(this.fd, 0);
    fs.writeSync(this.fd, JSON.stringify({ t: 'header', format: 'keyvault-standin-journal', formatVersion: 1 }) + '\n');
    fs.fsyncSync(this.fd);
  }

  close(): void {
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  get path(): string {
    return this.filePath;
  }
}

/** Sliding 10-second window of accepted calls; rejected (429) calls are never recorded. */
class SlidingWindow {
  private stamps: number[] = [];
  private head = 0;

  tryTake(now: number, limit: number): boolean {
    while (this.head < this.stamps.length && (this.stamps[this.head] ?? 0) <= now - THROTTLE_WINDOW_MS) this.head++;
    if (this.head > 1024 && this.head * 2 > this.stamps.length) {
      this.stamps = this.stamps.slice(this.head);
      this.head = 0;
    }
    if (this.stamps.length - this.head >= limit) return false;
    this.stamps.push(now);
    return true;
  }

  clear(): void {
    this.stamps = [];
    this.head = 0;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP plumbing

class KeyVaultError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
  }
}

const badParameter = (message: string): KeyVaultError => new KeyVaultError(400, 'BadParameter', message);

function secretNotFound(name: string, version?: string): KeyVaultError {
  const id = version ? `${name}/${version}` : name;
  return new KeyVaultError(
    404,
    'SecretNotFound',
    `A secret with (name/id) ${id} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

const deletedSecretNotFound = (name: string): KeyVaultError =>
  new KeyVaultError(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

function errorBody(err: KeyVaultError): unknown {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.innerCode ? { innererror: { code: err.innerCode } } : {}),
    },
  };
}

function readBody(req: http.IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJsonObject(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) throw badParameter('The request body is missing.');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw badParameter('The request body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badParameter('The request body must be a JSON object.');
  }
  return parsed as Record<string, unknown>;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function validateRealism(r: KeyVaultRealism): void {
  const isRate = (x: unknown): boolean => typeof x === 'number' && x >= 0 && x <= 1;
  const isPositiveInt = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 1;
  const isNonNegative = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (r.throttling !== undefined && typeof r.throttling !== 'boolean') throw new TypeError('throttling must be a boolean');
  if (r.createsPer10s !== undefined && !isPositiveInt(r.createsPer10s)) throw new TypeError('createsPer10s must be an integer >= 1');
  if (r.othersPer10s !== undefined && !isPositiveInt(r.othersPer10s)) throw new TypeError('othersPer10s must be an integer >= 1');
  if (r.latencyMs !== undefined && !isNonNegative(r.latencyMs)) throw new TypeError('latencyMs must be >= 0');
  if (r.timeoutMs !== undefined && !isNonNegative(r.timeoutMs)) throw new TypeError('timeoutMs must be >= 0');
  if (r.errorRate !== undefined && !isRate(r.errorRate)) throw new TypeError('errorRate must be between 0 and 1');
  if (r.timeoutRate !== undefined && !isRate(r.timeoutRate)) throw new TypeError('timeoutRate must be between 0 and 1');
}

const REALISM_KEYS = Object.keys(DEFAULT_REALISM) as (keyof KeyVaultRealism)[];

function pickRealism(input: Record<string, unknown>): KeyVaultRealism {
  const unknownKeys = Object.keys(input).filter((k) => !(REALISM_KEYS as string[]).includes(k));
  if (unknownKeys.length > 0) throw new TypeError(`unknown realism setting(s): ${unknownKeys.join(', ')}`);
  return input;
}

// ---------------------------------------------------------------------------------------------------------------
// The stand-in

interface Route {
  op: KeyVaultOperation;
  name?: string;
  version?: string;
}

const OPERATIONS: KeyVaultOperation[] = [
  'setSecret',
  'getSecret',
  'updateSecret',
  'deleteSecret',
  'getSecrets',
  'getSecretVersions',
  'getDeletedSecrets',
  'getDeletedSecret',
  'recoverDeletedSecret',
  'purgeDeletedSecret',
];

function emptyCounters(): Omit<KeyVaultStats, 'secrets' | 'deletedSecrets' | 'versionsPerSecret' | 'realism'> {
  return {
    since: Date.now(),
    requests: 0,
    challenges: 0,
    creates: 0,
    throttled: 0,
    faults: 0,
    faultsByKind: { status500: 0, status503: 0, timeouts: 0 },
    operations: Object.fromEntries(OPERATIONS.map((op) => [op, 0])) as Record<KeyVaultOperation, number>,
    statusCodes: {},
    createTimestamps: [],
    readTimestamps: [],
  };
}

class KeyVaultStandInServer {
  private readonly store = new SecretStore();
  private readonly journal: Journal | undefined;
  private realism: Required<KeyVaultRealism> = { ...DEFAULT_REALISM };
  private counters = emptyCounters();
  private readonly createWindow = new SlidingWindow();
  private readonly otherWindow = new SlidingWindow();
  private readonly heldRequests = new Set<{ timer: NodeJS.Timeout; socket: Socket }>();
  private closed = false;
  readonly server: http.Server;

  constructor(private readonly opts: KeyVaultStandInOptions) {
    const log = opts.log ?? (() => undefined);
    if (opts.realism) this.setRealism(opts.realism);
    if (opts.persistPath) this.journal = Journal.open(path.resolve(opts.persistPath), this.store, log);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        log(`keyvault stand-in: internal error: ${err instanceof Error ? err.message : String(err)}`);
        if (!res.headersSent && !res.destroyed) {
          this.send(res, { status: 500, body: errorBody(new KeyVaultError(500, 'InternalServerError', 'Internal error in the stand-in.')) });
        }
      });
    });
    // Clients keep connections alive; do not let idle sockets hold the process during close().
    this.server.keepAliveTimeout = 5_000;
  }

  setRealism(r: KeyVaultRealism): void {
    validateRealism(r);
    const next = { ...this.realism };
    for (const key of REALISM_KEYS) {
      const value = r[key];
      if (value !== undefined) (next as Record<string, unknown>)[key] = value;
    }
    if (next.errorRate + next.timeoutRate > 1) throw new TypeError('errorRate + timeoutRate must not exceed 1');
    this.realism = next;
  }

  stats(): KeyVaultStats {
    let secrets = 0;
    let deletedSecrets = 0;
    const versionsPerSecret: Record<string, number> = {};
    for (const secret of this.store.secrets.values()) {
      if (secret.deleted) {
        deletedSecrets++;
      } else {
        secrets++;
        versionsPerSecret[secret.name] = secret.versions.size;
      }
    }
    const c = this.counters;
    return {
      ...c,
      faultsByKind: { ...c.faultsByKind },
      operations: { ...c.operations },
      statusCodes: { ...c.statusCodes },
      createTimestamps: [...c.createTimestamps],
      readTimestamps: [...c.readTimestamps],
      secrets,
      deletedSecrets,
      versionsPerSecret,
      realism: { ...this.realism },
    };
  }

  reset(wipeData: boolean): void {
    this.counters = emptyCounters();
    this.createWindow.clear();
    this.otherWindow.clear();
    if (wipeData) {
      this.journal?.truncate();
      this.store.secrets.clear();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const held of this.heldRequests) {
      clearTimeout(held.timer);
      held.socket.destroy();
    }
    this.heldRequests.clear();
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closing;
    this.journal?.close();
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  private send(res: http.ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    const payload = reply.body === undefined ? undefined : JSON.stringify(reply.body);
    res.statusCode = reply.status;
    res.setHeader('x-ms-request-id', randomUUID());
    res.setHeader('x-ms-keyvault-service-version', SERVICE_VERSION);
    res.setHeader('cache-control', 'no-cache');
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    if (payload !== undefined) {
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.setHeader('content-length', Buffer.byteLength(payload));
      res.end(payload);
    } else {
      res.setHeader('content-length', 0);
      res.end();
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const raw = await readBody(req);
    if (this.closed) return;

    if (url.pathname.startsWith(ADMIN_PREFIX)) {
      this.send(res, this.handleAdmin(method, url.pathname.slice(ADMIN_PREFIX.length), raw));
      return;
    }

    this.counters.requests++;
    const reply = await this.handleApi(req, res, method, url, raw);
    if (reply === 'held' || this.closed) return;
    this.counters.statusCodes[String(reply.status)] = (this.counters.statusCodes[String(reply.status)] ?? 0) + 1;
    this.send(res, reply);
    this.log(`${method} ${url.pathname} -> ${reply.status} (${Date.now() - started} ms)`);
  }

  private handleAdmin(method: string, what: string, raw: Buffer | 'too-large'): Reply {
    const bad = (message: string): Reply => ({ status: 400, body: { error: { code: 'BadParameter', message } } });
    if (raw === 'too-large') return bad('request too large');
    try {
      if (what === 'stats' && method === 'GET') return { status: 200, body: this.stats() };
      if (what === 'realism' && method === 'GET') return { status: 200, body: { ...this.realism } };
      if (what === 'realism' && method === 'POST') {
        this.setRealism(pickRealism(parseJsonObject(raw)));
        return { status: 200, body: { ...this.realism } };
      }
      if (what === 'reset' && method === 'POST') {
        const body = raw.length > 0 ? parseJsonObject(raw) : {};
        this.reset(body.data === true);
        return { status: 200, body: { ok: true, wipedData: body.data === true } };
      }
    } catch (err) {
      return bad(err instanceof Error ? err.message : String(err));
    }
    return { status: 404, body: { error: { code: 'NotFound', message: `No admin endpoint ${method} /_admin/${what}` } } };
  }

  private async handleApi(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    url: URL,
    raw: Buffer | 'too-large',
  ): Promise<Reply | 'held'> {
    const realism = this.realism;
    if (realism.latencyMs > 0) {
      await sleep(realism.latencyMs);
      if (this.closed) return 'held';
    }

    // The SDK's first request carries no token (and no body); the vault answers with the bearer challenge.
    const authorization = req.headers.authorization ?? '';
    if (!/^Bearer\s+\S+/i.test(authorization)) {
      this.counters.challenges++;
      return {
        status: 401,
        headers: {
          'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${LOCAL_TENANT_ID}", resource="https://vault.azure.net"`,
        },
        body: errorBody(new KeyVaultError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.')),
      };
    }

    let route: Route;
    try {
      route = this.route(method, url.pathname);
    } catch (err) {
      if (err instanceof KeyVaultError) return { status: err.status, body: errorBody(err) };
      throw err;
    }

    // Faults are decided before the vault does anything: a faulted request changes no state and uses no budget.
    const roll = Math.random();
    if (roll < realism.timeoutRate) {
      this.counters.faults++;
      this.counters.faultsByKind.timeouts++;
      this.hold(req, res, realism.timeoutMs);
      return 'held';
    }
    if (roll < realism.timeoutRate + realism.errorRate) {
      this.counters.faults++;
      const unavailable = Math.random() < 0.5;
      if (unavailable) {
        this.counters.faultsByKind.status503++;
        return { status: 503, body: errorBody(new KeyVaultError(503, 'ServiceUnavailable', 'The service is temporarily unavailable (injected fault).')) };
      }
      this.counters.faultsByKind.status500++;
      return { status: 500, body: errorBody(new KeyVaultError(500, 'InternalServerError', 'An unexpected error occurred (injected fault).')) };
    }

    if (realism.throttling) {
      const isCreate = route.op === 'setSecret';
      const accepted = isCreate
        ? this.createWindow.tryTake(Date.now(), realism.createsPer10s)
        : this.otherWindow.tryTake(Date.now(), realism.othersPer10s);
      if (!accepted) {
        this.counters.throttled++;
        return {
          status: 429,
          body: errorBody(
            new KeyVaultError(
              429,
              'Throttled',
              isCreate
                ? `Request was not processed because too many requests were received. Reason: Secret create operations exceeded ${realism.createsPer10s} per 10 seconds for this vault.`
                : `Request was not processed because too many requests were received. Reason: Vault transactions exceeded ${realism.othersPer10s} per 10 seconds for this vault.`,
            ),
          ),
        };
      }
    }

    this.counters.operations[route.op]++;
    if (route.op === 'getSecret') this.counters.readTimestamps.push(Date.now());
    try {
      if (raw === 'too-large') throw new KeyVaultError(413, 'RequestEntityTooLarge', 'The request body is too large.');
      if (!url.searchParams.get('api-version')) throw badParameter('The api-version query parameter is missing.');
      return this.execute(route, url, raw, `http://${req.headers.host ?? `127.0.0.1:${this.port}`}`);
    } catch (err) {
      if (err instanceof KeyVaultError) return { status: err.status, body: errorBody(err) };
      throw err;
    }
  }

  /** A timeout fault: keep the request open without answering, then drop the connection. */
  private hold(req: http.IncomingMessage, res: http.ServerResponse, ms: number): void {
    const socket = req.socket;
    const held = {
      socket,
      timer: setTimeout(() => {
        this.heldRequests.delete(held);
        socket.destroy();
      }, ms),
    };
    this.heldRequests.add(held);
    res.on('close', () => {
      clearTimeout(held.timer);
      this.heldRequests.delete(held);
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private route(method: string, pathname: string): Route {
    let segments: string[];
    try {
      segments = pathname.split('/').slice(1).map((s) => decodeURIComponent(s));
    } catch {
      throw badParameter('The request URI is not valid.');
    }
    const [collection, name, third, fourth] = segments;
    const notFound = (): KeyVaultError => new KeyVaultError(404, 'NotFound', `The requested resource ${pathname} was not found.`);
    const notAllowed = (): KeyVaultError =>
      new KeyVaultError(405, 'MethodNotAllowed', `The HTTP method ${method} is not supported for ${pathname}.`);
    if (segments.length > 4 || (fourth !== undefined && fourth !== '')) throw notFound();

    if (collection === 'secrets') {
      if (name === undefined || name === '') {
        if (third !== undefined) throw notFound();
        if (method === 'GET') return { op: 'getSecrets' };
        throw notAllowed();
      }
      if (third === undefined || third === '') {
        if (method === 'GET') return { op: 'getSecret', name };
        if (method === 'PATCH') return { op: 'updateSecret', name };
        if (third === undefined && method === 'PUT') return { op: 'setSecret', name };
        if (third === undefined && method === 'DELETE') return { op: 'deleteSecret', name };
        throw notAllowed();
      }
      if (third === 'versions') {
        if (method === 'GET') return { op: 'getSecretVersions', name };
        throw notAllowed();
      }
      if (method === 'GET') return { op: 'getSecret', name, version: third };
      if (method === 'PATCH') return { op: 'updateSecret', name, version: third };
      throw notAllowed();
    }
    if (collection === 'deletedsecrets') {
      if (name === undefined || name === '') {
        if (third !== undefined) throw notFound();
        if (method === 'GET') return { op: 'getDeletedSecrets' };
        throw notAllowed();
      }
      if (third === undefined || third === '') {
        if (method === 'GET') return { op: 'getDeletedSecret', name };
        if (method === 'DELETE') return { op: 'purgeDeletedSecret', name };
        throw notAllowed();
      }
      if (third === 'recover') {
        if (method === 'POST') return { op: 'recoverDeletedSecret', name };
        throw notAllowed();
      }
    }
    throw notFound();
  }

  private execute(route: Route, url: URL, raw: Buffer, base: string): Reply {
    switch (route.op) {
      case 'getSecrets':
        return this.listSecrets(url, base);
      case 'getDeletedSecrets':
        return this.listDeletedSecrets(url, base);
      default:
        break;
    }
    const name = route.name ?? '';
    if (!NAME_PATTERN.test(name)) {
      throw badParameter(
        `The request URI contains an invalid name: ${name.slice(0, 140)}. Secret names must be 1-127 characters of 0-9, a-z, A-Z and -.`,
      );
    }
    const key = name.toLowerCase();
    switch (route.op) {
      case 'setSecret':
        return this.setSecret(key, name, raw, base);
      case 'getSecret':
        return this.getSecret(key, name, route.version, base);
      case 'updateSecret':
        return this.updateSecret(key, name, route.version, raw, base);
      case 'deleteSecret':
        return this.deleteSecret(key, name, base);
      case 'getSecretVersions':
        return this.listVersions(key, name, url, base);
      case 'getDeletedSecret':
        return this.getDeletedSecret(key, name, base);
      case 'recoverDeletedSecret':
        return this.recoverDeletedSecret(key, name, base);
      case 'purgeDeletedSecret':
        return this.purgeDeletedSecret(key, name);
      default:
        throw new KeyVaultError(404, 'NotFound', 'Unknown operation.');
    }
  }

  private commit(records: JournalRecord[]): void {
    // Durable first, then visible: a failed append leaves memory untouched.
    this.journal?.append(records);
    for (const record of records) this.store.apply(record);
  }

  // ---- operations ------------------------------------------------------------------------------------------

  private setSecret(key: string, name: string, raw: Buffer, base: string): Reply {
    const body = parseJsonObject(raw);
    const value = body.value;
    if (typeof value !== 'string') throw badParameter("The parameter 'value' is required and must be a string.");
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > LIMITS.valueMaxBytes) {
      throw badParameter(`The secret value is ${bytes} bytes; the maximum allowed size is ${LIMITS.valueMaxBytes} bytes.`);
    }
    const contentType = readContentType(body.contentType);
    const tags = readTags(body.tags);
    const attributes = readAttributes(body.attributes);

    const existing = this.store.secrets.get(key);
    if (existing?.deleted) {
      throw new KeyVaultError(
        409,
        'Conflict',
        `Secret ${existing.name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
        'ObjectIsDeletedButRecoverable',
      );
    }
    const now = nowSeconds();
    const record: VersionRecord = {
      version: randomBytes(16).toString('hex'),
      value,
      ...(contentType !== undefined ? { contentType } : {}),
      ...(tags !== undefined ? { tags } : {}),
      enabled: attributes.enabled ?? true,
      ...(attributes.nbf !== undefined ? { nbf: attributes.nbf } : {}),
      ...(attributes.exp !== undefined ? { exp: attributes.exp } : {}),
      created: now,
      updated: now,
    };
    const displayName = existing?.name ?? name;
    this.commit([{ t: 'version', key, name: displayName, v: record, latest: true }]);
    this.counters.creates++;
    this.counters.createTimestamps.push(Date.now());
    return { status: 200, body: secretBundle(base, displayName, record, true) };
  }

  private activeSecret(key: string, name: string): SecretRecord {
    const secret = this.store.secrets.get(key);
    if (!secret || secret.deleted) throw secretNotFound(name);
    return secret;
  }

  private findVersion(secret: SecretRecord, name: string, version: string | undefined): VersionRecord {
    const record = secret.versions.get(version || secret.latest);
    if (!record) throw secretNotFound(name, version);
    return record;
  }

  private getSecret(key: string, name: string, version: string | undefined, base: string): Reply {
    const secret = this.activeSecret(key, name);
    const record = this.findVersion(secret, name, version);
    if (!record.enabled) {
      throw new KeyVaultError(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
    }
    return { status: 200, body: secretBundle(base, secret.name, record, true) };
  }

  private updateSecret(key: string, name: string, version: string | undefined, raw: Buffer, base: string): Reply {
    const secret = this.activeSecret(key, name);
    const current = this.findVersion(secret, name, version);
    const body = raw.length > 0 ? parseJsonObject(raw) : {};
    if ('value' in body) throw badParameter('The value of a secret cannot be changed by an update; set a new version instead.');
    const contentType = readContentType(body.contentType);
    const tags = readTags(body.tags);
    const attributes = readAttributes(body.attributes);
    const next: VersionRecord = { ...current, updated: nowSeconds() };
    if (contentType !== undefined) next.contentType = contentType;
    if (tags !== undefined) next.tags = tags; // Tags given replace the whole set, as the service does.
    if (attributes.enabled !== undefined) next.enabled = attributes.enabled;
    if (attributes.nbf !== undefined) next.nbf = attributes.nbf;
    if (attributes.exp !== undefined) next.exp = attributes.exp;
    this.commit([{ t: 'version', key, name: secret.name, v: next, latest: current.version === secret.latest }]);
    return { status: 200, body: secretBundle(base, secret.name, next, false) };
  }

  private deleteSecret(key: string, name: string, base: string): Reply {
    const secret = this.activeSecret(key, name);
    const deletedDate = nowSeconds();
    const d: DeletionInfo = { deletedDate, scheduledPurgeDate: deletedDate + LIMITS.recoverableDays * 86_400 };
    this.commit([{ t: 'deleted', key, d }]);
    return { status: 200, body: deletedSecretBundle(base, secret) };
  }

  private deletedSecret(key: string, name: string): SecretRecord & { deleted: DeletionInfo } {
    const secret = this.store.secrets.get(key);
    if (!secret?.deleted) throw deletedSecretNotFound(name);
    return secret as SecretRecord & { deleted: DeletionInfo };
  }

  private getDeletedSecret(key: string, name: string, base: string): Reply {
    return { status: 200, body: deletedSecretBundle(base, this.deletedSecret(key, name)) };
  }

  private recoverDeletedSecret(key: string, name: string, base: string): Reply {
    const secret = this.deletedSecret(key, name);
    this.commit([{ t: 'recovered', key }]);
    const latest = this.findVersion(secret, name, undefined);
    return { status: 200, body: secretBundle(base, secret.name, latest, false) };
  }

  private purgeDeletedSecret(key: string, name: string): Reply {
    this.deletedSecret(key, name);
    this.commit([{ t: 'purged', key }]);
    return { status: 204 };
  }

  private listSecrets(url: URL, base: string): Reply {
    const pageSize = readPageSize(url);
    const after = readSkipToken(url);
    const keys = [...this.store.secrets.entries()]
      .filter(([k, s]) => !s.deleted && (after === undefined || k > after))
      .map(([k]) => k)
      .sort();
    const page = keys.slice(0, pageSize);
    const value = page.map((k) => {
      const secret = this.store.secrets.get(k) as SecretRecord;
      const latest = secret.versions.get(secret.latest) as VersionRecord;
      return secretItem(`${base}/secrets/${secret.name}`, latest);
    });
    const lastKey = page[page.length - 1];
    const nextLink = keys.length > pageSize && lastKey !== undefined ? pageLink(base, '/secrets', url, pageSize, lastKey) : null;
    return { status: 200, body: { value, nextLink } };
  }

  private listVersions(key: string, name: string, url: URL, base: string): Reply {
    const pageSize = readPageSize(url);
    const offset = Number(readSkipToken(url) ?? '0');
    if (!Number.isInteger(offset) || offset < 0) throw badParameter('The $skiptoken parameter is not valid.');
    const secret = this.store.secrets.get(key);
    // A missing (or deleted) secret has no versions to list: an empty page, not an error.
    const versions = secret && !secret.deleted ? [...secret.versions.values()] : [];
    const page = versions.slice(offset, offset + pageSize);
    const value = page.map((v) => secretItem(`${base}/secrets/${secret?.name ?? name}/${v.version}`, v));
    const next = offset + pageSize;
    const nextLink = versions.length > next ? pageLink(base, `/secrets/${secret?.name ?? name}/versions`, url, pageSize, String(next)) : null;
    return { status: 200, body: { value, nextLink } };
  }

  private listDeletedSecrets(url: URL, base: string): Reply {
    const pageSize = readPageSize(url);
    const after = readSkipToken(url);
    const keys = [...this.store.secrets.entries()]
      .filter(([k, s]) => s.deleted && (after === undefined || k > after))
      .map(([k]) => k)
      .sort();
    const page = keys.slice(0, pageSize);
    const value = page.map((k) => {
      const secret = this.store.secrets.get(k) as SecretRecord & { deleted: DeletionInfo };
      const latest = secret.versions.get(secret.latest) as VersionRecord;
      return {
        ...secretItem(`${base}/secrets/${secret.name}`, latest),
        recoveryId: `${base}/deletedsecrets/${secret.name}`,
        deletedDate: secret.deleted.deletedDate,
        scheduledPurgeDate: secret.deleted.scheduledPurgeDate,
      };
    });
    const lastKey = page[page.length - 1];
    const nextLink = keys.length > pageSize && lastKey !== undefined ? pageLink(base, '/deletedsecrets', url, pageSize, lastKey) : null;
    return { status: 200, body: { value, nextLink } };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation and response shapes

function readContentType(input: unknown): string | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'string') throw badParameter('contentType must be a string.');
  if (input.length > LIMITS.contentTypeMaxLength) {
    throw badParameter(`contentType is ${input.length} characters; the maximum is ${LIMITS.contentTypeMaxLength}.`);
  }
  return input;
}

function readTags(input: unknown): Record<string, string> | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'object' || Array.isArray(input)) throw badParameter('tags must be an object of string values.');
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > LIMITS.maxTags) {
    throw badParameter(`The number of tags (${entries.length}) exceeds the maximum of ${LIMITS.maxTags}.`);
  }
  const tags: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw badParameter(`The value of tag '${k.slice(0, 64)}' must be a string.`);
    if (k.length === 0 || k.length > LIMITS.tagNameMaxLength) {
      throw badParameter(`Tag names must be 1-${LIMITS.tagNameMaxLength} characters; got ${k.length}.`);
    }
    if (v.length > LIMITS.tagValueMaxLength) {
      throw badParameter(`The value of tag '${k.slice(0, 64)}' is ${v.length} characters; the maximum is ${LIMITS.tagValueMaxLength}.`);
    }
    tags[k] = v;
  }
  return tags;
}

function readAttributes(input: unknown): { enabled?: boolean; nbf?: number; exp?: number } {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) throw badParameter('attributes must be an object.');
  const a = input as Record<string, unknown>;
  const out: { enabled?: boolean; nbf?: number; exp?: number } = {};
  if (a.enabled !== undefined && a.enabled !== null) {
    if (typeof a.enabled !== 'boolean') throw badParameter('attributes.enabled must be a boolean.');
    out.enabled = a.enabled;
  }
  for (const field of ['nbf', 'exp'] as const) {
    const v = a[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badParameter(`attributes.${field} must be a number of seconds since the epoch.`);
    out[field] = Math.floor(v);
  }
  return out;
}

function readPageSize(url: URL): number {
  const raw = url.searchParams.get('maxresults');
  if (raw === null || raw === '') return LIMITS.pageSizeMax;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > LIMITS.pageSizeMax) {
    throw badParameter(`Invalid maxresults parameter '${raw.slice(0, 20)}'. The value must be between 1 and ${LIMITS.pageSizeMax}.`);
  }
  return n;
}

function readSkipToken(url: URL): string | undefined {
  const token = url.searchParams.get('$skiptoken');
  if (token === null || token === '') return undefined;
  return Buffer.from(token, 'base64url').toString('utf8');
}

function pageLink(base: string, collectionPath: string, url: URL, pageSize: number, cursor: string): string {
  const apiVersion = url.searchParams.get('api-version') ?? '7.6';
  const token = Buffer.from(cursor, 'utf8').toString('base64url');
  return `${base}${collectionPath}?api-version=${encodeURIComponent(apiVersion)}&$skiptoken=${token}&maxresults=${pageSize}`;
}

function attributesOf(v: VersionRecord): Record<string, unknown> {
  return {
    enabled: v.enabled,
    ...(v.nbf !== undefined ? { nbf: v.nbf } : {}),
    ...(v.exp !== undefined ? { exp: v.exp } : {}),
    created: v.created,
    updated: v.updated,
    recoveryLevel: RECOVERY_LEVEL,
    recoverableDays: LIMITS.recoverableDays,
  };
}

function secretBundle(base: string, name: string, v: VersionRecord, withValue: boolean): Record<string, unknown> {
  return {
    ...(withValue ? { value: v.value } : {}),
    id: `${base}/secrets/${name}/${v.version}`,
    ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
    ...(v.tags !== undefined ? { tags: v.tags } : {}),
    attributes: attributesOf(v),
  };
}

function secretItem(id: string, v: VersionRecord): Record<string, unknown> {
  return {
    id,
    ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
    ...(v.tags !== undefined ? { tags: v.tags } : {}),
    attributes: attributesOf(v),
  };
}

function deletedSecretBundle(base: string, secret: SecretRecord): Record<string, unknown> {
  const latest = secret.versions.get(secret.latest) as VersionRecord;
  const deleted = secret.deleted as DeletionInfo;
  return {
    recoveryId: `${base}/deletedsecrets/${secret.name}`,
    deletedDate: deleted.deletedDate,
    scheduledPurgeDate: deleted.scheduledPurgeDate,
    ...secretBundle(base, secret.name, latest, false),
  };
}

// ---------------------------------------------------------------------------------------------------------------

export async function startKeyVaultStandIn(opts: KeyVaultStandInOptions = {}): Promise<KeyVaultStandIn> {
  const standIn = new KeyVaultStandInServer(opts);
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    standIn.server.once('error', reject);
    standIn.server.listen(opts.port ?? 0, host, () => {
      standIn.server.off('error', reject);
      resolve();
    });
  });
  const port = standIn.port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    setRealism: (r) => standIn.setRealism(r),
    stats: () => standIn.stats(),
    close: () => standIn.close(),
  };
}
