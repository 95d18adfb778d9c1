/**
 * `npm run grant-graph`: grants the app's identity the Microsoft Graph application permissions Graph mode needs
 * (IMPORT_MODE=graph). Run once per environment by a Privileged Role Administrator (or an app holding
 * AppRoleAssignment.ReadWrite.All and Application.Read.All); Azure RBAC Owner is not enough, so it is not part of
 * `azd up`. Idempotent: it reads what the identity already holds and creates only the missing assignments, so it can
 * be run again at any time (after a permission is added here, or to check).
 *
 * Why a script and not a Bicep module: the Microsoft Graph Bicep extension compiles only after downloading the
 * extension from a container registry, and a deployment of it would need the same privileged role; a script
 * can be tested against the local Graph stand-in, twice, and prints what it did.
 *
 *   npm run grant-graph                      identity from AZURE_MANAGED_IDENTITY_CLIENT_ID (the azd environment)
 *   npm run grant-graph -- --client-id <id>  any identity, by client (application) id
 *   npm run grant-graph -- --principal-id <object id>
 *   npm run grant-graph -- --check           changes nothing; exit code 3 when a permission is missing
 *
 * GRAPH_BASE_URL (default https://graph.microsoft.com; the local stand-in's loopback address under `npm start`).
 * GRAPH_ALLOWED_GROUP_ID set (or --group-check): GroupMember.Read.All is granted too, for the group limit.
 * Signs in with DefaultAzureCredential (`az login` or `azd auth login` as the administrator). Prints ids and
 * permission names only: no token, no secret.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TokenCredential } from '@azure/identity';
import { GraphClient, type GraphResponse } from './console-app-registration.js';

export const MICROSOFT_GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

/** What Graph mode calls, and the application permission each call needs (docs/graph.md, "Who may do it"). */
export const GRAPH_MODE_PERMISSIONS: readonly { value: string; for: string }[] = [
  { value: 'Policy.ReadWrite.AuthenticationMethod', for: 'create, find, read and delete hardware OATH devices' },
  { value: 'UserAuthMethod-HardwareOATH.ReadWrite.All', for: "assign, activate and unassign users' hardware OATH methods" },
  { value: 'User.Read.All', for: 'resolve a UPN; read userType and accountEnabled' },
  { value: 'RoleManagement.Read.Directory', for: 'the privileged-user guard: role definitions, active roles, PIM eligibilities' },
];
export const GROUP_CHECK_PERMISSION = { value: 'GroupMember.Read.All', for: 'the group limit (GRAPH_ALLOWED_GROUP_ID): checkMemberGroups' };

export class GrantError extends Error {
  override name = 'GrantError';
}

export interface GrantOptions {
  /** The identity, by client (application) id: a managed identity's client id. */
  clientId?: string;
  /** Or by its service principal's object id. */
  principalId?: string;
  /** Also grant GroupMember.Read.All (the group limit). */
  groupCheck?: boolean;
  /** Read and report only. */
  checkOnly?: boolean;
  log?: (line: string) => void;
}

export interface GrantResult {
  principalId: string;
  graphServicePrincipalId: string;
  alreadyGranted: string[];
  granted: string[];
  /** Missing and not granted (checkOnly). */
  missing: string[];
}

