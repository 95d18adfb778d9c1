/**
 * The HTTP plumbing both stand-ins share (Key Vault in dev/keyvault, Graph in dev/graph): reading a bounded body,
 * the admin surface under `/_admin/`, counting requests and statuses, sending JSON replies, holding a request
 * unanswered (a timeout fault), listening and closing without waiting on idle keep-alive sockets.
 *
 * Each stand-in keeps its own REST shapes (routes, error bodies, headers, challenges) in its own server.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as timerWait } from 'node:timers/promises';

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A request body as read: the bytes, or 'too-large' past the stand-in's limit (the rest is drained, not kept). */
export type RawBody = Buffer | 'too-large';

/** Waits `ms`, or rejects once `signal` aborts. */
export type Wait = (ms: number, signal: AbortSignal) => Promise<void>;

export const realTimerWait: Wait = (ms, signal) => timerWait(ms, undefined, { signal });

export const ADMIN_PREFIX = '/_admin/';

export function readBody(req: http.IncomingMessage, maxBytes: number): Promise<RawBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** True when the request carries a bearer token; the stand-ins accept any token, as local credentials make one up. */
export function hasBearerToken(req: http.IncomingMessage): boolean {
  return /^Bearer\s+\S+/i.test(req.headers.authorization ?? '');
}

/** The counters every stand-in keeps about its API traffic (admin calls excluded). */
export interface TrafficCounters {
  /** API requests received (challenges, throttled and faulted ones included). */
  requests: number;
  /** Responses by HTTP status. */
  statusCodes: Record<string, number>;
}

/** What both stand-ins report in their stats, besides their own counters. */
export interface StandInCounters extends TrafficCounters {
  /** Epoch ms when the counters were last reset (start or `/_admin/reset`). */
  since: number;
  /** 401 bearer challenges sent. */
  challenges: number;
  /** Requests answered 429 by the throttling. */
  throttled: number;
  /** Faults injected, all kinds. */
  faults: number;
}

/** Counters at zero, as at start and after `/_admin/reset`. */
export function zeroCounters(since: number): StandInCounters {
  return { since, requests: 0, challenges: 0, throttled: 0, faults: 0, statusCodes: {} };
}

/** A zero count for each operation. */
export function zeroPerOperation<Op extends string>(operations: readonly Op[]): Record<Op, number> {
  return Object.fromEntries(operations.map((op) => [op, 0])) as Record<Op, number>;
}

export interface StandInHttpOptions {
  /** Names the stand-in in its log lines, e.g. "graph stand-in". */
  label: string;
  maxRequestBytes: number;
  /** Header carrying a fresh request id on every answer (x-ms-request-id for Key Vault, request-id for Graph). */
  requestIdHeader: string;
  /** Content type of JSON answers. */
  jsonContentType: string;
  /** Headers sent on every answer. */
  headers?: Record<string, string>;
  /** How latency and held requests wait; real timers by default. */
  wait?: Wait;
  log?: (line: string) => void;
}

/**
 * A stand-in's HTTP server. A subclass answers the admin surface and the API; this class reads the request, sends
 * the answer, counts it and logs one line (method, path, status, time: never bodies).
 */
export abstract class StandInHttpServer {
  readonly server: http.Server;
  protected closed = false;
  /** Aborted by close(): ends every pending wait (latency, held requests). */
  protected readonly closing = new AbortController();
  protected readonly wait: Wait;
  private readonly heldRequests = new Set<{ release: AbortController; socket: Socket }>();

  constructor(private readonly settings: StandInHttpOptions) {
    this.wait = settings.wait ?? realTimerWait;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log(`${this.settings.label}: internal error: ${err instanceof Error ? err.message : String(err)}`);
        if (!res.headersSent && !res.destroyed) this.send(res, this.internalError(req));
      });
    });
    // Clients keep connections alive; idle sockets must not hold the process during close().
    this.server.keepAliveTimeout = 5_000;
  }

  /** The counters the traffic is counted in (replaced when a stand-in resets them). */
  protected abstract traffic(): TrafficCounters;
  /** Answers `/_admin/<what>`. */
  protected abstract handleAdmin(method: string, what: string, raw: RawBody): Reply;
  /** Answers an API request, or 'held' when it will not be answered (a timeout fault, or closing). */
  protected abstract handleApi(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    url: URL,
    raw: RawBody,
  ): Promise<Reply | 'held'>;
  /** The answer to a request that failed inside the stand-in. */
  protected abstract internalError(req: http.IncomingMessage): Reply;
  /** Releases what the stand-in holds beyond the server (its journal) once the server has closed. */
  protected afterClose(): void {}

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Listens on `host:port` (0: any free port) and returns the base URL, e.g. http://127.0.0.1:PORT. */
  async listen(port: number, host: string): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
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
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    this.afterClose();
  }

  protected log(line: string): void {
    this.settings.log?.(line);
  }

  /** The base URL the client called, for ids and next links in answers. */
  protected baseUrl(req: http.IncomingMessage): string {
    return `http://${req.headers.host ?? `127.0.0.1:${this.port}`}`;
  }

  protected send(res: http.ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    const payload = reply.body === undefined ? undefined : JSON.stringify(reply.body);
    res.statusCode = reply.status;
    res.setHeader(this.settings.requestIdHeader, randomUUID());
    res.setHeader('cache-control', 'no-cache');
    for (const [k, v] of Object.entries({ ...this.settings.headers, ...reply.headers })) res.setHeader(k, v);
    if (payload !== undefined) {
      res.setHeader('content-type', this.settings.jsonContentType);
      res.setHeader('content-length', Buffer.byteLength(payload));
      res.end(payload);
    } else {
      res.setHeader('content-length', 0);
      res.end();
    }
  }

  /** A timeout fault: keep the request open without answering, then drop the connection. */
  protected hold(req: http.IncomingMessage, res: http.ServerResponse, ms: number): void {
    const held = { release: new AbortController(), socket: req.socket };
    this.heldRequests.add(held);
    // The client gave up first: nothing left to hold.
    res.on('close', () => {
      held.release.abort();
      this.heldRequests.delete(held);
    });
    this.wait(ms, held.release.signal).then(
      () => {
        this.heldRequests.delete(held);
        held.socket.destroy();
      },
      () => undefined,
    );
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const raw = await readBody(req, this.settings.maxRequestBytes);
    if (this.closed) return;
    if (url.pathname.startsWith(ADMIN_PREFIX)) {
      this.send(res, this.handleAdmin(method, url.pathname.slice(ADMIN_PREFIX.length), raw));
      return;
    }
    this.traffic().requests++;
    const reply = await this.handleApi(req, res, method, url, raw);
    if (reply === 'held' || this.closed) return;
    const counters = this.traffic();
    counters.statusCodes[String(reply.status)] = (counters.statusCodes[String(reply.status)] ?? 0) + 1;
    this.send(res, reply);
    this.log(`${method} ${url.pathname} -> ${reply.status} (${Math.round(performance.now() - started)} ms)`);
  }
}
