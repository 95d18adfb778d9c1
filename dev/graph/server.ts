/**
 * Local stand-in for the slice of Microsoft Graph the pipeline's Graph mode uses (docs/graph.md): the beta hardware
 * OATH device inventory and per-user hardware OATH methods (create, find by serial, assign, activate, unassign,
 * delete), v1.0 user reads, directory role and group membership reads, and the app registration calls of the
 * console's setup script (application upsert by uniqueName, service principal, app role assignments to users and
 * groups) and of `npm run grant-graph` (Microsoft Graph's built-in service principal and its application
 * permissions, granted to a managed identity's service principal seeded through `POST /_admin/service-principals`).
 * Plain HTTP on loopback; any bearer token is accepted (a request without one gets Graph's 401 challenge).
 *
 * It checks what Graph checks: unknown properties, base32 secrets, 30/60 s intervals, one device per serial, at most
 * five hardware OATH methods per user, no hardware tokens for guests, verification codes against the secret it was
 * given (activation window +/- 1 day for 30 s tokens, +/- 2 days for 60 s; sign-in window, through the admin
 * endpoint, +/- 1 or 2 minutes around the drift learnt at activation).
 *
 * Realism on demand: a request budget per 10 s answered by 429 with Retry-After, latency, random 5xx and unanswered
 * requests, and faults queued through `POST /_admin/faults`, either before the operation (nothing changes) or after
 * it ("applied": the change is made, then the answer fails or never comes).
 *
 * The HTTP plumbing, the journal file and the command line it shares with the Key Vault stand-in are in
 * dev/stand-in/; the Graph REST shapes (routes, OData, error bodies, challenge) stay here.
 *
 * WARNING: with `persistPath` the journal holds token secrets IN PLAINTEXT. Development and tests only.
 */
import type http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { decodeBase32 } from '../../shared/core/encoding.js';
import { scanSteps, stepAt, type OtpParameters } from '../../shared/core/totp.js';
import { activationWindowSteps, signInWindowSteps } from '../../shared/entra/drift-windows.js';
import {
  ADMIN_PREFIX,
  StandInHttpServer,
  hasBearerToken,
  type RawBody,
  type Reply,
  type StandInCounters,
  zeroCounters,
  zeroPerOperation,
} from '../stand-in/http.js';
import { JsonLinesJournal, type JournalHost } from '../stand-in/journal.js';
import { BUILT_IN_ROLES, GRAPH_APPLICATION_PERMISSIONS, roleByName, roleByTemplateId } from './roles.js';

// ---------------------------------------------------------------------------------------------------------------
// Public types

export interface GraphRealism {
  /** Enforce the request budget (429 with Retry-After past it). */
  throttling?: boolean;
  /** API requests accepted per sliding 10 s window when throttling (rejected ones are not counted). */
  requestsPer10s?: number;
  /** Retry-After sent with a 429, in seconds (fractions allowed); 0: the time until the window has room. */
  retryAfterSeconds?: number;
  latencyMs?: number;
  /** Share (0..1) of requests answered 500/503 (503 with Retry-After: 1). */
  errorRate?: number;
  /** Share (0..1) of requests held without an answer for timeoutMs, then dropped. */
  timeoutRate?: number;
  timeoutMs?: number;
  /** Share (0..1) of random faults whose operation is applied before the failure. */
  appliedFaultRate?: number;
}

/** A fault queued through the admin endpoint, served to the next matching requests. */
export interface GraphFault {
  /** HTTP method to match (any when absent). */
  method?: string;
  /** Case-insensitive substring of the request path (after /beta or /v1.0) to match (any when absent). */
  path?: string;
  /** Status to answer: 429, 500, 502, 503 or 504. */
  status?: number;
  /** Retry-After header value sent with the status (e.g. "2.128"). */
  retryAfter?: string;
  /** Hold the request unanswered for the realism's timeoutMs, then drop the connection. */
  timeout?: boolean;
  /** Apply the operation first (the change is made), then fail. Default false: nothing changes. */
  apply?: boolean;
  /** How many matching requests get this fault (default 1). */
  times?: number;
}

export interface GraphUserSeed {
  userPrincipalName: string;
  id?: string;
  displayName?: string;
  userType?: 'Member' | 'Guest';
  accountEnabled?: boolean;
  /** Active directory roles, by display name (see roles.ts). */
  directoryRoles?: string[];
  /** Roles the user is eligible for through Privileged Identity Management, by display name. */
  eligibleRoles?: string[];
  /** Object ids of the groups the user is a member of (transitively). */
  groups?: string[];
}

export interface GraphDeviceSeed {
  serialNumber: string;
  secretKey: string;
  manufacturer?: string;
  model?: string;
  displayName?: string;
  timeIntervalInSeconds?: number;
  hashFunction?: HashFunction;
  /** UPN or object id of the user holding it. */
  assignedTo?: string;
  status?: 'available' | 'assigned' | 'activated';
  /** 'csv': a token from a legacy CSV upload, which may share its serial with a Graph device. Default 'graph'. */
  source?: DeviceSource;
}

export interface GraphStandInOptions {
  port?: number /*0 = free port*/;
  host?: string /*default 127.0.0.1*/;
  /** Journal file; state survives restarts (PLAINTEXT secrets). */
  persistPath?: string;
  /** JSON file with an array of GraphUserSeed, upserted at start when it exists. */
  usersFile?: string;
  realism?: GraphRealism;
  /** Default page size of the device list (Graph's $top caps it). */
  pageSize?: number;
  /** Epoch ms; the system clock by default. Tests move it to check the code windows. */
  now?: () => number;
  log?: (line: string) => void;
}

export type HashFunction = 'hmacsha1' | 'hmacsha256';
export type DeviceStatus = 'available' | 'assigned' | 'activated' | 'failedActivation';
export type DeviceSource = 'graph' | 'csv';

export type GraphOperation =
  | 'createDevice'
  | 'listDevices'
  | 'getDevice'
  | 'deleteDevice'
  | 'getUser'
  | 'assignMethod'
  | 'listMethods'
  | 'getMethod'
  | 'unassignMethod'
  | 'activateMethod'
  | 'deactivateMethod'
  | 'listUserDirectoryRoles'
  | 'checkMemberGroups'
  | 'listRoleDefinitions'
  | 'listRoleEligibilities'
  | 'getApplication'
  | 'upsertApplication'
  | 'getServicePrincipal'
  | 'createServicePrincipal'
  | 'updateServicePrincipal'
  | 'listAppRoleAssignedTo'
  | 'createAppRoleAssignedTo'
  | 'listServicePrincipals'
  | 'getServicePrincipalById'
  | 'listAppRoleAssignments'
  | 'createAppRoleAssignment';

const OPERATIONS: readonly GraphOperation[] = [
  'createDevice',
  'listDevices',
  'getDevice',
  'deleteDevice',
  'getUser',
  'assignMethod',
  'listMethods',
  'getMethod',
  'unassignMethod',
  'activateMethod',
  'deactivateMethod',
  'listUserDirectoryRoles',
  'checkMemberGroups',
  'listRoleDefinitions',
  'listRoleEligibilities',
  'getApplication',
  'upsertApplication',
  'getServicePrincipal',
  'createServicePrincipal',
  'updateServicePrincipal',
  'listAppRoleAssignedTo',
  'createAppRoleAssignedTo',
  'listServicePrincipals',
  'getServicePrincipalById',
  'listAppRoleAssignments',
  'createAppRoleAssignment',
];

/** A user as the admin endpoints show it. */
export interface GraphUserView {
  id: string;
  userPrincipalName: string;
  displayName: string;
  userType: 'Member' | 'Guest';
  accountEnabled: boolean;
  directoryRoles: string[];
  eligibleRoles: string[];
  groups: string[];
  hardwareOathMethods: number;
}

/** A device as the admin endpoints show it: never the secret. */
export interface GraphDeviceView {
  id: string;
  serialNumber: string;
  manufacturer: string;
  model: string;
  displayName: string | null;
  timeIntervalInSeconds: number;
  hashFunction: HashFunction;
  status: DeviceStatus;
  assignedTo: { id: string; userPrincipalName: string } | null;
  createdDateTime: string;
  assignedDateTime: string | null;
  activatedDateTime: string | null;
  lastUsedDateTime: string | null;
  /** Token clock minus server clock, learnt at activation and sign-in. */
  driftSeconds: number | null;
  source: DeviceSource;
}

export interface GraphStats extends StandInCounters {
  faultsByKind: { status: number; timeouts: number; applied: number };
  /** Requests that reached each operation (passed auth, faults and throttling), whatever their outcome. */
  operations: Record<GraphOperation, number>;
  /** Devices created through the API (201 answered or applied). */
  devicesCreated: number;
  devices: number;
  users: number;
  realism: Required<GraphRealism>;
  pendingFaults: number;
}

export interface SignInResult {
  accepted: boolean;
  serialNumber?: string;
  driftSeconds?: number;
}

export interface GraphStandIn {
  /** e.g. http://127.0.0.1:PORT, no path: Graph's base URL (GRAPH_BASE_URL). */
  url: string;
  port: number;
  setRealism(r: GraphRealism): void;
  injectFaults(faults: GraphFault[]): void;
  seedUsers(users: GraphUserSeed[]): GraphUserView[];
  seedDevices(devices: GraphDeviceSeed[]): GraphDeviceView[];
  users(): GraphUserView[];
  devices(): GraphDeviceView[];
  signIn(user: string, code: string): SignInResult;
  stats(): GraphStats;
  close(): Promise<void>;
}

export { ADMIN_PREFIX } from '../stand-in/http.js';

/** Where `npm start` serves the stand-in. */
export const DEFAULT_GRAPH_PORT = 10011;
/** Graph's own application id, which the bearer challenge names. */
const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
export const MAX_HARDWARE_OATH_METHODS = 5;
const SECRET_MAX_CHARACTERS = 128;
const FIELD_MAX_LENGTH = 256;
const CHECK_MEMBER_GROUPS_MAX = 20;
const THROTTLE_WINDOW_MS = 10_000;
const MAX_REQUEST_BYTES = 1024 * 1024;
const PAGE_SIZE_MAX = 999;

const DEFAULT_REALISM: Required<GraphRealism> = {
  throttling: false,
  requestsPer10s: 100,
  retryAfterSeconds: 0,
  latencyMs: 0,
  errorRate: 0,
  timeoutRate: 0,
  timeoutMs: 30_000,
  appliedFaultRate: 0,
};
const REALISM_KEYS = Object.keys(DEFAULT_REALISM) as (keyof GraphRealism)[];

// ---------------------------------------------------------------------------------------------------------------
// State

interface UserRecord {
  id: string;
  userPrincipalName: string;
  displayName: string;
  userType: 'Member' | 'Guest';
  accountEnabled: boolean;
  /** Template ids. */
  directoryRoles: string[];
  eligibleRoles: string[];
  groups: string[];
}

interface DeviceRecord {
  id: string;
  displayName: string | null;
  serialNumber: string;
  manufacturer: string;
  model: string;
  /** Canonical base32 (upper case, no padding). Never leaves the stand-in except through the journal. */
  secretKey: string;
  timeIntervalInSeconds: 30 | 60;
  hashFunction: HashFunction;
  status: DeviceStatus;
  assignedTo: string | null;
  createdDateTime: string;
  assignedDateTime: string | null;
  activatedDateTime: string | null;
  lastUsedDateTime: string | null;
  driftSteps: number | null;
  /** Last time step accepted (activation or sign-in): a code is never accepted twice. */
  lastUsedStep: number | null;
  source: DeviceSource;
}

interface AppRoleRecord {
  id: string;
  value: string;
  displayName: string;
  description: string;
  allowedMemberTypes: string[];
  isEnabled: boolean;
}