interface ServicePrincipal {
  id: string;
  appId?: string;
  displayName?: string;
  appRoles?: { id: string; value: string | null; allowedMemberTypes?: string[]; isEnabled?: boolean }[];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function describe(response: GraphResponse): string {
  const error = (response.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return `HTTP ${response.status}${typeof error?.code === 'string' ? ` ${error.code}` : ''}${typeof error?.message === 'string' ? `: ${error.message.slice(0, 300)}` : ''}`;
}

function refused(response: GraphResponse, what: string): GrantError {
  const hint =
    response.status === 401 || response.status === 403
      ? ' (granting application permissions needs a Privileged Role Administrator, or an app with AppRoleAssignment.ReadWrite.All and Application.Read.All; Azure Owner is not enough)'
      : '';
  return new GrantError(`${what} failed: ${describe(response)}${hint}`);
}

/** A collection's items, following @odata.nextLink on the same origin. */
async function listAll(graph: GraphClient, first: string, what: string): Promise<unknown[]> {
  const items: unknown[] = [];
  let next: string | undefined = first;
  for (let page = 0; next !== undefined; page++) {
    if (page >= 50) throw new GrantError(`${what}: more than 50 pages`);
    const answer = await graph.request('GET', next);
    if (answer.status !== 200) throw refused(answer, what);
    const body = answer.body as { value?: unknown; '@odata.nextLink'?: unknown };
    if (!Array.isArray(body.value)) throw new GrantError(`${what}: the answer has no value array`);
    items.push(...(body.value as unknown[]));
    const link = typeof body['@odata.nextLink'] === 'string' ? body['@odata.nextLink'] : undefined;
    next = link === undefined ? undefined : (/\/v1\.0\/(.*)$/.exec(link)?.[1] ?? undefined);
    if (link !== undefined && next === undefined) throw new GrantError(`${what}: a nextLink outside Graph v1.0`);
  }
  return items;
}

async function identityServicePrincipal(graph: GraphClient, options: GrantOptions): Promise<ServicePrincipal> {
  const { clientId, principalId } = options;
  if (!clientId && !principalId)
    throw new GrantError('no identity: set AZURE_MANAGED_IDENTITY_CLIENT_ID (azd env get-values) or pass --client-id or --principal-id');
  const key = (clientId ?? principalId)!;
  if (!GUID.test(key))
    throw new GrantError(`${clientId ? '--client-id' : '--principal-id'} ${JSON.stringify(key.slice(0, 60))} is not a GUID`);
  const answer = clientId
    ? await graph.request('GET', `servicePrincipals(appId='${clientId}')?$select=id,appId,displayName`)
    : await graph.request('GET', `servicePrincipals/${principalId!}?$select=id,appId,displayName`);
  if (answer.status === 404) {
    throw new GrantError(
      `no service principal for ${clientId ? `client id ${clientId}` : `object id ${principalId!}`} in this tenant (a just-created identity takes a minute or two to appear: run again)`,
    );
  }
  if (answer.status !== 200) throw refused(answer, 'reading the identity');
  return answer.body as ServicePrincipal;
}

/** Grants the missing permissions to the identity; returns what was there and what it added. */
export async function grantGraphPermissions(graph: GraphClient, options: GrantOptions): Promise<GrantResult> {
  const log = options.log ?? (() => undefined);
  const identity = await identityServicePrincipal(graph, options);
  const graphAnswer = await graph.request(
    'GET',
    `servicePrincipals(appId='${MICROSOFT_GRAPH_APP_ID}')?$select=id,appId,displayName,appRoles`,
  );
  if (graphAnswer.status !== 200) throw refused(graphAnswer, "reading Microsoft Graph's service principal");
  const graphSp = graphAnswer.body as ServicePrincipal;

  const wanted = [...GRAPH_MODE_PERMISSIONS, ...(options.groupCheck ? [GROUP_CHECK_PERMISSION] : [])];
  const roles = wanted.map((permission) => {
    const role = graphSp.appRoles?.find(
      (r) => r.value === permission.value && r.isEnabled !== false && (r.allowedMemberTypes ?? ['Application']).includes('Application'),
    );
    if (!role) throw new GrantError(`Microsoft Graph offers no application permission ${permission.value} in this tenant`);
    return { ...permission, id: role.id.toLowerCase() };
  });

  const held = new Set(
    (
      (await listAll(graph, `servicePrincipals/${identity.id}/appRoleAssignments`, "listing the identity's permissions")) as {
        resourceId?: string;
        appRoleId?: string;
      }[]
    )
      .filter((a) => a.resourceId?.toLowerCase() === graphSp.id.toLowerCase() && typeof a.appRoleId === 'string')
      .map((a) => a.appRoleId!.toLowerCase()),
  );
  const result: GrantResult = {
    principalId: identity.id,
    graphServicePrincipalId: graphSp.id,
    alreadyGranted: [],
    granted: [],
    missing: [],
  };
  log(`identity ${identity.displayName ?? ''} (service principal ${identity.id}${identity.appId ? `, client id ${identity.appId}` : ''})`);
  for (const role of roles) {
    if (held.has(role.id)) {
      result.alreadyGranted.push(role.value);
      log(`already granted: ${role.value}`);
      continue;
    }
    if (options.checkOnly) {
      result.missing.push(role.value);
      log(`missing: ${role.value} (${role.for})`);
      continue;
    }
    const created = await graph.request('POST', `servicePrincipals/${identity.id}/appRoleAssignments`, {
      principalId: identity.id,
      resourceId: graphSp.id,
      appRoleId: role.id,
    });
    const raced = created.status === 400 && /already exists/i.test(describe(created));
    if (created.status !== 201 && !raced) throw refused(created, `granting ${role.value}`);
    if (raced) result.alreadyGranted.push(role.value);
    else result.granted.push(role.value);
    log(`${raced ? 'already granted (meanwhile)' : 'granted'}: ${role.value} (${role.for})`);
  }
  return result;
}

export interface GrantCommand extends GrantOptions {
  graphBaseUrl: string;
}

/** Command-line flags over the azd environment's values. */
export function grantCommandFrom(argv: readonly string[], env: NodeJS.ProcessEnv): GrantCommand {
  const command: GrantCommand = {
    graphBaseUrl: env['GRAPH_BASE_URL']?.trim() || 'https://graph.microsoft.com',
    groupCheck: Boolean(env['GRAPH_ALLOWED_GROUP_ID']?.trim()),
  };
  const clientId = env['AZURE_MANAGED_IDENTITY_CLIENT_ID']?.trim();
  if (clientId) command.clientId = clientId;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new GrantError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--client-id') {
      command.clientId = value();
      delete command.principalId;
    } else if (flag === '--principal-id') {
      command.principalId = value();
      delete command.clientId;
    } else if (flag === '--group-check') command.groupCheck = true;
    else if (flag === '--check') command.checkOnly = true;
    else throw new GrantError(`unknown option ${flag}; options: --client-id <id>, --principal-id <object id>, --group-check, --check`);
  }
  return command;
}

