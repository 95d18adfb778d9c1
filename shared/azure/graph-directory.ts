/**
 * HardwareOathDirectory over Microsoft Graph with plain `fetch` and a bearer token from an @azure/identity
 * credential (scope https://graph.microsoft.com/.default). Lighter than the Graph SDKs, whose retry handlers also
 * re-send POSTs; here a write is never re-sent after an answer that leaves its outcome unknown (docs/graph.md).
 *
 * Retries: 429 (never applied) for every call; 503, other 5xx, timeouts and dropped connections only for reads
 * and deletes. Retry-After (seconds, fractions allowed, or an HTTP date) is honoured and pauses every call of this
 * adapter, since Graph throttles per app. Attempts are bounded; a longer wait goes back to the caller as a
 * TransientError with retryAfterMs.
 *
 * Secrets: the device secret goes only into the create request's body. Errors carry the operation, HTTP status,
 * Graph's error code and message (withheld if it quotes the secret) and the request id; never a request body.
 */
import { randomUUID } from 'node:crypto';
import type { TokenCredential } from '@azure/identity';
import { epochMs, systemClock } from '../pipeline/clock.js';
import { ConflictError, DirectoryRefusedError, TransientError, UncertainOutcomeError } from '../pipeline/errors.js';
import type {
  Clock,
  DirectoryUser,
  HardwareOathDevice,
  HardwareOathDirectory,
  HardwareOathStatus,
  NewHardwareOathDevice,
  PrivilegedRole,
} from '../pipeline/ports.js';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';

export interface GraphRetryEvent {
  operation: string;
  attempt: number;
  status: number | undefined;
  /** How long the adapter waits before the next attempt. */
  delayMs: number;
  /** True when the wait came from the service's Retry-After. */
  retryAfter: boolean;
}

export interface GraphDirectoryOptions {
  /** Graph's origin, e.g. https://graph.microsoft.com (GRAPH_BASE_URL). */
  baseUrl: string;
  credential: TokenCredential;
  clock?: Clock;
  /** How the adapter waits out a Retry-After, a pause or a backoff; real timers by default (tests move their clock). */
  wait?: (ms: number) => Promise<void>;
  /** Deadline of one HTTP call (default 30 s). */
  timeoutMs?: number;
  /** Attempts per call, the first included (default 5). */
  maxAttempts?: number;
  /** First backoff without Retry-After; doubles per attempt, with jitter, up to 16x (default 1 s). */
  retryBaseMs?: number;
  /** A Retry-After longer than this is not waited out here: the call fails with TransientError (default 60 s). */
  maxRetryAfterMs?: number;
  /** Calls in flight at once (default 4). */
  maxConcurrent?: number;
  /** How long the list of privileged role definitions is reused (default 1 hour). */
  roleDefinitionsTtlMs?: number;
  /** Told about each retry (for logs and tests). */
  onRetry?: (event: GraphRetryEvent) => void;
}

interface GraphCall {
  /** Names the call in errors, e.g. "create device 12345". */
  operation: string;
  method: 'GET' | 'POST' | 'DELETE';
  /** Path and query under the base URL, or an absolute nextLink on the same origin. */
  path: string;
  body?: unknown;
  /** Safe to send again when a failure leaves its outcome unknown (reads, deletes). */
  repeatable: boolean;
  /** Text that must never appear in an error. */
  secret?: string;
}

interface GraphAnswer {
  status: number;
  body: unknown;
  requestId: string | undefined;
}

const DEVICES = '/beta/directory/authenticationMethodDevices/hardwareOathDevices';
const DEVICE_SELECT =
  'id,displayName,serialNumber,manufacturer,model,timeIntervalInSeconds,hashFunction,status,assignedTo,lastUsedDateTime';
