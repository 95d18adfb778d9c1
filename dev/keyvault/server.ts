/**
 * Local stand-in for Azure Key Vault (secrets only), good enough for the unmodified `SecretClient` of
 * `@azure/keyvault-secrets` 4.x. This module is the vault's HTTP server: bearer challenge, admin surface, counters,
 * and the order in which a request meets latency, faults, throttling and the vault itself. The pieces:
 * - `rest.ts`: routes, request parsing, limits, error bodies and response shapes;
 * - `operations.ts`: what each secrets operation does;
 * - `journal.ts`: the secrets in memory and their durable journal;
 * - `realism.ts`: throttling, latency and injected faults;
 * - `../stand-in/`: what it shares with the Graph stand-in (HTTP plumbing, journal file, command line).
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
import type http from 'node:http';
import { epochMs, systemClock } from '../../shared/pipeline/clock.js';
import type { Clock } from '../../shared/pipeline/ports.js';
import {
  StandInHttpServer,
  hasBearerToken,
  zeroCounters,
  zeroPerOperation,
  type StandInCounters,
  realTimerWait,
  type RawBody,
  type Reply,
  type Wait,
} from '../stand-in/http.js';
import { SecretOperations } from './operations.js';
import { VaultRealism, pickRealism, type KeyVaultRealism } from './realism.js';
import {
  KeyVaultError,
  LOCAL_TENANT_ID,
  MAX_REQUEST_BYTES,
  OPERATIONS,
  SERVICE_VERSION,
  badParameter,
  errorBody,
  errorReply,
  parseJsonObject,
  route,
  type KeyVaultOperation,
  type Route,
} from './rest.js';

export type { KeyVaultRealism } from './realism.js';
export type { Wait } from '../stand-in/http.js';
export { ADMIN_PREFIX } from '../stand-in/http.js';
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

export interface KeyVaultStats extends StandInCounters {
  /** Successful creates (PUT set secret answered 200). */
  creates: number;
  faultsByKind: { status500: number; status503: number; timeouts: number };
  /** Requests that reached each operation (passed faults and throttling), whatever their outcome. */
  operations: Record<KeyVaultOperation, number>;
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

type Counters = Omit<KeyVaultStats, 'secrets' | 'deletedSecrets' | 'versionsPerSecret' | 'realism'>;

function emptyCounters(since: number): Counters {
  return {
    ...zeroCounters(since),
    creates: 0,
    faultsByKind: { status500: 0, status503: 0, timeouts: 0 },
    operations: zeroPerOperation(OPERATIONS),
    createTimestamps: [],
    readTimestamps: [],
  };
}

const FAULT_REPLIES = {
  status503: errorReply(new KeyVaultError(503, 'ServiceUnavailable', 'The service is temporarily unavailable (injected fault).')),
  status500: errorReply(new KeyVaultError(500, 'InternalServerError', 'An unexpected error occurred (injected fault).')),
} as const;

class KeyVaultStandInServer extends StandInHttpServer {
  private readonly clock: Clock;
  private readonly vault: SecretOperations;
  private readonly realism: VaultRealism;
  private counters: Counters;

  constructor(opts: KeyVaultStandInOptions) {
    super({
      label: 'keyvault stand-in',
      maxRequestBytes: MAX_REQUEST_BYTES,
      requestIdHeader: 'x-ms-request-id',
      jsonContentType: 'application/json; charset=utf-8',
      headers: { 'x-ms-keyvault-service-version': SERVICE_VERSION },
      wait: opts.wait ?? realTimerWait,
      log: opts.log,
    });
    this.clock = opts.clock ?? systemClock;
    this.counters = emptyCounters(epochMs(this.clock));
    this.realism = new VaultRealism(this.clock, this.wait);
    if (opts.realism) this.setRealism(opts.realism);
    this.vault = new SecretOperations(this.clock, opts.persistPath, (line) => this.log(line));
  }

  protected traffic(): Counters {
    return this.counters;
  }

  protected internalError(): Reply {
    return errorReply(new KeyVaultError(500, 'InternalServerError', 'Internal error in the stand-in.'));
  }

  protected override afterClose(): void {
    this.vault.close();
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
    return {
      ...structuredClone(this.counters),
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

  protected handleAdmin(method: string, what: string, raw: RawBody): Reply {
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

  protected async handleApi(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    url: URL,
    raw: RawBody,
  ): Promise<Reply | 'held'> {
    try {
      await this.realism.delay(this.closing.signal);
    } catch {
      return 'held'; // closing
    }
    if (this.closed) return 'held';

    // The SDK's first request carries no token (and no body); the vault answers with the bearer challenge.
    if (!hasBearerToken(req)) {
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
      reply = this.vault.execute(routed, url, raw, this.baseUrl(req));
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
}

export async function startKeyVaultStandIn(opts: KeyVaultStandInOptions = {}): Promise<KeyVaultStandIn> {
  const standIn = new KeyVaultStandInServer(opts);
  const url = await standIn.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
  return {
    url,
    port: standIn.port,
    setRealism: (r) => standIn.setRealism(r),
    stats: () => standIn.stats(),
    close: () => standIn.close(),
  };
}