async function credentialFor(baseUrl: string): Promise<TokenCredential> {
  const url = new URL(baseUrl);
  if (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    // The local stand-in accepts any bearer token.
    return { getToken: () => Promise.resolve({ token: 'local-stand-in', expiresOnTimestamp: Number.MAX_SAFE_INTEGER }) };
  }
  if (url.protocol !== 'https:')
    throw new GrantError(`GRAPH_BASE_URL ${baseUrl} must use https (plain http only for the local stand-in on loopback)`);
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new DefaultAzureCredential();
}

async function main(): Promise<void> {
  const command = grantCommandFrom(process.argv.slice(2), process.env);
  const graph = new GraphClient(command.graphBaseUrl, await credentialFor(command.graphBaseUrl));
  const result = await grantGraphPermissions(graph, { ...command, log: (line) => console.log(`grant-graph: ${line}`) });
  if (command.checkOnly) {
    console.log(
      `grant-graph: ${result.missing.length === 0 ? 'every permission is granted' : `${result.missing.length} missing; run without --check as a Privileged Role Administrator`}`,
    );
    if (result.missing.length > 0) process.exitCode = 3;
    return;
  }
  console.log(`grant-graph: ${result.granted.length} granted, ${result.alreadyGranted.length} already there`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(`grant-graph: ${error instanceof GrantError ? error.message : ((error as Error).stack ?? String(error))}`);
    process.exitCode = 1;
  });
}