interface ApplicationRecord {
  id: string;
  appId: string;
  uniqueName: string;
  displayName: string;
  signInAudience: string;
  appRoles: AppRoleRecord[];
  web: { redirectUris: string[]; implicitGrantSettings: { enableIdTokenIssuance: boolean; enableAccessTokenIssuance: boolean } };
  requiredResourceAccess: unknown[];
  createdDateTime: string;
}

interface ServicePrincipalRecord {
  id: string;
  appId: string;
  displayName: string;
  appRoleAssignmentRequired: boolean;
  /** Absent: an application's (the console's). ManagedIdentity: seeded through the admin endpoint. */
  servicePrincipalType?: 'Application' | 'ManagedIdentity';
  /** The roles it offers when it has no application in this tenant (Microsoft Graph's). */
  appRoles?: AppRoleRecord[];
}

interface AppRoleAssignmentRecord {
  id: string;
  principalId: string;
  principalType: 'User' | 'Group' | 'ServicePrincipal';
  resourceId: string;
  appRoleId: string;
  createdDateTime: string;
}

type JournalRecord =
  | { t: 'header'; format: 'graph-standin-journal'; formatVersion: 1 }
  | { t: 'user'; user: UserRecord }
  | { t: 'device'; device: DeviceRecord }
  | { t: 'deviceDeleted'; id: string }
  | { t: 'application'; application: ApplicationRecord }
  | { t: 'servicePrincipal'; servicePrincipal: ServicePrincipalRecord }
  | { t: 'appRoleAssignment'; assignment: AppRoleAssignmentRecord };

/** Microsoft Graph's service principal, present in every tenant; its app roles are the application permissions. */
const MICROSOFT_GRAPH_SERVICE_PRINCIPAL: ServicePrincipalRecord = {
  id: derivedId('servicePrincipal', GRAPH_APP_ID),
  appId: GRAPH_APP_ID,
  displayName: 'Microsoft Graph',
  appRoleAssignmentRequired: false,
  servicePrincipalType: 'Application',
  appRoles: GRAPH_APPLICATION_PERMISSIONS.map((p) => ({
    id: p.id,
    value: p.value,
    displayName: p.displayName,
    description: `Allows the app to ${p.displayName.toLowerCase()}.`,
    allowedMemberTypes: ['Application'],
    isEnabled: true,
  })),
};

class DirectoryState implements JournalHost<JournalRecord> {
  readonly users = new Map<string, UserRecord>();
  private readonly byUpn = new Map<string, string>();
  readonly devices = new Map<string, DeviceRecord>();
  readonly applications = new Map<string, ApplicationRecord>();
  readonly servicePrincipals = new Map<string, ServicePrincipalRecord>();
  readonly appRoleAssignments = new Map<string, AppRoleAssignmentRecord>();

  apply(record: JournalRecord): void {
    switch (record.t) {
      case 'header':
        return;
      case 'user': {
        const previous = this.users.get(record.user.id);
        if (previous) this.byUpn.delete(previous.userPrincipalName.toLowerCase());
        this.users.set(record.user.id, record.user);
        this.byUpn.set(record.user.userPrincipalName.toLowerCase(), record.user.id);
        return;
      }
      case 'device':
        this.devices.set(record.device.id, record.device);
        return;
      case 'deviceDeleted':
        this.devices.delete(record.id);
        return;
      case 'application':
        this.applications.set(record.application.id, record.application);
        return;
      case 'servicePrincipal':
        this.servicePrincipals.set(record.servicePrincipal.id, record.servicePrincipal);
        return;
      case 'appRoleAssignment':
        this.appRoleAssignments.set(record.assignment.id, record.assignment);
        return;
    }
  }

  *snapshot(): Generator<JournalRecord> {
    yield { t: 'header', format: 'graph-standin-journal', formatVersion: 1 };
    for (const user of this.users.values()) yield { t: 'user', user };
    for (const device of this.devices.values()) yield { t: 'device', device };
    for (const application of this.applications.values()) yield { t: 'application', application };
    for (const servicePrincipal of this.servicePrincipals.values()) yield { t: 'servicePrincipal', servicePrincipal };
    for (const assignment of this.appRoleAssignments.values()) yield { t: 'appRoleAssignment', assignment };
  }

  clear(): void {
    this.users.clear();
    this.byUpn.clear();
    this.devices.clear();
    this.applications.clear();
    this.servicePrincipals.clear();
    this.appRoleAssignments.clear();
  }

  applicationByUniqueName(uniqueName: string): ApplicationRecord | undefined {
    const wanted = uniqueName.toLowerCase();
    return [...this.applications.values()].find((a) => a.uniqueName.toLowerCase() === wanted);
  }

  /** The tenant's service principals, Microsoft Graph's (built in, not journaled) first. */
  allServicePrincipals(): ServicePrincipalRecord[] {
    return [MICROSOFT_GRAPH_SERVICE_PRINCIPAL, ...this.servicePrincipals.values()];
  }

  servicePrincipalOfApp(appId: string): ServicePrincipalRecord | undefined {
    const wanted = appId.toLowerCase();
    return this.allServicePrincipals().find((sp) => sp.appId.toLowerCase() === wanted);
  }

  servicePrincipalById(id: string): ServicePrincipalRecord | undefined {
    return id === MICROSOFT_GRAPH_SERVICE_PRINCIPAL.id ? MICROSOFT_GRAPH_SERVICE_PRINCIPAL : this.servicePrincipals.get(id);
  }

  /** Groups exist here as far as users name them (seeded with `groups`). */
  isGroup(id: string): boolean {
    return [...this.users.values()].some((u) => u.groups.includes(id));
  }

  /** By object id, or by UPN in any case. */
  findUser(idOrUpn: string): UserRecord | undefined {
    return this.users.get(idOrUpn) ?? this.users.get(this.byUpn.get(idOrUpn.toLowerCase()) ?? '');
  }

  methodsOf(userId: string): DeviceRecord[] {
    return [...this.devices.values()].filter((d) => d.assignedTo === userId);
  }

  devicesWithSerial(serial: string): DeviceRecord[] {
    const wanted = serial.toLowerCase();
    return [...this.devices.values()].filter((d) => d.serialNumber.toLowerCase() === wanted);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors and replies

class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const badRequest = (message: string): GraphError => new GraphError(400, 'badRequest', message);
const invalidRequest = (message: string): GraphError => new GraphError(400, 'invalidRequest', message);
const segmentNotFound = (segment: string): GraphError =>
  new GraphError(400, 'BadRequest', `Resource not found for the segment '${segment.slice(0, 80)}'.`);
const userNotFound = (idOrUpn: string): GraphError =>
  new GraphError(
    404,
    'Request_ResourceNotFound',
    `Resource '${idOrUpn.slice(0, 120)}' does not exist or one of its queried reference-property objects are not present.`,
  );
const deviceNotFound = (id: string): GraphError =>
  new GraphError(404, 'itemNotFound', `The hardware OATH token '${id.slice(0, 80)}' was not found.`);
const methodNotFound = (id: string): GraphError =>
  new GraphError(404, 'itemNotFound', `The user has no hardware OATH method '${id.slice(0, 80)}'.`);
const resourceNotFound = (what: string): GraphError =>
  new GraphError(
    404,
    'Request_ResourceNotFound',
    `Resource '${what.slice(0, 120)}' does not exist or one of its queried reference-property objects are not present.`,
  );

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function readAppRoles(value: unknown): AppRoleRecord[] {
  if (!Array.isArray(value)) throw invalidRequest("The property 'appRoles' must be an array.");
  const roles = value.map((item: unknown): AppRoleRecord => {
    if (typeof item !== 'object' || item === null) throw invalidRequest('Each app role must be an object.');
    const r = item as Record<string, unknown>;
    refuseUnknownProperties(r, ['id', 'value', 'displayName', 'description', 'allowedMemberTypes', 'isEnabled', 'origin'], 'appRole');
    if (typeof r.id !== 'string' || !GUID.test(r.id)) throw invalidRequest('An app role id must be a GUID.');
    if (typeof r.value !== 'string' || !/^[^\s]{1,120}$/.test(r.value))
      throw invalidRequest('An app role value must be 1-120 characters without spaces.');
    if (typeof r.displayName !== 'string' || typeof r.description !== 'string')
      throw invalidRequest('An app role needs a displayName and a description.');
    const types = r.allowedMemberTypes;
    if (!Array.isArray(types) || types.length === 0 || !types.every((t) => t === 'User' || t === 'Application'))
      throw invalidRequest("allowedMemberTypes must list 'User' and/or 'Application'.");
    return {
      id: r.id.toLowerCase(),
      value: r.value,
      displayName: r.displayName,
      description: r.description,
      allowedMemberTypes: [...(types as string[])],
      isEnabled: r.isEnabled !== false,
    };
  });
  const values = roles.map((r) => r.value);
  if (new Set(values).size !== values.length || new Set(roles.map((r) => r.id)).size !== roles.length)
    throw invalidRequest('App role ids and values must be unique.');
  return roles;
}

/** Graph refuses to delete or change an enabled app role: disable it first (then it may be changed or removed). */
function refuseEnabledRoleChanges(before: readonly AppRoleRecord[], after: readonly AppRoleRecord[]): void {
  for (const role of before.filter((r) => r.isEnabled)) {
    const next = after.find((r) => r.id === role.id);
    const disabledOnly = next !== undefined && !next.isEnabled && JSON.stringify({ ...next, isEnabled: true }) === JSON.stringify(role);
    if (next === undefined || (JSON.stringify(next) !== JSON.stringify(role) && !disabledOnly)) {
      throw new GraphError(
        400,
        'CannotDeleteOrUpdateEnabledEntitlement',
        `Permission (scope or role) cannot be deleted or updated unless disabled first: '${role.value.slice(0, 60)}'.`,
      );
    }
  }
}

function readWeb(value: unknown, existing: ApplicationRecord['web'] | undefined): ApplicationRecord['web'] {
  if (typeof value !== 'object' || value === null) throw invalidRequest("The property 'web' must be an object.");
  const w = value as Record<string, unknown>;
  refuseUnknownProperties(w, ['redirectUris', 'implicitGrantSettings', 'homePageUrl', 'logoutUrl'], 'webApplication');
  let redirectUris = existing?.redirectUris ?? [];
  if (w.redirectUris !== undefined) {
    if (!Array.isArray(w.redirectUris) || !w.redirectUris.every((u) => typeof u === 'string'))
      throw invalidRequest('redirectUris must be an array of strings.');
    for (const uri of w.redirectUris) {
      let parsed: URL;
      try {
        parsed = new URL(uri);
      } catch {
        throw invalidRequest(`Invalid redirect URI: '${uri.slice(0, 80)}'.`);
      }
      if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && parsed.hostname === 'localhost'))
        throw invalidRequest('Redirect URIs must use https (or http://localhost).');
    }
    redirectUris = [...w.redirectUris];
  }
  const implicit = (w.implicitGrantSettings ?? {}) as Record<string, unknown>;
  const before = existing?.implicitGrantSettings ?? { enableIdTokenIssuance: false, enableAccessTokenIssuance: false };
  return {
    redirectUris,
    implicitGrantSettings: {
      enableIdTokenIssuance:
        typeof implicit.enableIdTokenIssuance === 'boolean' ? implicit.enableIdTokenIssuance : before.enableIdTokenIssuance,
      enableAccessTokenIssuance:
        typeof implicit.enableAccessTokenIssuance === 'boolean' ? implicit.enableAccessTokenIssuance : before.enableAccessTokenIssuance,
    },
  };
}

function readSignInAudience(value: unknown, existing: string | undefined): string {
  if (value === undefined) return existing ?? 'AzureADMyOrg';
  const allowed = ['AzureADMyOrg', 'AzureADMultipleOrgs', 'AzureADandPersonalMicrosoftAccount', 'PersonalMicrosoftAccount'];
  if (typeof value !== 'string' || !allowed.includes(value)) throw invalidRequest(`signInAudience must be one of ${allowed.join(', ')}.`);
  return value;
}