const STATUSES: readonly HardwareOathStatus[] = ['available', 'assigned', 'activated', 'failedActivation', 'unknownFutureValue'];
const MAX_PAGES = 100;
const TOKEN_REFRESH_MARGIN_MS = 5 * 60 * 1000;
const MAX_BACKOFF_FACTOR = 16;
/** Connection errors that mean the request never left: nothing can have been applied. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

const segment = (value: string): string => encodeURIComponent(value);
/** An OData string literal: single quotes doubled. */
const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`;

const realTimerWait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Hides a message that quotes a secret (any 8-character piece of it, in any case). */
export function withoutSecret(text: string, secret: string | undefined): string {
  if (!secret) return text;
  const needle = secret.replace(/[\s=-]/g, '').toUpperCase();
  const haystack = text.toUpperCase();
  const piece = Math.min(8, needle.length);
  for (let i = 0; i + piece <= needle.length; i++) {
    if (haystack.includes(needle.slice(i, i + piece))) return '[message withheld: it quoted the secret]';
  }
  return text;
}

/** Milliseconds from a Retry-After value: seconds (fractions allowed) or an HTTP date. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  const raw = value?.trim();
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.round(Number(raw) * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

interface GraphErrorInfo {
  code: string | undefined;
  message: string | undefined;
}

function errorInfo(body: unknown): GraphErrorInfo {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return {
    code: typeof error?.code === 'string' ? error.code.slice(0, 100) : undefined,
    message: typeof error?.message === 'string' ? error.message.slice(0, 500) : undefined,
  };
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function toDevice(value: unknown): HardwareOathDevice {
  const o = (value ?? {}) as Record<string, unknown>;
  if (typeof o.id !== 'string' || typeof o.serialNumber !== 'string')
    throw new Error('Graph returned a hardware OATH device without id or serialNumber.');
  const assigned = o.assignedTo as { id?: unknown; displayName?: unknown } | null | undefined;
  const status = STATUSES.includes(o.status as HardwareOathStatus) ? (o.status as HardwareOathStatus) : 'unknownFutureValue';
  return {
    id: o.id,
    serialNumber: o.serialNumber,
    manufacturer: text(o.manufacturer) ?? '',
    model: text(o.model) ?? '',
    displayName: text(o.displayName),
    timeIntervalInSeconds: typeof o.timeIntervalInSeconds === 'number' ? o.timeIntervalInSeconds : 30,
    hashFunction: o.hashFunction === 'hmacsha256' ? 'hmacsha256' : 'hmacsha1',
    status,
    assignedTo: assigned && typeof assigned.id === 'string' ? { id: assigned.id, displayName: text(assigned.displayName) } : null,
    lastUsedDateTime: text(o.lastUsedDateTime),
  };
}

/** At most `limit` holders at once, served in order. */
class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }
}

export class GraphHardwareOathDirectory implements HardwareOathDirectory {
  private readonly origin: string;
  private readonly clock: Clock;
  private readonly wait: (ms: number) => Promise<void>;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly roleDefinitionsTtlMs: number;
  private readonly slots: Slots;
  private pausedUntil = 0;
  private token: { value: string; expiresOn: number } | undefined;
  private tokenRequest: Promise<string> | undefined;
  private privilegedRoles: { at: number; roles: Promise<Map<string, string>> } | undefined;

  constructor(private readonly options: GraphDirectoryOptions) {
    this.origin = new URL(options.baseUrl).origin;
    this.clock = options.clock ?? systemClock;
    this.wait = options.wait ?? realTimerWait;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.retryBaseMs = options.retryBaseMs ?? 1_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    this.roleDefinitionsTtlMs = options.roleDefinitionsTtlMs ?? 60 * 60 * 1000;
    this.slots = new Slots(Math.max(1, options.maxConcurrent ?? 4));
  }

  // ---- plumbing ---------------------------------------------------------------------------------------------

  private now(): number {
    return epochMs(this.clock);
  }

  private async bearer(): Promise<string> {
    if (this.token && this.token.expiresOn - TOKEN_REFRESH_MARGIN_MS > this.now()) return this.token.value;
    this.tokenRequest ??= (async () => {
      try {
        const token = await this.options.credential.getToken(GRAPH_SCOPE);
        if (!token) throw new Error('the credential returned no token');
        this.token = { value: token.token, expiresOn: token.expiresOnTimestamp };
        return token.token;
      } catch (error) {
        throw new Error(`Could not get a Microsoft Graph token: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
      } finally {
        this.tokenRequest = undefined;
      }
    })();
    return this.tokenRequest;
  }

  private async waitForPause(): Promise<void> {
    for (let left = this.pausedUntil - this.now(); left > 0; left = this.pausedUntil - this.now()) await this.wait(left);
  }

  private backoffMs(attempt: number): number {
    const base = this.retryBaseMs * Math.min(MAX_BACKOFF_FACTOR, 2 ** (attempt - 1));
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  private url(path: string): string {
    if (/^https?:\/\//i.test(path)) {
      // A nextLink: follow it only on Graph's own origin, so the token never goes anywhere else.
      if (new URL(path).origin !== this.origin) throw new Error(`Graph returned a nextLink on another origin (${new URL(path).origin}).`);
      return path;
    }
    return this.origin + path;
  }

  /**
   * Sends one call with retries. Returns 2xx and 4xx answers (except 429) to the operation; throws TransientError
   * (not applied) or UncertainOutcomeError (a write that may have been applied) for the rest.
   */
  private async send(call: GraphCall): Promise<GraphAnswer> {
    const target = this.url(call.path);
    let refreshedToken = false;
    for (let attempt = 1; ; attempt++) {
      await this.waitForPause();
      let response: Response | undefined;
      let raw = '';
      let networkFailure: string | undefined;
      let notSent: string | undefined;
      const release = await this.slots.acquire();
      try {
        const authorization = `Bearer ${await this.bearer()}`;
        try {
          response = await fetch(target, {
            method: call.method,
            headers: {
              authorization,
              accept: 'application/json',
              'client-request-id': randomUUID(),
              ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
            },
            body: call.body === undefined ? undefined : JSON.stringify(call.body),
            signal: AbortSignal.timeout(this.timeoutMs),
          });
          raw = await response.text();
        } catch (error) {
          const name = (error as { name?: string }).name;
          const cause = (error as { cause?: { code?: unknown } }).cause?.code;
          if (typeof cause === 'string' && NOT_SENT_CODES.has(cause)) notSent = `could not connect (${cause})`;
          else
            networkFailure =
              name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${this.timeoutMs} ms` : 'the connection failed';
        }
      } finally {
        release();
      }
      if (notSent !== undefined) {
        // Nothing reached Graph: safe to retry, writes included.
        if (attempt >= this.maxAttempts) throw new TransientError(`Graph ${call.operation}: ${notSent} (${attempt} attempts).`);
        await this.retryAfterDelay(call, attempt, undefined, this.backoffMs(attempt), false);
        continue;
      }
      if (networkFailure !== undefined || response === undefined) {
        const reason = networkFailure ?? 'no answer';
        if (!call.repeatable) throw new UncertainOutcomeError(`Graph ${call.operation}: ${reason}; it may have been applied.`);
        if (attempt >= this.maxAttempts) throw new TransientError(`Graph ${call.operation}: ${reason} (${attempt} attempts).`);
        await this.retryAfterDelay(call, attempt, undefined, this.backoffMs(attempt), false);
        continue;
      }

      const status = response.status;
      let body: unknown = undefined;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw);
        } catch {
          body = undefined;
        }
      }
      const requestId = response.headers.get('request-id') ?? undefined;
      if (status < 400) return { status, body, requestId };

      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.now());
      if (retryAfterMs !== undefined && (status === 429 || status === 503))
        this.pausedUntil = Math.max(this.pausedUntil, this.now() + Math.min(retryAfterMs, this.maxRetryAfterMs));
      const describe = (): string => this.describe(call, { status, body, requestId });

      if (status === 401 && !refreshedToken) {
        // An expired or revoked token: fetch a new one once; a 401 applied nothing.
        refreshedToken = true;
        this.token = undefined;
        continue;
      }
      if (status === 429) {
        // Throttled calls are not processed, writes included: retrying them is safe.
        if (attempt >= this.maxAttempts || (retryAfterMs ?? 0) > this.maxRetryAfterMs)
          throw new TransientError(`${describe()} (throttled, ${attempt} attempts)`, status, retryAfterMs);
        await this.retryAfterDelay(call, attempt, status, retryAfterMs ?? this.backoffMs(attempt), retryAfterMs !== undefined);
        continue;
      }
      if (status >= 500 || status === 408) {
        if (!call.repeatable) throw new UncertainOutcomeError(`${describe()}; it may have been applied.`, status, retryAfterMs);
        if (attempt >= this.maxAttempts || (retryAfterMs ?? 0) > this.maxRetryAfterMs)
          throw new TransientError(`${describe()} (${attempt} attempts)`, status, retryAfterMs);
        await this.retryAfterDelay(call, attempt, status, retryAfterMs ?? this.backoffMs(attempt), retryAfterMs !== undefined);
        continue;
      }
      return { status, body, requestId };
    }
  }

  private async retryAfterDelay(
    call: GraphCall,
    attempt: number,
    status: number | undefined,
    delayMs: number,
    retryAfter: boolean,
  ): Promise<void> {
    this.options.onRetry?.({ operation: call.operation, attempt, status, delayMs, retryAfter });
    await this.wait(delayMs);
  }

  /** "Graph <operation>: HTTP <status> <code>: <message> (request-id ...)", with no secret in it. */
  private describe(call: GraphCall, answer: GraphAnswer): string {
    const { code, message } = errorInfo(answer.body);
    const detail = message ? `: ${withoutSecret(message, call.secret)}` : '';
    return `Graph ${call.operation}: HTTP ${answer.status}${code ? ` ${code}` : ''}${detail}${answer.requestId ? ` (request-id ${answer.requestId})` : ''}`;
  }

  private refused(call: GraphCall, answer: GraphAnswer): DirectoryRefusedError {
    return new DirectoryRefusedError(this.describe(call, answer), answer.status, errorInfo(answer.body).code);
  }

  /** Every item of a collection, following nextLinks. */
  private async collect(call: GraphCall): Promise<unknown[]> {
    const items: unknown[] = [];
    let path: string | undefined = call.path;
    for (let page = 0; path !== undefined; page++) {
      if (page >= MAX_PAGES) throw new Error(`Graph ${call.operation}: more than ${MAX_PAGES} pages.`);
      const answer = await this.send({ ...call, path });
      if (answer.status !== 200) throw this.refused(call, answer);
      const body = (answer.body ?? {}) as { value?: unknown; '@odata.nextLink'?: unknown };
      if (!Array.isArray(body.value)) throw new Error(`Graph ${call.operation}: the answer has no value array.`);
      items.push(...(body.value as unknown[]));
      path = typeof body['@odata.nextLink'] === 'string' ? body['@odata.nextLink'] : undefined;
    }
    return items;
  }

  // ---- users, roles, groups ---------------------------------------------------------------------------------

  async findUser(upnOrId: string): Promise<DirectoryUser | undefined> {
    const call: GraphCall = {
      operation: `read user ${upnOrId}`,
      method: 'GET',
      path: `/v1.0/users/${segment(upnOrId)}?$select=id,userPrincipalName,displayName,userType,accountEnabled`,
      repeatable: true,
    };
    const answer = await this.send(call);
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) throw this.refused(call, answer);
    const o = (answer.body ?? {}) as Record<string, unknown>;
    if (typeof o.id !== 'string' || typeof o.userPrincipalName !== 'string')
      throw new Error(`Graph ${call.operation}: the answer has no id or userPrincipalName.`);
    return {
      id: o.id,
      userPrincipalName: o.userPrincipalName,
      displayName: text(o.displayName),
      userType: text(o.userType),
      accountEnabled: typeof o.accountEnabled === 'boolean' ? o.accountEnabled : null,
    };
  }

  /** Template id -> display name of every role definition Entra labels privileged, reused for a while. */
  private privilegedRoleDefinitions(): Promise<Map<string, string>> {
    const now = this.now();
    if (this.privilegedRoles && now - this.privilegedRoles.at < this.roleDefinitionsTtlMs) return this.privilegedRoles.roles;
    const roles = (async () => {
      const items = await this.collect({
        operation: 'list privileged role definitions',
        method: 'GET',
        path: `/beta/roleManagement/directory/roleDefinitions?$filter=${segment('isPrivileged eq true')}&$select=id,displayName,templateId,isPrivileged`,
        repeatable: true,
      });
      const map = new Map<string, string>();
      for (const item of items as { id?: unknown; templateId?: unknown; displayName?: unknown; isPrivileged?: unknown }[]) {
        if (item.isPrivileged === false) continue;
        const name = text(item.displayName) ?? '';
        for (const key of [item.templateId, item.id]) if (typeof key === 'string' && key) map.set(key.toLowerCase(), name);
      }
      return map;
    })();
    this.privilegedRoles = { at: now, roles };
    roles.catch(() => {
      if (this.privilegedRoles?.roles === roles) this.privilegedRoles = undefined;
    });
    return roles;
  }

  async userPrivilegedRoles(userId: string): Promise<PrivilegedRole[]> {
    const [privileged, active, eligible] = await Promise.all([
      this.privilegedRoleDefinitions(),
      this.collect({
        operation: `list directory roles of ${userId}`,
        method: 'GET',
        path: `/v1.0/users/${segment(userId)}/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,displayName,roleTemplateId`,
        repeatable: true,
      }),
      this.collect({
        operation: `list role eligibilities of ${userId}`,
        method: 'GET',
        path: `/v1.0/roleManagement/directory/roleEligibilityScheduleInstances?$filter=${segment(`principalId eq ${literal(userId)}`)}&$select=id,principalId,roleDefinitionId`,
        repeatable: true,
      }),
    ]);
    const out = new Map<string, PrivilegedRole>();
    const add = (templateId: unknown, assignment: PrivilegedRole['assignment'], fallbackName: unknown): void => {
      if (typeof templateId !== 'string') return;
      const name = privileged.get(templateId.toLowerCase());
      if (name === undefined) return;
      out.set(`${assignment}/${templateId.toLowerCase()}`, {
        displayName: name || (text(fallbackName) ?? templateId),
        templateId,
        assignment,
      });
    };
    for (const role of active as { roleTemplateId?: unknown; displayName?: unknown }[])
      add(role.roleTemplateId, 'active', role.displayName);
    for (const instance of eligible as { roleDefinitionId?: unknown }[]) add(instance.roleDefinitionId, 'eligible', undefined);
    return [...out.values()];
  }

  async isGroupMember(userId: string, groupId: string): Promise<boolean> {
    const call: GraphCall = {
      operation: `check membership of ${userId} in group ${groupId}`,
      method: 'POST',
      path: `/v1.0/users/${segment(userId)}/checkMemberGroups`,
      body: { groupIds: [groupId] },
      // A read, though sent as POST.
      repeatable: true,
    };
    const answer = await this.send(call);
    if (answer.status === 404) return false;
    if (answer.status !== 200) throw this.refused(call, answer);
    const value = (answer.body as { value?: unknown } | undefined)?.value;
    if (!Array.isArray(value)) throw new Error(`Graph ${call.operation}: the answer has no value array.`);
    return value.some((id) => typeof id === 'string' && id.toLowerCase() === groupId.toLowerCase());
  }

  // ---- devices and methods ----------------------------------------------------------------------------------

  async findDevicesBySerial(serialNumber: string): Promise<HardwareOathDevice[]> {
    const items = await this.collect({
      operation: `find device ${serialNumber}`,
      method: 'GET',
      path: `${DEVICES}?$filter=${segment(`serialNumber eq ${literal(serialNumber)}`)}&$select=${DEVICE_SELECT}`,
      repeatable: true,
    });
    const wanted = serialNumber.toLowerCase();
    // Defensive: keep only exact matches, whatever the service's filter did.
    return items.map(toDevice).filter((d) => d.serialNumber.toLowerCase() === wanted);
  }

  async getDevice(deviceId: string): Promise<HardwareOathDevice | undefined> {
    const call: GraphCall = {
      operation: `read device ${deviceId}`,
      method: 'GET',
      path: `${DEVICES}/${segment(deviceId)}?$select=${DEVICE_SELECT}`,
      repeatable: true,
    };
    const answer = await this.send(call);
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) throw this.refused(call, answer);
    return toDevice(answer.body);
  }

  async createDevice(device: NewHardwareOathDevice): Promise<HardwareOathDevice> {
    const call: GraphCall = {
      operation: `create device ${device.serialNumber}`,
      method: 'POST',
      path: DEVICES,
      body: {
        ...(device.displayName ? { displayName: device.displayName } : {}),
        serialNumber: device.serialNumber,
        manufacturer: device.manufacturer,
        model: device.model,
        secretKey: device.secretKey,
        timeIntervalInSeconds: device.timeIntervalInSeconds,
        hashFunction: device.hashFunction,
      },
      repeatable: false,
      secret: device.secretKey,
    };
    const answer = await this.send(call);
    if (answer.status === 200 || answer.status === 201) return toDevice(answer.body);
    if (answer.status === 409 || answer.status === 400) {
      // Duplicate-serial errors are undocumented: the serial's presence decides.
      const existing = await this.findDevicesBySerial(device.serialNumber);
      const first = existing[0];
      if (first) {
        const holder = first.assignedTo ? `, assigned to ${first.assignedTo.id}` : '';
        throw new ConflictError(
          `A hardware OATH token with serial ${device.serialNumber} already exists in Entra (device ${first.id}, ${first.status}${holder}).`,
        );
      }
    }
    throw this.refused(call, answer);
  }

  async assignDevice(userId: string, deviceId: string): Promise<{ methodId: string }> {
    const call: GraphCall = {
      operation: `assign device ${deviceId} to ${userId}`,
      method: 'POST',
      path: `/beta/users/${segment(userId)}/authentication/hardwareOathMethods`,
      body: { device: { id: deviceId } },
      repeatable: false,
    };
    const answer = await this.send(call);
    if (answer.status === 200 || answer.status === 201) {
      const id = (answer.body as { id?: unknown } | undefined)?.id;
      return { methodId: typeof id === 'string' && id ? id : deviceId };
    }
    if (answer.status === 409) throw new ConflictError(this.describe(call, answer));
    throw this.refused(call, answer);
  }

  async activate(userId: string, methodId: string, verificationCode: string): Promise<void> {
    const call: GraphCall = {
      operation: `activate method ${methodId} of ${userId}`,
      method: 'POST',
      path: `/beta/users/${segment(userId)}/authentication/hardwareOathMethods/${segment(methodId)}/activate`,
      body: { verificationCode },
      repeatable: false,
      secret: verificationCode,
    };
    const answer = await this.send(call);
    if (answer.status === 204 || answer.status === 200) return;
    throw this.refused(call, answer);
  }

  async unassign(userId: string, methodId: string): Promise<boolean> {
    const call: GraphCall = {
      operation: `unassign method ${methodId} of ${userId}`,
      method: 'DELETE',
      path: `/beta/users/${segment(userId)}/authentication/hardwareOathMethods/${segment(methodId)}`,
      repeatable: true,
    };
    const answer = await this.send(call);
    if (answer.status === 204 || answer.status === 200) return true;
    if (answer.status === 404) return false;
    throw this.refused(call, answer);
  }

  async deleteDevice(deviceId: string): Promise<boolean> {
    const call: GraphCall = {
      operation: `delete device ${deviceId}`,
      method: 'DELETE',
      path: `${DEVICES}/${segment(deviceId)}`,
      repeatable: true,
    };
    const answer = await this.send(call);
    if (answer.status === 204 || answer.status === 200) return true;
    if (answer.status === 404) return false;
    if (answer.status === 409) throw new ConflictError(this.describe(call, answer));
    if (answer.status === 400) {
      // Graph refuses to delete an assigned token; which error it sends for it is undocumented.
      const device = await this.getDevice(deviceId);
      if (device?.assignedTo)
        throw new ConflictError(
          `${this.describe(call, answer)} The token is still assigned to ${device.assignedTo.id}; unassign it first.`,
        );
    }
    throw this.refused(call, answer);
  }
}
