/**
 * Local stand-in for Azure Key Vault (secrets only), good enough for the unmodified `SecretClient` of
 * `@azure/keyvault-secrets` 4.x. This module is the HTTP server: bearer challenge, admin surface, counters, and the
 * order in which a request meets latency, faults, throttling and the vault itself. The pieces:
 * - `rest.ts`: routes, request parsing, limits, error bodies and response shapes;
 * - `operations.ts`: what each secrets operation does;
 * - `journal.ts`: the secrets in memory and their durable journal;
 * - `realism.ts`: throttling, latency and injected faults.
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
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { epochMs, systemClock } from '../../shared/pipeline/clock.js';
import type { Clock } from '../../shared/pipeline/ports.js';
import { SecretOperations } from './operations.js';
import { VaultRealism, pickRealism, realTimerWait, type KeyVaultRealism, type Wait } from './realism.js';
import {
  KeyVaultError,
  LOCAL_TENANT_ID,
  OPERATIONS,
  SERVICE_VERSION,
  badParameter,
  errorBody,
  errorReply,
  parseJsonObject,
  readBody,
  route,
  type KeyVaultOperation,
  type Reply,
  type Route,
} from './rest.js';

export type { KeyVaultRealism, Wait } from './realism.js';
export { LIMITS, LOCAL_TENANT_ID, type KeyVaultOperation } from './rest.js';

export interface KeyVaultStandInOptions {
  port?: number /*0 = free port*/;
  host?: string /*default 127.0.0.1*/;
  persistPath?: string;
  realism?: KeyVaultRealism;
  log?: (line: string) => void;
  /** Time of the throttling windows, secret dates and counters; the system clock by default. */
  clock?: Clock;
  /** How added latency and held requests wait; real timers by default. */
  wait?: Wait;
}

export interface KeyVaultStandIn {
  url: string /* e.g. http://127.0.0.1:PORT with no path */;
  port: number;
  setRealism(r: KeyVaultRealism): void;
  stats(): KeyVaultStats;
  close(): Promise<void>;
}

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

export const ADMIN_PREFIX = '/_admin/';

type Counters = Omit<KeyVaultStats, 'secrets' | 'deletedSecrets' | 'versionsPerSecret' | 'realism'>;

function emptyCounters(since: number): Counters {
  return {
    since,
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

const FAULT_REPLIES = {
  status503: errorReply(new KeyVaultError(503, 'ServiceUnavailable', 'The service is temporarily unavailable (injected fault).')),
  status500: errorReply(new KeyVaultError(500, 'InternalServerError', 'An unexpected error occurred (injected fault).')),
} as const;

class KeyVaultStandInServer {
  private readonly clock: Clock;
  private readonly vault: SecretOperations;
  private readonly realism: VaultRealism;
  private counters: Counters;
  private readonly heldRequests = new Set<{ release: AbortController; socket: Socket }>();
  /** Aborted by close(): ends every pending latency wait. */
  private readonly closing = new AbortController();
  private closed = false;
  readonly server: http.Server;

  constructor(private readonly opts: KeyVaultStandInOptions) {
    const log = opts.log ?? (() => undefined);
    this.clock = opts.clock ?? systemClock;
    this.counters = emptyCounters(epochMs(this.clock));
    this.realism = new VaultRealism(this.clock, opts.wait ?? realTimerWait);
    if (opts.realism) this.setRealism(opts.realism);
    this.vault = new SecretOperations(this.clock, opts.persistPath, log);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        log(`keyvault stand-in: internal error: ${err instanceof Error ? err.message : String(err)}`);
        if (!res.headersSent && !res.destroyed) {
          this.send(res, errorReply(new KeyVaultError(500, 'InternalServerError', 'Internal error in the stand-in.')));
        }
      });
    });
    // Clients keep connections alive; do not let idle sockets hold the process during close().
    this.server.keepAliveTimeout = 5_000;
  }

  setRealism(r: KeyVaultRealism): void {
    this.realism.set(r);
  }

  stats(): KeyVaultStats {
    let secrets = 0;
    let deletedSecrets = 0;
    const versionsPerSecret: Record<string, number> = {};
    for (const secret of this.vault.secrets.values()) {
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
      realism: this.realism.settings,
    };
  }

  reset(wipeData: boolean): void {
    this.counters = emptyCounters(epochMs(this.clock));
    this.realism.reset();
    if (wipeData) this.vault.wipe();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    for (const held of this.heldRequests) {
      held.release.abort();
      held.socket.destroy();
    }
    this.heldRequests.clear();
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closing;
    this.vault.close();
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
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
    const started = performance.now();
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
    this.log(`${method} ${url.pathname} -> ${reply.status} (${Math.round(performance.now() - started)} ms)`);
  }

  private handleAdmin(method: string, what: string, raw: Buffer | 'too-large'): Reply {
    const bad = (message: string): Reply => ({ status: 400, body: { error: { code: 'BadParameter', message } } });
    if (raw === 'too-large') return bad('request too large');
    try {
      if (what === 'stats' && method === 'GET') return { status: 200, body: this.stats() };
      if (what === 'realism' && method === 'GET') return { status: 200, body: this.realism.settings };
      if (what === 'realism' && method === 'POST') {
        this.setRealism(pickRealism(parseJsonObject(raw)));
        return { status: 200, body: this.realism.settings };
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
    try {
      await this.realism.delay(this.closing.signal);
    } catch {
      return 'held'; // closing
    }
    if (this.closed) return 'held';

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

    let routed: Route;
    try {
      routed = route(method, url.pathname);
    } catch (err) {
      if (err instanceof KeyVaultError) return errorReply(err);
      throw err;
    }

    // Faults are decided before the vault does anything: a faulted request changes no state and uses no budget.
    const fault = this.realism.pickFault();
    if (fault) {
      this.counters.faults++;
      if (fault === 'timeout') {
        this.counters.faultsByKind.timeouts++;
        this.hold(req, res, this.realism.settings.timeoutMs);
        return 'held';
      }
      this.counters.faultsByKind[fault]++;
      return FAULT_REPLIES[fault];
    }

    const throttled = this.realism.throttle(routed.op);
    if (throttled) {
      this.counters.throttled++;
      return errorReply(throttled);
    }

    this.counters.operations[routed.op]++;
    if (routed.op === 'getSecret') this.counters.readTimestamps.push(epochMs(this.clock));
    let reply: Reply;
    try {
      if (raw === 'too-large') throw new KeyVaultError(413, 'RequestEntityTooLarge', 'The request body is too large.');
      if (!url.searchParams.get('api-version')) throw badParameter('The api-version query parameter is missing.');
      reply = this.vault.execute(routed, url, raw, `http://${req.headers.host ?? `127.0.0.1:${this.port}`}`);
    } catch (err) {
      if (err instanceof KeyVaultError) return errorReply(err);
      throw err;
    }
    if (routed.op === 'setSecret' && reply.status === 200) {
      this.counters.creates++;
      this.counters.createTimestamps.push(epochMs(this.clock));
    }
    return reply;
  }

  /** A timeout fault: keep the request open without answering, then drop the connection. */
  private hold(req: http.IncomingMessage, res: http.ServerResponse, ms: number): void {
    const held = { release: new AbortController(), socket: req.socket };
    this.heldRequests.add(held);
    const forget = (): void => {
      held.release.abort();
      this.heldRequests.delete(held);
    };
    // The client gave up first: nothing left to hold.
    res.on('close', forget);
    this.realism.wait(ms, held.release.signal).then(
      () => {
        this.heldRequests.delete(held);
        held.socket.destroy();
      },
      () => undefined,
    );
  }
}

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