/** Admin errors are plain { error: message }. */
class AdminError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw badRequest('Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
  }
}

function parseJsonObject(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) throw badRequest('The request body is empty; a JSON object is expected.');
  const parsed = parseJson(raw);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('The request body must be a JSON object.');
  return parsed as Record<string, unknown>;
}

/** Graph refuses properties its types do not define. `@odata.*` annotations are allowed. */
function refuseUnknownProperties(body: Record<string, unknown>, allowed: readonly string[], typeName: string): void {
  for (const key of Object.keys(body)) {
    if (key.startsWith('@odata.') || allowed.includes(key)) continue;
    // Named only when it looks like a property name: a misplaced secret must not come back in the error.
    const shown = /^[a-z][A-Za-z0-9]{0,39}$/.test(key) ? `'${key}'` : '(name withheld)';
    throw invalidRequest(`Invalid property ${shown} for type 'microsoft.graph.${typeName}'.`);
  }
}

function requiredText(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (value === undefined || value === null || value === '') throw invalidRequest(`The property '${field}' is required.`);
  if (typeof value !== 'string') throw invalidRequest(`The property '${field}' must be a string.`);
  if (value.length > FIELD_MAX_LENGTH) throw invalidRequest(`The property '${field}' is longer than ${FIELD_MAX_LENGTH} characters.`);
  return value;
}

function optionalText(body: Record<string, unknown>, field: string): string | null {
  const value = body[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw invalidRequest(`The property '${field}' must be a string.`);
  if (value.length > FIELD_MAX_LENGTH) throw invalidRequest(`The property '${field}' is longer than ${FIELD_MAX_LENGTH} characters.`);
  return value;
}

/** Strict base32: letters A-Z (any case) and digits 2-7, optional '=' padding, nothing else. Never echoes the value. */
function readSecretKey(value: unknown): string {
  if (value === undefined || value === null || value === '') throw invalidRequest("The property 'secretKey' is required.");
  if (typeof value !== 'string') throw invalidRequest("The property 'secretKey' must be a base32 string.");
  if (value.length > SECRET_MAX_CHARACTERS) throw invalidRequest(`The secretKey is longer than ${SECRET_MAX_CHARACTERS} characters.`);
  if (!/^[A-Za-z2-7]+=*$/.test(value) || decodeBase32(value) === undefined) {
    throw invalidRequest('The secretKey is not valid base32: use the letters A-Z and the digits 2-7 only.');
  }
  return value.replace(/=+$/, '').toUpperCase();
}

function readInterval(value: unknown): 30 | 60 {
  if (value === 30 || value === 60) return value;
  throw invalidRequest("The property 'timeIntervalInSeconds' must be 30 or 60.");
}

function readHashFunction(value: unknown): HashFunction {
  if (value === undefined || value === null) return 'hmacsha1';
  if (value === 'hmacsha1' || value === 'hmacsha256') return value;
  throw invalidRequest("The property 'hashFunction' must be 'hmacsha1' or 'hmacsha256'.");
}

function otpParameters(device: DeviceRecord): OtpParameters {
  const secret = decodeBase32(device.secretKey);
  if (!secret) throw new Error('stored secret is not base32');
  return { secret, algorithm: device.hashFunction === 'hmacsha256' ? 'SHA256' : 'SHA1', digits: 6, period: device.timeIntervalInSeconds };
}

const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A stable GUID-shaped id derived from text (users seeded without an id keep theirs across restarts). */
function derivedId(namespace: string, text: string): string {
  const hex = createHash('sha256').update(`${namespace}\0${text}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// OData query options

interface ODataQuery {
  filter?: { property: string; value: string | boolean };
  select?: string[];
  top?: number;
  expand?: string[];
  skip: number;
}

const FILTER_PATTERN = /^\s*([A-Za-z]+(?:\/[A-Za-z]+)?)\s+eq\s+(?:'((?:[^']|'')*)'|(true|false))\s*$/;

function readQuery(url: URL, filterable: readonly string[], selectable: readonly string[], typeName: string): ODataQuery {
  const out: ODataQuery = { skip: 0 };
  const filter = url.searchParams.get('$filter');
  if (filter !== null) {
    const m = FILTER_PATTERN.exec(filter);
    if (!m || !filterable.includes(m[1]!))
      throw invalidRequest(
        `Invalid filter clause: this stand-in supports only "<property> eq <value>" on ${filterable.join(', ') || 'nothing'} here.`,
      );
    out.filter = { property: m[1]!, value: m[3] !== undefined ? m[3] === 'true' : m[2]!.replace(/''/g, "'") };
  }
  const select = url.searchParams.get('$select');
  if (select !== null && select.trim() !== '') {
    out.select = select.split(',').map((s) => s.trim());
    for (const name of out.select) {
      if (!selectable.includes(name))
        throw new GraphError(
          400,
          'BadRequest',
          `Could not find a property named '${name.slice(0, 64)}' on type 'microsoft.graph.${typeName}'.`,
        );
    }
  }
  const top = url.searchParams.get('$top');
  if (top !== null) {
    const n = Number(top);
    if (!Number.isInteger(n) || n < 1 || n > PAGE_SIZE_MAX)
      throw new GraphError(
        400,
        'BadRequest',
        `Invalid page size specified: '${top.slice(0, 12)}'. Must be between 1 and ${PAGE_SIZE_MAX} inclusive.`,
      );
    out.top = n;
  }
  const expand = url.searchParams.get('$expand');
  if (expand !== null && expand.trim() !== '') out.expand = expand.split(',').map((s) => s.trim());
  const skipToken = url.searchParams.get('$skiptoken');
  if (skipToken !== null) {
    const n = Number(Buffer.from(skipToken, 'base64url').toString('utf8'));
    if (!Number.isInteger(n) || n < 0) throw new GraphError(400, 'BadRequest', 'The $skiptoken is not valid.');
    out.skip = n;
  }
  return out;
}

function selectFields(
  entity: Record<string, unknown>,
  select: string[] | undefined,
  always: readonly string[] = [],
): Record<string, unknown> {
  if (!select) return entity;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entity)) if (k.startsWith('@odata.') || always.includes(k) || select.includes(k)) out[k] = v;
  return out;
}

function matchesFilter(entity: Record<string, unknown>, filter: ODataQuery['filter']): boolean {
  if (!filter) return true;
  const value = filter.property
    .split('/')
    .reduce<unknown>((v, key) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined), entity);
  // Directory string comparisons ignore case.
  if (typeof value === 'string' && typeof filter.value === 'string') return value.toLowerCase() === filter.value.toLowerCase();
  return value === filter.value;
}

// ---------------------------------------------------------------------------------------------------------------
// Routing

type Version = 'beta' | 'v1.0';

interface Route {
  op: GraphOperation;
  version: Version;
  /** An alternate key in the path, e.g. applications(uniqueName='x'). */
  key?: string;
  /** The request's Prefer header (create-if-missing makes an application PATCH an upsert). */
  prefer?: string;
  user?: string;
  id?: string;
}

const DEVICE_COLLECTION = ['directory', 'authenticationMethodDevices', 'hardwareOathDevices'];
const DEVICE_FIELDS = [
  'id',
  'displayName',
  'serialNumber',
  'manufacturer',
  'model',
  'secretKey',
  'timeIntervalInSeconds',
  'hashFunction',
  'status',
  'lastUsedDateTime',
  'assignedTo',
] as const;
const USER_FIELDS = [
  'id',
  'userPrincipalName',
  'displayName',
  'userType',
  'accountEnabled',
  'mail',
  'givenName',
  'surname',
  'jobTitle',
  'mobilePhone',
  'officeLocation',
  'preferredLanguage',
  'businessPhones',
] as const;
/** The properties v1.0 returns for a user without $select: userType and accountEnabled are not among them. */
const USER_DEFAULT_FIELDS = [
  'businessPhones',
  'displayName',
  'givenName',
  'jobTitle',
  'mail',
  'mobilePhone',
  'officeLocation',
  'preferredLanguage',
  'surname',
  'userPrincipalName',
  'id',
];
const ROLE_FIELDS = ['id', 'displayName', 'description', 'roleTemplateId', 'deletedDateTime'] as const;
const ROLE_DEFINITION_FIELDS = ['id', 'displayName', 'description', 'templateId', 'isBuiltIn', 'isEnabled', 'isPrivileged'] as const;
const SERVICE_PRINCIPAL_FIELDS = ['id', 'appId', 'displayName', 'appRoleAssignmentRequired', 'servicePrincipalType', 'appRoles'] as const;
const ELIGIBILITY_FIELDS = [
  'id',
  'principalId',
  'roleDefinitionId',
  'directoryScopeId',
  'appScopeId',
  'memberType',
  'startDateTime',
  'endDateTime',
  'roleEligibilityScheduleId',
] as const;

function route(method: string, pathname: string): Route {
  let segments: string[];
  try {
    segments = pathname
      .split('/')
      .slice(1)
      .map((s) => decodeURIComponent(s));
  } catch {
    throw new GraphError(400, 'BadRequest', 'The request URI is not valid.');
  }
  if (segments.at(-1) === '') segments.pop();
  const [version, ...rest] = segments;
  if (version !== 'beta' && version !== 'v1.0') throw new GraphError(400, 'BadRequest', `Invalid version: ${String(version).slice(0, 20)}`);
  const notAllowed = (): GraphError =>
    new GraphError(405, 'Request_BadRequest', `The HTTP method '${method}' is not allowed for the resource.`);
  const is = (...expected: string[]): boolean => expected.every((s, i) => rest[i] === s);

  if (is(...DEVICE_COLLECTION)) {
    if (version !== 'beta') throw segmentNotFound('authenticationMethodDevices');
    if (rest.length === 3) {
      if (method === 'GET') return { op: 'listDevices', version };
      if (method === 'POST') return { op: 'createDevice', version };
      throw notAllowed();
    }
    if (rest.length === 4) {
      if (method === 'GET') return { op: 'getDevice', version, id: rest[3] };
      if (method === 'DELETE') return { op: 'deleteDevice', version, id: rest[3] };
      throw notAllowed();
    }
    throw segmentNotFound(rest[4] ?? '');
  }
  if (rest[0] === 'users' && rest[1] !== undefined) {
    const user = rest[1];
    if (rest.length === 2) {
      if (method === 'GET') return { op: 'getUser', version, user };
      throw notAllowed();
    }
    if (rest[2] === 'authentication' && rest[3] === 'hardwareOathMethods') {
      if (version !== 'beta') throw segmentNotFound('hardwareOathMethods');
      if (rest.length === 4) {
        if (method === 'GET') return { op: 'listMethods', version, user };
        if (method === 'POST') return { op: 'assignMethod', version, user };
        throw notAllowed();
      }
      const id = rest[4];
      if (rest.length === 5) {
        if (method === 'GET') return { op: 'getMethod', version, user, id };
        if (method === 'DELETE') return { op: 'unassignMethod', version, user, id };
        throw notAllowed();
      }
      if (rest.length === 6 && (rest[5] === 'activate' || rest[5] === 'deactivate')) {
        if (method !== 'POST') throw notAllowed();
        return { op: rest[5] === 'activate' ? 'activateMethod' : 'deactivateMethod', version, user, id };
      }
      throw segmentNotFound(rest[5] ?? '');
    }
    if (rest.length === 4 && rest[2] === 'transitiveMemberOf' && rest[3] === 'microsoft.graph.directoryRole') {
      if (method === 'GET') return { op: 'listUserDirectoryRoles', version, user };
      throw notAllowed();
    }
    if (rest.length === 3 && rest[2] === 'checkMemberGroups') {
      if (method === 'POST') return { op: 'checkMemberGroups', version, user };
      throw notAllowed();
    }
    throw segmentNotFound(rest[2] ?? '');
  }
  const keyed = (segment: string | undefined, name: string, key: string): string | undefined => {
    const m = new RegExp(`^${name}\\(${key}='((?:[^']|'')*)'\\)$`).exec(segment ?? '');
    return m ? m[1]!.replace(/''/g, "'") : undefined;
  };
  const uniqueName = keyed(rest[0], 'applications', 'uniqueName');
  if (uniqueName !== undefined && rest.length === 1) {
    if (method === 'GET') return { op: 'getApplication', version, key: uniqueName };
    if (method === 'PATCH') return { op: 'upsertApplication', version, key: uniqueName };
    throw notAllowed();
  }
  const spAppId = keyed(rest[0], 'servicePrincipals', 'appId');
  if (spAppId !== undefined && rest.length === 1) {
    if (method === 'GET') return { op: 'getServicePrincipal', version, key: spAppId };
    throw notAllowed();
  }
  if (rest[0] === 'servicePrincipals') {
    if (rest.length === 1) {
      if (method === 'GET') return { op: 'listServicePrincipals', version };
      if (method === 'POST') return { op: 'createServicePrincipal', version };
      throw notAllowed();
    }
    if (rest.length === 2) {
      if (method === 'GET') return { op: 'getServicePrincipalById', version, id: rest[1] };
      if (method === 'PATCH') return { op: 'updateServicePrincipal', version, id: rest[1] };
      throw notAllowed();
    }
    if (rest.length === 3 && rest[2] === 'appRoleAssignments') {
      if (method === 'GET') return { op: 'listAppRoleAssignments', version, id: rest[1] };
      if (method === 'POST') return { op: 'createAppRoleAssignment', version, id: rest[1] };
      throw notAllowed();
    }
    if (rest.length === 3 && rest[2] === 'appRoleAssignedTo') {
      if (method === 'GET') return { op: 'listAppRoleAssignedTo', version, id: rest[1] };
      if (method === 'POST') return { op: 'createAppRoleAssignedTo', version, id: rest[1] };
      throw notAllowed();
    }
    throw segmentNotFound(rest[2] ?? '');
  }
  if (rest.length === 3 && is('roleManagement', 'directory')) {
    if (rest[2] === 'roleDefinitions') {
      if (method === 'GET') return { op: 'listRoleDefinitions', version };
      throw notAllowed();
    }
    if (rest[2] === 'roleEligibilityScheduleInstances') {
      if (method === 'GET') return { op: 'listRoleEligibilities', version };
      throw notAllowed();
    }
  }
  throw segmentNotFound(rest[0] ?? '');
}

// ---------------------------------------------------------------------------------------------------------------
// Admin input

function readUserSeed(input: unknown, where: string): GraphUserSeed {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new AdminError(`${where}: expected an object`);
  const o = input as Record<string, unknown>;
  const allowed = ['userPrincipalName', 'id', 'displayName', 'userType', 'accountEnabled', 'directoryRoles', 'eligibleRoles', 'groups'];
  const unknown = Object.keys(o).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    throw new AdminError(`${where}: unknown field(s) ${unknown.map((k) => k.slice(0, 40)).join(', ')}; allowed: ${allowed.join(', ')}`);
  const upn = o.userPrincipalName;
  if (typeof upn !== 'string' || !/^[^@\s/]+@[^@\s/]+$/.test(upn)) throw new AdminError(`${where}: userPrincipalName must be name@domain`);
  const seed: GraphUserSeed = { userPrincipalName: upn };
  if (o.id !== undefined) {
    if (typeof o.id !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(o.id))
      throw new AdminError(`${where}: id must be 1-64 letters, digits and dashes`);
    seed.id = o.id;
  }
  if (o.displayName !== undefined) {
    if (typeof o.displayName !== 'string') throw new AdminError(`${where}: displayName must be a string`);
    seed.displayName = o.displayName;
  }
  if (o.userType !== undefined) {
    if (o.userType !== 'Member' && o.userType !== 'Guest') throw new AdminError(`${where}: userType must be "Member" or "Guest"`);
    seed.userType = o.userType;
  }
  if (o.accountEnabled !== undefined) {
    if (typeof o.accountEnabled !== 'boolean') throw new AdminError(`${where}: accountEnabled must be true or false`);
    seed.accountEnabled = o.accountEnabled;
  }
  for (const field of ['directoryRoles', 'eligibleRoles'] as const) {
    const value = o[field];
    if (value === undefined) continue;
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
      throw new AdminError(`${where}: ${field} must be an array of role names`);
    for (const name of value) {
      if (!roleByName(name))
        throw new AdminError(
          `${where}: unknown role ${JSON.stringify(name.slice(0, 60))}; known roles: ${BUILT_IN_ROLES.map((r) => r.displayName).join(', ')}`,
        );
    }
    seed[field] = value;
  }
  if (o.groups !== undefined) {
    if (!Array.isArray(o.groups) || !o.groups.every((v) => typeof v === 'string' && v.length > 0))
      throw new AdminError(`${where}: groups must be an array of group ids`);
    seed.groups = o.groups as string[];
  }
  return seed;
}

function readUserSeeds(input: unknown, source: string): GraphUserSeed[] {
  if (!Array.isArray(input)) throw new AdminError(`${source}: expected a JSON array of users`);
  return input.map((u, i) => readUserSeed(u, `${source} item ${i}`));
}

function readFaults(input: unknown): GraphFault[] {
  const list = Array.isArray(input) ? input : [input];
  return list.map((f, i) => {
    if (typeof f !== 'object' || f === null) throw new AdminError(`fault ${i}: expected an object`);
    const o = f as Record<string, unknown>;
    const allowed = ['method', 'path', 'status', 'retryAfter', 'timeout', 'apply', 'times'];
    const unknown = Object.keys(o).filter((k) => !allowed.includes(k));
    if (unknown.length > 0) throw new AdminError(`fault ${i}: unknown field(s) ${unknown.join(', ')}`);
    if (o.timeout !== undefined && typeof o.timeout !== 'boolean') throw new AdminError(`fault ${i}: timeout must be a boolean`);
    if (o.status !== undefined && ![429, 500, 502, 503, 504].includes(o.status as number))
      throw new AdminError(`fault ${i}: status must be 429, 500, 502, 503 or 504`);
    if (!o.timeout && o.status === undefined) throw new AdminError(`fault ${i}: give a status or timeout: true`);
    if (o.timeout && o.status !== undefined) throw new AdminError(`fault ${i}: a fault is either a status or a timeout`);
    if (o.retryAfter !== undefined && (typeof o.retryAfter !== 'string' || o.retryAfter.length > 40))
      throw new AdminError(`fault ${i}: retryAfter must be a header value string`);
    if (o.method !== undefined && typeof o.method !== 'string') throw new AdminError(`fault ${i}: method must be a string`);
    if (o.path !== undefined && typeof o.path !== 'string') throw new AdminError(`fault ${i}: path must be a string`);
    if (o.apply !== undefined && typeof o.apply !== 'boolean') throw new AdminError(`fault ${i}: apply must be a boolean`);
    if (o.times !== undefined && !(Number.isInteger(o.times) && (o.times as number) >= 1))
      throw new AdminError(`fault ${i}: times must be an integer >= 1`);
    return o;
  });
}

function validateRealism(r: GraphRealism): void {
  const unknown = Object.keys(r).filter((k) => !(REALISM_KEYS as string[]).includes(k));
  if (unknown.length > 0) throw new AdminError(`unknown realism setting(s): ${unknown.join(', ')}`);
  const rate = (x: unknown): boolean => typeof x === 'number' && x >= 0 && x <= 1;
  const nonNegative = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (r.throttling !== undefined && typeof r.throttling !== 'boolean') throw new AdminError('throttling must be a boolean');
  if (r.requestsPer10s !== undefined && !(Number.isInteger(r.requestsPer10s) && r.requestsPer10s >= 1))
    throw new AdminError('requestsPer10s must be an integer >= 1');
  for (const key of ['retryAfterSeconds', 'latencyMs', 'timeoutMs'] as const)
    if (r[key] !== undefined && !nonNegative(r[key])) throw new AdminError(`${key} must be >= 0`);
  for (const key of ['errorRate', 'timeoutRate', 'appliedFaultRate'] as const)
    if (r[key] !== undefined && !rate(r[key])) throw new AdminError(`${key} must be between 0 and 1`);
}

// ---------------------------------------------------------------------------------------------------------------
// The stand-in

interface QueuedFault extends GraphFault {
  remaining: number;
}

function emptyCounters(now: number): Omit<GraphStats, 'devices' | 'users' | 'realism' | 'pendingFaults'> {
  return {
    ...zeroCounters(now),
    faultsByKind: { status: 0, timeouts: 0, applied: 0 },
    operations: zeroPerOperation(OPERATIONS),
    devicesCreated: 0,
  };
}

class GraphStandInServer extends StandInHttpServer {
  private readonly state = new DirectoryState();
  private readonly journal: JsonLinesJournal<JournalRecord> | undefined;
  private realism: Required<GraphRealism> = { ...DEFAULT_REALISM };
  private faults: QueuedFault[] = [];
  private counters: ReturnType<typeof emptyCounters>;
  private accepted: number[] = [];
  private readonly now: () => number;
  private readonly pageSize: number;

  constructor(opts: GraphStandInOptions) {
    super({
      label: 'graph stand-in',
      maxRequestBytes: MAX_REQUEST_BYTES,
      requestIdHeader: 'request-id',
      jsonContentType: 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8',
      log: opts.log,
    });
    this.now = opts.now ?? Date.now;
    this.counters = emptyCounters(this.now());
    this.pageSize = opts.pageSize ?? 100;
    if (opts.realism) this.setRealism(opts.realism);
    if (opts.persistPath)
      this.journal = JsonLinesJournal.open(path.resolve(opts.persistPath), this.state, (l) => this.log(l), 'graph stand-in');
    if (opts.usersFile && fs.existsSync(opts.usersFile)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(fs.readFileSync(opts.usersFile, 'utf8'));
      } catch (error) {
        throw new Error(
          `Graph stand-in users file ${opts.usersFile} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      this.seedUsers(readUserSeeds(parsed, opts.usersFile));
    }
  }

  protected traffic(): ReturnType<typeof emptyCounters> {
    return this.counters;
  }

  protected internalError(req: http.IncomingMessage): Reply {
    return this.errorReply(new GraphError(500, 'generalException', 'Internal error in the stand-in.'), req);
  }

  protected override afterClose(): void {
    this.journal?.close();
  }

  setRealism(r: GraphRealism): void {
    validateRealism(r);
    const next = { ...this.realism };
    for (const key of REALISM_KEYS) if (r[key] !== undefined) (next as Record<string, unknown>)[key] = r[key];
    if (next.errorRate + next.timeoutRate > 1) throw new AdminError('errorRate + timeoutRate must not exceed 1');
    this.realism = next;
  }

  injectFaults(faults: GraphFault[]): void {
    for (const f of readFaults(faults)) this.faults.push({ ...f, remaining: f.times ?? 1 });
  }

  stats(): GraphStats {
    return {
      ...structuredClone(this.counters),
      devices: this.state.devices.size,
      users: this.state.users.size,
      realism: { ...this.realism },
      pendingFaults: this.faults.reduce((n, f) => n + f.remaining, 0),
    };
  }

  reset(wipeData: boolean): void {
    this.counters = emptyCounters(this.now());
    this.accepted = [];
    this.faults = [];
    if (wipeData) {
      this.state.clear();
      this.journal?.replaceWith(this.state.snapshot());
    }
  }

  /** Durable first, then visible. */
  private commit(records: JournalRecord[]): void {
    this.journal?.append(records);
    for (const r of records) this.state.apply(r);
  }

  // ---- admin ------------------------------------------------------------------------------------------------

  seedUsers(seeds: GraphUserSeed[]): GraphUserView[] {
    const records: UserRecord[] = [];
    const upnsInBatch = new Set<string>();
    for (const seed of seeds) {
      const key = seed.userPrincipalName.toLowerCase();
      if (upnsInBatch.has(key)) throw new AdminError(`user ${seed.userPrincipalName} appears twice`);
      upnsInBatch.add(key);
      const existing = this.state.findUser(seed.userPrincipalName);
      const id = seed.id ?? existing?.id ?? derivedId('user', key);
      if (existing && existing.id !== id) throw new AdminError(`user ${seed.userPrincipalName} exists with id ${existing.id}, not ${id}`);
      const holder = this.state.users.get(id);
      if (holder && holder.userPrincipalName.toLowerCase() !== key) throw new AdminError(`id ${id} belongs to ${holder.userPrincipalName}`);
      records.push({
        id,
        userPrincipalName: seed.userPrincipalName,
        displayName: seed.displayName ?? existing?.displayName ?? seed.userPrincipalName.split('@')[0]!,
        userType: seed.userType ?? existing?.userType ?? (seed.userPrincipalName.includes('#EXT#') ? 'Guest' : 'Member'),
        accountEnabled: seed.accountEnabled ?? existing?.accountEnabled ?? true,
        directoryRoles: seed.directoryRoles ? seed.directoryRoles.map((n) => roleByName(n)!.templateId) : (existing?.directoryRoles ?? []),
        eligibleRoles: seed.eligibleRoles ? seed.eligibleRoles.map((n) => roleByName(n)!.templateId) : (existing?.eligibleRoles ?? []),
        groups: seed.groups ?? existing?.groups ?? [],
      });
    }
    this.commit(records.map((user) => ({ t: 'user', user })));
    return records.map((u) => this.userView(u));
  }

  seedDevices(seeds: GraphDeviceSeed[]): GraphDeviceView[] {
    if (!Array.isArray(seeds)) throw new AdminError('expected a JSON array of devices');
    const records: DeviceRecord[] = [];
    const at = isoSeconds(this.now());
    seeds.forEach((seed, i) => {
      const where = `device ${i}`;
      if (typeof seed !== 'object' || seed === null) throw new AdminError(`${where}: expected an object`);
      let secretKey: string;
      let interval: 30 | 60;
      let hashFunction: HashFunction;
      try {
        secretKey = readSecretKey(seed.secretKey);
        interval = readInterval(seed.timeIntervalInSeconds ?? 30);
        hashFunction = readHashFunction(seed.hashFunction);
      } catch (error) {
        throw new AdminError(`${where}: ${(error as Error).message}`);
      }
      if (typeof seed.serialNumber !== 'string' || seed.serialNumber === '') throw new AdminError(`${where}: serialNumber is required`);
      const source = seed.source ?? 'graph';
      if (source !== 'graph' && source !== 'csv') throw new AdminError(`${where}: source must be "graph" or "csv"`);
      const clash = [
        ...this.state.devicesWithSerial(seed.serialNumber),
        ...records.filter((r) => r.serialNumber.toLowerCase() === seed.serialNumber.toLowerCase()),
      ];
      if (source === 'graph' && clash.some((d) => d.source === 'graph'))
        throw new AdminError(`${where}: a Graph device with serial ${seed.serialNumber} exists`);
      const user = seed.assignedTo === undefined ? undefined : this.state.findUser(seed.assignedTo);
      if (seed.assignedTo !== undefined && !user) throw new AdminError(`${where}: no user ${seed.assignedTo}`);
      const status = seed.status ?? (user ? 'assigned' : 'available');
      if (!['available', 'assigned', 'activated'].includes(status))
        throw new AdminError(`${where}: status must be available, assigned or activated`);
      if ((status === 'available') !== !user) throw new AdminError(`${where}: status ${status} needs ${user ? 'no' : 'an'} assignedTo`);
      records.push({
        id: randomUUID(),
        displayName: seed.displayName ?? null,
        serialNumber: seed.serialNumber,
        manufacturer: seed.manufacturer ?? 'Contoso',
        model: seed.model ?? 'TOTP-6',
        secretKey,
        timeIntervalInSeconds: interval,
        hashFunction,
        status,
        assignedTo: user?.id ?? null,
        createdDateTime: at,
        assignedDateTime: user ? at : null,
        activatedDateTime: status === 'activated' ? at : null,
        lastUsedDateTime: null,
        driftSteps: status === 'activated' ? 0 : null,
        lastUsedStep: null,
        source,
      });
    });
    this.commit(records.map((device) => ({ t: 'device', device })));
    return records.map((d) => this.deviceView(d));
  }

  users(): GraphUserView[] {
    return [...this.state.users.values()].map((u) => this.userView(u));
  }

  devices(): GraphDeviceView[] {
    return [...this.state.devices.values()].map((d) => this.deviceView(d));
  }

  private userView(u: UserRecord): GraphUserView {
    const names = (ids: string[]): string[] => ids.map((id) => roleByTemplateId(id)?.displayName ?? id);
    return {
      id: u.id,
      userPrincipalName: u.userPrincipalName,
      displayName: u.displayName,
      userType: u.userType,
      accountEnabled: u.accountEnabled,
      directoryRoles: names(u.directoryRoles),
      eligibleRoles: names(u.eligibleRoles),
      groups: [...u.groups],
      hardwareOathMethods: this.state.methodsOf(u.id).length,
    };
  }

  private deviceView(d: DeviceRecord): GraphDeviceView {
    const user = d.assignedTo ? this.state.users.get(d.assignedTo) : undefined;
    return {
      id: d.id,
      serialNumber: d.serialNumber,
      manufacturer: d.manufacturer,
      model: d.model,
      displayName: d.displayName,
      timeIntervalInSeconds: d.timeIntervalInSeconds,
      hashFunction: d.hashFunction,
      status: d.status,
      assignedTo: d.assignedTo ? { id: d.assignedTo, userPrincipalName: user?.userPrincipalName ?? '' } : null,
      createdDateTime: d.createdDateTime,
      assignedDateTime: d.assignedDateTime,
      activatedDateTime: d.activatedDateTime,
      lastUsedDateTime: d.lastUsedDateTime,
      driftSeconds: d.driftSteps === null ? null : d.driftSteps * d.timeIntervalInSeconds,
      source: d.source,
    };
  }

  /** A sign-in with a code from one of the user's activated tokens: sign-in window around the learnt drift. */
  signIn(idOrUpn: string, code: string): SignInResult {
    const user = this.state.findUser(idOrUpn);
    if (!user) throw new AdminError(`no user ${idOrUpn}`, 404);
    if (!/^\d{6}$/.test(code)) return { accepted: false };
    const unixSeconds = Math.floor(this.now() / 1000);
    for (const device of this.state.methodsOf(user.id)) {
      if (device.status !== 'activated') continue;
      const period = device.timeIntervalInSeconds;
      const centre = stepAt(unixSeconds, period) + (device.driftSteps ?? 0);
      const window = signInWindowSteps(period);
      const low = Math.max(centre - window, (device.lastUsedStep ?? -1) + 1);
      const step = scanSteps(otpParameters(device), code, low, centre + window);
      if (step === undefined) continue;
      const driftSteps = step - stepAt(unixSeconds, period);
      this.commit([{ t: 'device', device: { ...device, driftSteps, lastUsedStep: step, lastUsedDateTime: isoSeconds(this.now()) } }]);
      return { accepted: true, serialNumber: device.serialNumber, driftSeconds: driftSteps * period };
    }
    return { accepted: false };
  }

  protected handleAdmin(method: string, what: string, raw: RawBody): Reply {
    const json = (): unknown => {
      if (raw === 'too-large') throw new AdminError('request too large');
      if (raw.length === 0) return undefined;
      try {
        return JSON.parse(raw.toString('utf8'));
      } catch {
        throw new AdminError('the body is not valid JSON');
      }
    };
    try {
      if (what === 'stats' && method === 'GET') return { status: 200, body: this.stats() };
      if (what === 'realism' && method === 'GET') return { status: 200, body: { ...this.realism } };
      if (what === 'realism' && method === 'POST') {
        const body = json();
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AdminError('expected a JSON object');
        this.setRealism(body);
        return { status: 200, body: { ...this.realism } };
      }
      if (what === 'faults' && method === 'POST') {
        this.injectFaults(json() as GraphFault[]);
        return { status: 200, body: { pending: this.faults.map(({ remaining, ...f }) => ({ ...f, remaining })) } };
      }
      if (what === 'faults' && method === 'GET')
        return { status: 200, body: { pending: this.faults.map(({ remaining, ...f }) => ({ ...f, remaining })) } };
      if (what === 'faults' && method === 'DELETE') {
        this.faults = [];
        return { status: 200, body: { pending: [] } };
      }
      if (what === 'users' && method === 'POST') return { status: 200, body: { users: this.seedUsers(readUserSeeds(json(), 'body')) } };
      if (what === 'users' && method === 'GET') return { status: 200, body: { users: this.users() } };
      if (what === 'devices' && method === 'GET') return { status: 200, body: { devices: this.devices() } };
      if (what === 'devices' && method === 'POST') return { status: 200, body: { devices: this.seedDevices(json() as GraphDeviceSeed[]) } };
      if (what === 'service-principals' && method === 'POST')
        return { status: 200, body: { servicePrincipals: this.seedServicePrincipals(json()) } };
      if (what === 'service-principals' && method === 'GET')
        return { status: 200, body: { servicePrincipals: this.state.allServicePrincipals().map((sp) => this.servicePrincipalView(sp)) } };
      if (what === 'sign-in' && method === 'POST') {
        const body = json() as { user?: unknown; code?: unknown } | undefined;
        if (typeof body?.user !== 'string' || typeof body.code !== 'string')
          throw new AdminError('expected { "user": "<upn or id>", "code": "123456" }');
        return { status: 200, body: this.signIn(body.user, body.code) };
      }
      if (what === 'reset' && method === 'POST') {
        const body = (json() ?? {}) as { data?: unknown };
        this.reset(body.data === true);
        return { status: 200, body: { ok: true, wipedData: body.data === true } };
      }
    } catch (error) {
      if (error instanceof AdminError) return { status: error.status, body: { error: error.message } };
      throw error;
    }
    return { status: 404, body: { error: `No admin endpoint ${method} ${ADMIN_PREFIX}${what}` } };
  }

  // ---- HTTP -------------------------------------------------------------------------------------------------

  private errorReply(error: GraphError, req: http.IncomingMessage): Reply {
    const clientRequestId =
      typeof req.headers['client-request-id'] === 'string' ? req.headers['client-request-id'].slice(0, 64) : randomUUID();
    return {
      status: error.status,
      headers: error.headers,
      body: {
        error: {
          code: error.code,
          message: error.message,
          innerError: { date: isoSeconds(this.now()), 'request-id': randomUUID(), 'client-request-id': clientRequestId },
        },
      },
    };
  }

  private nextFault(
    method: string,
    apiPath: string,
  ): { status?: number; retryAfter?: string; timeout?: boolean; apply: boolean } | undefined {
    const index = this.faults.findIndex(
      (f) => (!f.method || f.method.toUpperCase() === method) && (!f.path || apiPath.toLowerCase().includes(f.path.toLowerCase())),
    );
    if (index >= 0) {
      const fault = this.faults[index]!;
      fault.remaining--;
      if (fault.remaining <= 0) this.faults.splice(index, 1);
      return { status: fault.status, retryAfter: fault.retryAfter, timeout: fault.timeout, apply: fault.apply ?? false };
    }
    const { timeoutRate, errorRate, appliedFaultRate } = this.realism;
    const roll = Math.random();
    if (roll >= timeoutRate + errorRate) return undefined;
    const apply = Math.random() < appliedFaultRate;
    if (roll < timeoutRate) return { timeout: true, apply };
    return Math.random() < 0.5 ? { status: 503, retryAfter: '1', apply } : { status: 500, apply };
  }

  /** Sliding window of accepted requests; a 429 is not counted. Returns the wait in ms when over budget. */
  private throttleWait(): number | undefined {
    if (!this.realism.throttling) return undefined;
    const now = this.now();
    this.accepted = this.accepted.filter((t) => t > now - THROTTLE_WINDOW_MS);
    if (this.accepted.length < this.realism.requestsPer10s) {
      this.accepted.push(now);
      return undefined;
    }
    return Math.max(1, this.accepted[0]! + THROTTLE_WINDOW_MS - now);
  }

  protected async handleApi(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    url: URL,
    raw: RawBody,
  ): Promise<Reply | 'held'> {
    if (this.realism.latencyMs > 0) {
      try {
        await this.wait(this.realism.latencyMs, this.closing.signal);
      } catch {
        return 'held'; // closing
      }
      if (this.closed) return 'held';
    }
    if (!hasBearerToken(req)) {
      this.counters.challenges++;
      const reply = this.errorReply(new GraphError(401, 'InvalidAuthenticationToken', 'Access token is empty.'), req);
      reply.headers = {
        'www-authenticate': `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="${GRAPH_APP_ID}"`,
      };
      return reply;
    }
    let target: Route;
    try {
      target = route(method, url.pathname);
      if (typeof req.headers.prefer === 'string') target.prefer = req.headers.prefer;
    } catch (error) {
      if (error instanceof GraphError) return this.errorReply(error, req);
      throw error;
    }
    const apiPath = url.pathname.replace(/^\/(beta|v1\.0)/, '');
    const execute = (): Reply => {
      try {
        if (raw === 'too-large') throw new GraphError(413, 'RequestEntityTooLarge', 'The request body is too large.');
        return this.execute(target, url, raw, this.baseUrl(req));
      } catch (error) {
        if (error instanceof GraphError) return this.errorReply(error, req);
        throw error;
      }
    };

    const fault = this.nextFault(method, apiPath);
    if (fault) {
      this.counters.faults++;
      if (fault.apply) {
        this.counters.faultsByKind.applied++;
        this.counters.operations[target.op]++;
        execute();
      }
      if (fault.timeout) {
        this.counters.faultsByKind.timeouts++;
        this.hold(req, res, this.realism.timeoutMs);
        return 'held';
      }
      this.counters.faultsByKind.status++;
      const status = fault.status ?? 500;
      const code =
        { 429: 'TooManyRequests', 500: 'generalException', 502: 'BadGateway', 503: 'serviceNotAvailable', 504: 'GatewayTimeout' }[status] ??
        'generalException';
      const error = new GraphError(
        status,
        code,
        `Injected fault: HTTP ${status}.`,
        fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter },
      );
      return this.errorReply(error, req);
    }

    const wait = this.throttleWait();
    if (wait !== undefined) {
      this.counters.throttled++;
      const seconds = this.realism.retryAfterSeconds > 0 ? this.realism.retryAfterSeconds : Math.ceil(wait) / 1000;
      const retryAfter = String(Number(seconds.toFixed(3)));
      return this.errorReply(
        new GraphError(429, 'TooManyRequests', 'Too many requests; retry after the time given in Retry-After.', {
          'retry-after': retryAfter,
        }),
        req,
      );
    }
    this.counters.operations[target.op]++;
    return execute();
  }

  // ---- operations -------------------------------------------------------------------------------------------

  private execute(target: Route, url: URL, raw: Buffer, base: string): Reply {
    switch (target.op) {
      case 'listDevices':
        return this.listDevices(url, base);
      case 'createDevice':
        return this.createDevice(parseJsonObject(raw), base);
      case 'getDevice':
        return {
          status: 200,
          body: {
            '@odata.context': `${base}/beta/$metadata#directory/authenticationMethodDevices/hardwareOathDevices/$entity`,
            ...this.selectDevice(this.device(target.id!), url),
          },
        };
      case 'deleteDevice':
        return this.deleteDevice(target.id!);
      case 'getUser':
        return this.getUser(target, url, base);
      case 'assignMethod':
        return this.assign(this.user(target.user!), parseJsonObject(raw), base);
      case 'listMethods': {
        const user = this.user(target.user!);
        const expand = this.readExpand(url);
        return {
          status: 200,
          body: {
            '@odata.context': `${base}/beta/$metadata#users('${user.id}')/authentication/hardwareOathMethods`,
            value: this.state.methodsOf(user.id).map((d) => this.methodJson(d, expand)),
          },
        };
      }
      case 'getMethod': {
        const user = this.user(target.user!);
        return {
          status: 200,
          body: {
            '@odata.context': `${base}/beta/$metadata#users('${user.id}')/authentication/hardwareOathMethods/$entity`,
            ...this.methodJson(this.method(user, target.id!), this.readExpand(url)),
          },
        };
      }
      case 'unassignMethod':
        return this.unassign(this.user(target.user!), target.id!);
      case 'activateMethod':
        return this.activate(this.user(target.user!), target.id!, parseJsonObject(raw));
      case 'deactivateMethod': {
        const device = this.method(this.user(target.user!), target.id!);
        this.commit([{ t: 'device', device: { ...device, status: 'assigned', activatedDateTime: null } }]);
        return { status: 204 };
      }
      case 'listUserDirectoryRoles':
        return this.listUserDirectoryRoles(target, url, base);
      case 'checkMemberGroups':
        return this.checkMemberGroups(this.user(target.user!), parseJsonObject(raw), target.version, base);
      case 'listRoleDefinitions':
        return this.listRoleDefinitions(target.version, url, base);
      case 'listRoleEligibilities':
        return this.listRoleEligibilities(target.version, url, base);
      case 'getApplication': {
        const application = this.state.applicationByUniqueName(target.key!);
        if (!application) throw resourceNotFound(`applications(uniqueName='${target.key!}')`);
        return { status: 200, body: { '@odata.context': `${base}/${target.version}/$metadata#applications/$entity`, ...application } };
      }
      case 'upsertApplication':
        return this.upsertApplication(
          target.key!,
          /create-if-missing/i.test(target.prefer ?? ''),
          parseJsonObject(raw),
          base,
          target.version,
        );
      case 'getServicePrincipal': {
        const sp = this.state.servicePrincipalOfApp(target.key!);
        if (!sp) throw resourceNotFound(`servicePrincipals(appId='${target.key!}')`);
        return {
          status: 200,
          body: {
            '@odata.context': `${base}/${target.version}/$metadata#servicePrincipals/$entity`,
            ...selectFields(this.servicePrincipalJson(sp), readQuery(url, [], SERVICE_PRINCIPAL_FIELDS, 'servicePrincipal').select, ['id']),
          },
        };
      }
      case 'getServicePrincipalById': {
        const sp = this.servicePrincipal(target.id!);
        return {
          status: 200,
          body: {
            '@odata.context': `${base}/${target.version}/$metadata#servicePrincipals/$entity`,
            ...selectFields(this.servicePrincipalJson(sp), readQuery(url, [], SERVICE_PRINCIPAL_FIELDS, 'servicePrincipal').select, ['id']),
          },
        };
      }
      case 'listServicePrincipals': {
        const query = readQuery(url, ['appId', 'displayName', 'servicePrincipalType'], SERVICE_PRINCIPAL_FIELDS, 'servicePrincipal');
        const value = this.state
          .allServicePrincipals()
          .map((sp) => this.servicePrincipalJson(sp))
          .filter((sp) => matchesFilter(sp, query.filter))
          .map((sp) => selectFields(sp, query.select, ['id']));
        return { status: 200, body: { '@odata.context': `${base}/${target.version}/$metadata#servicePrincipals`, value } };
      }
      case 'listAppRoleAssignments': {
        // The assignments this service principal holds (as the principal), on any resource.
        const principal = this.servicePrincipal(target.id!);
        const value = [...this.state.appRoleAssignments.values()]
          .filter((a) => a.principalId === principal.id)
          .map((a) => this.assignmentJson(a, this.servicePrincipal(a.resourceId)));
        return {
          status: 200,
          body: { '@odata.context': `${base}/${target.version}/$metadata#servicePrincipals('${principal.id}')/appRoleAssignments`, value },
        };
      }
      case 'createAppRoleAssignment': {
        const principal = this.servicePrincipal(target.id!);
        const body = parseJsonObject(raw);
        if (typeof body.principalId === 'string' && body.principalId !== principal.id)
          throw new GraphError(400, 'Request_BadRequest', 'The principalId must be the service principal the assignment is made for.');
        const resourceId = typeof body.resourceId === 'string' ? body.resourceId : '';
        const resource = this.state.servicePrincipalById(resourceId);
        if (!resource) throw resourceNotFound(resourceId || 'resourceId');
        return this.createAppRoleAssignment(
          resource,
          { ...body, principalId: principal.id },
          base,
          target.version,
          `servicePrincipals('${principal.id}')/appRoleAssignments`,
        );
      }
      case 'createServicePrincipal':
        return this.createServicePrincipal(parseJsonObject(raw), base, target.version);
      case 'updateServicePrincipal':
        return this.updateServicePrincipal(target.id!, parseJsonObject(raw));
      case 'listAppRoleAssignedTo': {
        const sp = this.servicePrincipal(target.id!);
        const value = [...this.state.appRoleAssignments.values()]
          .filter((a) => a.resourceId === sp.id)
          .map((a) => this.assignmentJson(a, sp));
        return {
          status: 200,
          body: { '@odata.context': `${base}/${target.version}/$metadata#servicePrincipals('${sp.id}')/appRoleAssignedTo`, value },
        };
      }
      case 'createAppRoleAssignedTo':
        return this.createAppRoleAssignment(this.servicePrincipal(target.id!), parseJsonObject(raw), base, target.version);
    }
  }

  // ---- app registrations (the console's setup script) -----------------------------------------------------

  private servicePrincipal(id: string): ServicePrincipalRecord {
    const sp = this.state.servicePrincipalById(id);
    if (!sp) throw resourceNotFound(id);
    return sp;
  }

  /** The roles a service principal offers: its own (Microsoft Graph's), else its application's. */
  private appRolesOf(sp: ServicePrincipalRecord): AppRoleRecord[] {
    return sp.appRoles ?? [...this.state.applications.values()].find((a) => a.appId === sp.appId)?.appRoles ?? [];
  }

  private servicePrincipalJson(sp: ServicePrincipalRecord): Record<string, unknown> {
    return {
      id: sp.id,
      appId: sp.appId,
      displayName: sp.displayName,
      appRoleAssignmentRequired: sp.appRoleAssignmentRequired,
      servicePrincipalType: sp.servicePrincipalType ?? 'Application',
      appRoles: this.appRolesOf(sp),
    };
  }

  /** Admin: managed identities' service principals (Azure creates them, not Graph), by appId (the client id). */
  seedServicePrincipals(seeds: unknown): Record<string, unknown>[] {
    if (!Array.isArray(seeds)) throw new AdminError('expected a JSON array of { "appId", "id"?, "displayName"? }');
    const records = seeds.map((seed: unknown, i): ServicePrincipalRecord => {
      const where = `service principal ${i + 1}`;
      if (typeof seed !== 'object' || seed === null) throw new AdminError(`${where}: expected an object`);
      const o = seed as Record<string, unknown>;
      const unknown = Object.keys(o).filter((k) => !['appId', 'id', 'displayName'].includes(k));
      if (unknown.length > 0)
        throw new AdminError(
          `${where}: unknown field(s) ${unknown.map((k) => k.slice(0, 40)).join(', ')}; allowed: appId, id, displayName`,
        );
      if (typeof o.appId !== 'string' || !GUID.test(o.appId))
        throw new AdminError(`${where}: appId must be a GUID (the managed identity's client id)`);
      if (o.id !== undefined && (typeof o.id !== 'string' || !GUID.test(o.id))) throw new AdminError(`${where}: id must be a GUID`);
      if (o.appId.toLowerCase() === GRAPH_APP_ID) throw new AdminError(`${where}: Microsoft Graph's service principal is built in`);
      const existing = this.state.servicePrincipalOfApp(o.appId);
      return {
        id: existing?.id ?? (typeof o.id === 'string' ? o.id.toLowerCase() : derivedId('servicePrincipal', o.appId.toLowerCase())),
        appId: o.appId.toLowerCase(),
        displayName:
          typeof o.displayName === 'string' && o.displayName
            ? o.displayName.slice(0, FIELD_MAX_LENGTH)
            : (existing?.displayName ?? `identity ${o.appId.slice(0, 8)}`),
        appRoleAssignmentRequired: existing?.appRoleAssignmentRequired ?? false,
        servicePrincipalType: 'ManagedIdentity',
      };
    });
    this.commit(records.map((servicePrincipal) => ({ t: 'servicePrincipal' as const, servicePrincipal })));
    return records.map((sp) => this.servicePrincipalView(sp));
  }

  /** Admin view: a service principal with the Graph permissions granted to it (by value). */
  servicePrincipalView(sp: ServicePrincipalRecord): Record<string, unknown> {
    const granted = [...this.state.appRoleAssignments.values()]
      .filter((a) => a.principalId === sp.id)
      .map((a) => this.appRolesOf(this.servicePrincipal(a.resourceId)).find((r) => r.id === a.appRoleId)?.value ?? a.appRoleId)
      .sort();
    return {
      id: sp.id,
      appId: sp.appId,
      displayName: sp.displayName,
      servicePrincipalType: sp.servicePrincipalType ?? 'Application',
      appRolesGranted: granted,
    };
  }

  private upsertApplication(
    uniqueName: string,
    createIfMissing: boolean,
    body: Record<string, unknown>,
    base: string,
    version: Version,
  ): Reply {
    refuseUnknownProperties(
      body,
      ['displayName', 'signInAudience', 'appRoles', 'web', 'requiredResourceAccess', 'description', 'notes', 'tags'],
      'application',
    );
    const existing = this.state.applicationByUniqueName(uniqueName);
    if (!existing && !createIfMissing) throw resourceNotFound(`applications(uniqueName='${uniqueName}')`);
    if (!existing && (typeof body.displayName !== 'string' || body.displayName === ''))
      throw invalidRequest("The property 'displayName' is required.");
    const appRoles = body.appRoles === undefined ? (existing?.appRoles ?? []) : readAppRoles(body.appRoles);
    if (existing) refuseEnabledRoleChanges(existing.appRoles, appRoles);
    const web = body.web === undefined ? existing?.web : readWeb(body.web, existing?.web);
    const application: ApplicationRecord = {
      id: existing?.id ?? randomUUID(),
      appId: existing?.appId ?? randomUUID(),
      uniqueName: existing?.uniqueName ?? uniqueName,
      displayName:
        typeof body.displayName === 'string' && body.displayName !== ''
          ? body.displayName.slice(0, FIELD_MAX_LENGTH)
          : existing!.displayName,
      signInAudience: readSignInAudience(body.signInAudience, existing?.signInAudience),
      appRoles,
      web: web ?? { redirectUris: [], implicitGrantSettings: { enableIdTokenIssuance: false, enableAccessTokenIssuance: false } },
      requiredResourceAccess: Array.isArray(body.requiredResourceAccess)
        ? body.requiredResourceAccess
        : (existing?.requiredResourceAccess ?? []),
      createdDateTime: existing?.createdDateTime ?? isoSeconds(this.now()),
    };
    this.commit([{ t: 'application', application }]);
    if (existing) return { status: 204 };
    return { status: 201, body: { '@odata.context': `${base}/${version}/$metadata#applications/$entity`, ...application } };
  }

  private createServicePrincipal(body: Record<string, unknown>, base: string, version: Version): Reply {
    refuseUnknownProperties(body, ['appId', 'appRoleAssignmentRequired', 'tags', 'notes'], 'servicePrincipal');
    const appId = requiredText(body, 'appId');
    const application = [...this.state.applications.values()].find((a) => a.appId === appId);
    if (!application)
      throw new GraphError(
        400,
        'Request_BadRequest',
        `The appId '${appId.slice(0, 40)}' of the service principal does not reference a valid application object.`,
      );
    if (this.state.servicePrincipalOfApp(appId))
      throw new GraphError(409, 'Request_MultipleObjectsWithSameKeyValue', 'The service principal name is already present for the tenant.');
    const sp: ServicePrincipalRecord = {
      id: randomUUID(),
      appId,
      displayName: application.displayName,
      appRoleAssignmentRequired: body.appRoleAssignmentRequired === true,
    };
    this.commit([{ t: 'servicePrincipal', servicePrincipal: sp }]);
    return {
      status: 201,
      body: { '@odata.context': `${base}/${version}/$metadata#servicePrincipals/$entity`, ...sp, appRoles: application.appRoles },
    };
  }

  private updateServicePrincipal(id: string, body: Record<string, unknown>): Reply {
    refuseUnknownProperties(body, ['appRoleAssignmentRequired', 'tags', 'notes'], 'servicePrincipal');
    const sp = this.servicePrincipal(id);
    if (body.appRoleAssignmentRequired !== undefined && typeof body.appRoleAssignmentRequired !== 'boolean')
      throw invalidRequest("The property 'appRoleAssignmentRequired' must be a boolean.");
    this.commit([
      {
        t: 'servicePrincipal',
        servicePrincipal: {
          ...sp,
          appRoleAssignmentRequired:
            typeof body.appRoleAssignmentRequired === 'boolean' ? body.appRoleAssignmentRequired : sp.appRoleAssignmentRequired,
        },
      },
    ]);
    return { status: 204 };
  }

  private assignmentJson(a: AppRoleAssignmentRecord, sp: ServicePrincipalRecord): Record<string, unknown> {
    const principalName =
      this.state.users.get(a.principalId)?.displayName ?? this.state.servicePrincipalById(a.principalId)?.displayName ?? null;
    return { ...a, principalDisplayName: principalName, resourceDisplayName: sp.displayName, deletedDateTime: null };
  }

  /** On resource `sp`: to a user or group (a role of the console's app), or to a service principal (an application permission). */
  private createAppRoleAssignment(
    sp: ServicePrincipalRecord,
    body: Record<string, unknown>,
    base: string,
    version: Version,
    collection = `servicePrincipals('${sp.id}')/appRoleAssignedTo`,
  ): Reply {
    refuseUnknownProperties(body, ['principalId', 'resourceId', 'appRoleId'], 'appRoleAssignment');
    const principalId = requiredText(body, 'principalId');
    const resourceId = requiredText(body, 'resourceId');
    const appRoleId = requiredText(body, 'appRoleId');
    if (resourceId !== sp.id)
      throw new GraphError(400, 'Request_BadRequest', 'The resourceId must be the service principal the assignment is made on.');
    const role = this.appRolesOf(sp).find((r) => r.id === appRoleId && r.isEnabled);
    if (!role) throw new GraphError(400, 'Request_BadRequest', `Permission being assigned was not found on application '${sp.appId}'.`);
    const principalType = this.state.users.has(principalId)
      ? 'User'
      : this.state.isGroup(principalId)
        ? 'Group'
        : this.state.servicePrincipalById(principalId)
          ? 'ServicePrincipal'
          : undefined;
    if (!principalType) throw resourceNotFound(principalId);
    const memberType = principalType === 'ServicePrincipal' ? 'Application' : 'User';
    if (!role.allowedMemberTypes.includes(memberType)) {
      throw new GraphError(
        400,
        'Request_BadRequest',
        principalType === 'ServicePrincipal'
          ? 'The app role does not allow applications as members.'
          : 'The app role does not allow users or groups as members.',
      );
    }
    const duplicate = [...this.state.appRoleAssignments.values()].some(
      (a) => a.resourceId === sp.id && a.principalId === principalId && a.appRoleId === appRoleId,
    );
    if (duplicate) throw new GraphError(400, 'Request_BadRequest', 'Permission being assigned already exists on the object');
    const assignment: AppRoleAssignmentRecord = {
      id: randomUUID(),
      principalId,
      principalType,
      resourceId: sp.id,
      appRoleId,
      createdDateTime: isoSeconds(this.now()),
    };
    this.commit([{ t: 'appRoleAssignment', assignment }]);
    return {
      status: 201,
      body: { '@odata.context': `${base}/${version}/$metadata#${collection}/$entity`, ...this.assignmentJson(assignment, sp) },
    };
  }

  private user(idOrUpn: string): UserRecord {
    const user = this.state.findUser(idOrUpn);
    if (!user) throw userNotFound(idOrUpn);
    return user;
  }

  private device(id: string): DeviceRecord {
    const device = this.state.devices.get(id);
    if (!device) throw deviceNotFound(id);
    return device;
  }

  /** The method id is the device id. */
  private method(user: UserRecord, id: string): DeviceRecord {
    const device = this.state.devices.get(id);
    if (!device || device.assignedTo !== user.id) throw methodNotFound(id);
    return device;
  }

  private readExpand(url: URL): boolean {
    const expand = url.searchParams.get('$expand');
    if (expand === null || expand.trim() === '') return false;
    if (expand.trim() !== 'device')
      throw new GraphError(
        400,
        'BadRequest',
        `Could not find a navigation property named '${expand.slice(0, 40)}' on type 'microsoft.graph.hardwareOathAuthenticationMethod'.`,
      );
    return true;
  }

  private deviceJson(d: DeviceRecord): Record<string, unknown> {
    const user = d.assignedTo ? this.state.users.get(d.assignedTo) : undefined;
    return {
      id: d.id,
      displayName: d.displayName,
      serialNumber: d.serialNumber,
      manufacturer: d.manufacturer,
      model: d.model,
      secretKey: null,
      timeIntervalInSeconds: d.timeIntervalInSeconds,
      hashFunction: d.hashFunction,
      status: d.status,
      lastUsedDateTime: d.lastUsedDateTime,
      assignedTo: d.assignedTo ? { id: d.assignedTo, displayName: user?.displayName ?? null } : null,
    };
  }

  private selectDevice(d: DeviceRecord, url: URL): Record<string, unknown> {
    return selectFields(this.deviceJson(d), readQuery(url, [], DEVICE_FIELDS, 'hardwareOathTokenAuthenticationMethodDevice').select, [
      'id',
    ]);
  }

  private methodJson(d: DeviceRecord, expandDevice: boolean): Record<string, unknown> {
    return {
      '@odata.type': '#microsoft.graph.hardwareOathAuthenticationMethod',
      id: d.id,
      createdDateTime: d.assignedDateTime,
      lastUsedDateTime: d.lastUsedDateTime,
      ...(expandDevice ? { device: this.deviceJson(d) } : {}),
    };
  }

  private listDevices(url: URL, base: string): Reply {
    const query = readQuery(
      url,
      ['serialNumber', 'status', 'hashFunction', 'assignedTo/id'],
      DEVICE_FIELDS,
      'hardwareOathTokenAuthenticationMethodDevice',
    );
    const matching = [...this.state.devices.values()].map((d) => this.deviceJson(d)).filter((d) => matchesFilter(d, query.filter));
    const size = query.top ?? this.pageSize;
    const page = matching.slice(query.skip, query.skip + size);
    const body: Record<string, unknown> = {
      '@odata.context': `${base}/beta/$metadata#directory/authenticationMethodDevices/hardwareOathDevices`,
      value: page.map((d) => selectFields(d, query.select, ['id'])),
    };
    if (matching.length > query.skip + size) {
      const next = new URL(`${base}${url.pathname}`);
      for (const [k, v] of url.searchParams) if (k !== '$skiptoken') next.searchParams.set(k, v);
      next.searchParams.set('$skiptoken', Buffer.from(String(query.skip + size)).toString('base64url'));
      body['@odata.nextLink'] = next.toString();
    }
    return { status: 200, body };
  }

  /** Refusals a user can meet when a token is assigned: guests, the five-method limit. */
  private checkCanHold(user: UserRecord): void {
    if (user.userType === 'Guest') throw badRequest('Hardware OATH tokens cannot be assigned to guest users.');
    if (this.state.methodsOf(user.id).length >= MAX_HARDWARE_OATH_METHODS) {
      throw badRequest(`The user already has the maximum number of OATH authentication methods (${MAX_HARDWARE_OATH_METHODS}).`);
    }
  }

  private createDevice(body: Record<string, unknown>, base: string): Reply {
    refuseUnknownProperties(
      body,
      ['displayName', 'serialNumber', 'manufacturer', 'model', 'secretKey', 'timeIntervalInSeconds', 'hashFunction', 'assignTo'],
      'hardwareOathTokenAuthenticationMethodDevice',
    );
    const serialNumber = requiredText(body, 'serialNumber');
    const manufacturer = requiredText(body, 'manufacturer');
    const model = requiredText(body, 'model');
    const displayName = optionalText(body, 'displayName');
    const secretKey = readSecretKey(body.secretKey);
    const timeIntervalInSeconds = readInterval(body.timeIntervalInSeconds);
    const hashFunction = readHashFunction(body.hashFunction);
    let user: UserRecord | undefined;
    if (body.assignTo !== undefined && body.assignTo !== null) {
      const assignTo = body.assignTo as { id?: unknown };
      if (typeof assignTo !== 'object' || typeof assignTo.id !== 'string' || assignTo.id === '')
        throw invalidRequest('The property \'assignTo\' must be { "id": "<user object id>" }.');
      user = this.state.users.get(assignTo.id);
      if (!user) throw userNotFound(assignTo.id);
      this.checkCanHold(user);
    }
    if (this.state.devicesWithSerial(serialNumber).some((d) => d.source === 'graph')) {
      throw new GraphError(409, 'conflict', `A hardware OATH token with serial number '${serialNumber}' already exists.`);
    }
    const at = isoSeconds(this.now());
    const device: DeviceRecord = {
      id: randomUUID(),
      displayName,
      serialNumber,
      manufacturer,
      model,
      secretKey,
      timeIntervalInSeconds,
      hashFunction,
      status: user ? 'assigned' : 'available',
      assignedTo: user?.id ?? null,
      createdDateTime: at,
      assignedDateTime: user ? at : null,
      activatedDateTime: null,
      lastUsedDateTime: null,
      driftSteps: null,
      lastUsedStep: null,
      source: 'graph',
    };
    this.commit([{ t: 'device', device }]);
    this.counters.devicesCreated++;
    const location = `${base}/beta/directory/authenticationMethodDevices/hardwareOathDevices/${device.id}`;
    return {
      status: 201,
      headers: { location },
      body: {
        '@odata.context': `${base}/beta/$metadata#directory/authenticationMethodDevices/hardwareOathDevices/$entity`,
        ...this.deviceJson(device),
      },
    };
  }

  private deleteDevice(id: string): Reply {
    const device = this.device(id);
    if (device.assignedTo) throw badRequest('The hardware OATH token is assigned to a user; unassign it before deleting it.');
    this.commit([{ t: 'deviceDeleted', id }]);
    return { status: 204 };
  }

  private assign(user: UserRecord, body: Record<string, unknown>, base: string): Reply {
    refuseUnknownProperties(body, ['device'], 'hardwareOathAuthenticationMethod');
    const ref = body.device as { id?: unknown } | undefined;
    if (typeof ref !== 'object' || ref === null || typeof ref.id !== 'string' || ref.id === '')
      throw invalidRequest('The property \'device\' must be { "id": "<device id>" }.');
    if (user.userType === 'Guest') throw badRequest('Hardware OATH tokens cannot be assigned to guest users.');
    const device = this.device(ref.id);
    if (device.assignedTo === user.id) throw new GraphError(409, 'conflict', 'The hardware OATH token is already assigned to this user.');
    if (device.assignedTo) throw new GraphError(409, 'conflict', 'The hardware OATH token is assigned to another user.');
    this.checkCanHold(user);
    const assigned: DeviceRecord = {
      ...device,
      status: 'assigned',
      assignedTo: user.id,
      assignedDateTime: isoSeconds(this.now()),
      activatedDateTime: null,
      driftSteps: null,
    };
    this.commit([{ t: 'device', device: assigned }]);
    return {
      status: 201,
      headers: { location: `${base}/beta/users/${user.id}/authentication/hardwareOathMethods/${device.id}` },
      body: {
        '@odata.context': `${base}/beta/$metadata#users('${user.id}')/authentication/hardwareOathMethods/$entity`,
        ...this.methodJson(assigned, false),
      },
    };
  }

  private unassign(user: UserRecord, id: string): Reply {
    const device = this.method(user, id);
    this.commit([
      {
        t: 'device',
        device: { ...device, status: 'available', assignedTo: null, assignedDateTime: null, activatedDateTime: null, driftSteps: null },
      },
    ]);
    return { status: 204 };
  }

  private activate(user: UserRecord, id: string, body: Record<string, unknown>): Reply {
    refuseUnknownProperties(body, ['verificationCode', 'displayName'], 'hardwareOathAuthenticationMethod');
    const device = this.method(user, id);
    const code = body.verificationCode;
    if (typeof code !== 'string' || code === '') throw invalidRequest("The property 'verificationCode' is required.");
    const displayName = optionalText(body, 'displayName');
    if (device.status === 'activated') throw badRequest('The hardware OATH token is already activated.');
    const nowMs = this.now();
    const unixSeconds = Math.floor(nowMs / 1000);
    const period = device.timeIntervalInSeconds;
    const current = stepAt(unixSeconds, period);
    const window = activationWindowSteps(period);
    const step = /^\d{6}$/.test(code) ? scanSteps(otpParameters(device), code, current - window, current + window) : undefined;
    if (step === undefined) {
      this.commit([{ t: 'device', device: { ...device, status: 'failedActivation' } }]);
      throw badRequest('The verification code is not valid for this hardware OATH token.');
    }
    const activated: DeviceRecord = {
      ...device,
      status: 'activated',
      activatedDateTime: isoSeconds(nowMs),
      driftSteps: step - current,
      lastUsedStep: step,
      ...(displayName !== null ? { displayName } : {}),
    };
    this.commit([{ t: 'device', device: activated }]);
    return { status: 204 };
  }

  private getUser(target: Route, url: URL, base: string): Reply {
    const user = this.user(target.user!);
    const query = readQuery(url, [], USER_FIELDS, 'user');
    const full: Record<string, unknown> = {
      businessPhones: [],
      displayName: user.displayName,
      givenName: null,
      jobTitle: null,
      mail: user.userType === 'Guest' ? null : user.userPrincipalName,
      mobilePhone: null,
      officeLocation: null,
      preferredLanguage: null,
      surname: null,
      userPrincipalName: user.userPrincipalName,
      id: user.id,
      userType: user.userType,
      accountEnabled: user.accountEnabled,
    };
    const fields = query.select ?? USER_DEFAULT_FIELDS;
    const body: Record<string, unknown> = {
      '@odata.context': `${base}/${target.version}/$metadata#users${query.select ? `(${query.select.join(',')})` : ''}/$entity`,
    };
    for (const f of fields) body[f] = full[f];
    return { status: 200, body };
  }

  private listUserDirectoryRoles(target: Route, url: URL, base: string): Reply {
    const user = this.user(target.user!);
    const query = readQuery(url, [], ROLE_FIELDS, 'directoryRole');
    const value = user.directoryRoles.map((templateId) => {
      const role = roleByTemplateId(templateId);
      return selectFields(
        {
          '@odata.type': '#microsoft.graph.directoryRole',
          id: derivedId('directoryRole', templateId),
          deletedDateTime: null,
          description: role?.description ?? '',
          displayName: role?.displayName ?? templateId,
          roleTemplateId: templateId,
        },
        query.select,
      );
    });
    return { status: 200, body: { '@odata.context': `${base}/${target.version}/$metadata#directoryRoles`, value } };
  }

  private checkMemberGroups(user: UserRecord, body: Record<string, unknown>, version: Version, base: string): Reply {
    refuseUnknownProperties(body, ['groupIds'], 'user');
    const ids = body.groupIds;
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string'))
      throw invalidRequest("The property 'groupIds' must be a non-empty array of group ids.");
    if (ids.length > CHECK_MEMBER_GROUPS_MAX) throw invalidRequest(`At most ${CHECK_MEMBER_GROUPS_MAX} groupIds can be checked at once.`);
    const member = new Set(user.groups.map((g) => g.toLowerCase()));
    return {
      status: 200,
      body: {
        '@odata.context': `${base}/${version}/$metadata#Collection(Edm.String)`,
        value: ids.filter((id) => member.has(id.toLowerCase())),
      },
    };
  }

  private listRoleDefinitions(version: Version, url: URL, base: string): Reply {
    const query = readQuery(
      url,
      ['isPrivileged', 'displayName', 'templateId', 'id', 'isBuiltIn'],
      ROLE_DEFINITION_FIELDS,
      'unifiedRoleDefinition',
    );
    const value = BUILT_IN_ROLES.map((r) => ({
      id: r.templateId,
      description: r.description,
      displayName: r.displayName,
      isBuiltIn: true,
      isEnabled: true,
      isPrivileged: r.isPrivileged,
      templateId: r.templateId,
    }))
      .filter((r) => matchesFilter(r, query.filter))
      .map((r) => selectFields(r, query.select, ['id']));
    return { status: 200, body: { '@odata.context': `${base}/${version}/$metadata#roleManagement/directory/roleDefinitions`, value } };
  }

  private listRoleEligibilities(version: Version, url: URL, base: string): Reply {
    const query = readQuery(url, ['principalId', 'roleDefinitionId'], ELIGIBILITY_FIELDS, 'unifiedRoleEligibilityScheduleInstance');
    const value = [...this.state.users.values()]
      .flatMap((user) =>
        user.eligibleRoles.map((templateId) => ({
          id: derivedId('eligibility', `${user.id}/${templateId}`),
          principalId: user.id,
          roleDefinitionId: templateId,
          directoryScopeId: '/',
          appScopeId: null,
          memberType: 'Direct',
          startDateTime: '2025-01-01T00:00:00Z',
          endDateTime: null,
          roleEligibilityScheduleId: derivedId('eligibilitySchedule', `${user.id}/${templateId}`),
        })),
      )
      .filter((e) => matchesFilter(e, query.filter))
      .map((e) => selectFields(e, query.select, ['id']));
    return {
      status: 200,
      body: { '@odata.context': `${base}/${version}/$metadata#roleManagement/directory/roleEligibilityScheduleInstances`, value },
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------

export async function startGraphStandIn(opts: GraphStandInOptions = {}): Promise<GraphStandIn> {
  const standIn = new GraphStandInServer(opts);
  const url = await standIn.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
  const adminCall = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      if (error instanceof AdminError) throw new Error(error.message);
      throw error;
    }
  };
  return {
    url,
    port: standIn.port,
    setRealism: (r) => adminCall(() => standIn.setRealism(r)),
    injectFaults: (f) => adminCall(() => standIn.injectFaults(f)),
    seedUsers: (u) => adminCall(() => standIn.seedUsers(readUserSeeds(u, 'users'))),
    seedDevices: (d) => adminCall(() => standIn.seedDevices(d)),
    users: () => standIn.users(),
    devices: () => standIn.devices(),
    signIn: (user, code) => adminCall(() => standIn.signIn(user, code)),
    stats: () => standIn.stats(),
    close: () => standIn.close(),
  };
}
