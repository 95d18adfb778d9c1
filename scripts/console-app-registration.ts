// The console's app registration in Entra ID, made and kept by `azd` hooks (infra/hooks/preprovision.* and
// postprovision.*) when CONSOLE_SIGN_IN=true. App Service Authentication on the Function app signs people in
// with this registration; its two app roles say what they may do (shared/app/auth.ts).
//
// Idempotent: each run reads what exists and changes only what differs, so it can run before every provision.
//  - the application, found by its uniqueName (`oath-console-<azd environment>`; Graph's upsert by alternate key):
//    the two app roles with fixed ids, ID tokens for sign-in (no client secret anywhere), the Easy Auth callback
//    of the Function app once its host name is known, Microsoft Graph User.Read (sign-in and profile);
//  - its service principal, with "assignment required", so only people holding a role can sign in at all;
//  - the groups given for each role, assigned that role.
// Roles, redirect URIs and assignments that someone added by hand are left alone; nothing is ever removed.
import { spawnSync } from 'node:child_process';
import type { TokenCredential } from '@azure/identity';
import { APP_ROLES, type AppRole } from '../shared/app/auth.js';
import { HookError, hookCredential, readJsonBody, runAsHook } from './azure-hook.js';

/** Fixed ids, so every run (and every environment) names the same roles. */
export const CONSOLE_APP_ROLES: readonly { id: string; value: AppRole; displayName: string; description: string }[] = [
  {
    id: '6f1d2c8e-3b5a-4e7f-9a0c-1d2e3f4a5b61',
    value: APP_ROLES.helpdesk,
    displayName: 'Token helpdesk',
    description: 'Look tokens up and check codes in the OATH token console.',
  },
  {
    id: '6f1d2c8e-3b5a-4e7f-9a0c-1d2e3f4a5b62',
    value: APP_ROLES.admin,
    displayName: 'Token administrator',
    description:
      'Everything in the OATH token console: upload seed files and assignment lists, download and confirm import files, unlock, reassign and retire tokens.',
  },
];

const MICROSOFT_GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
/** Microsoft Graph's delegated User.Read: sign in and read the user's profile. */
const USER_READ_SCOPE_ID = 'e1fe6dd8-ba31-4d61-89e7-88639da4683d';

export class ConsoleRegistrationError extends HookError {
  override name = 'ConsoleRegistrationError';
}

export interface GraphResponse {
  status: number;
  body: unknown;
}

/** Microsoft Graph v1.0 over fetch, with bounded retries on 429 and 5xx (Retry-After honoured). */
export class GraphClient {
  constructor(
    private readonly baseUrl: string,
    private readonly credential: TokenCredential,
    private readonly maxAttempts = 5,
  ) {}

  async request(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<GraphResponse> {
    for (let attempt = 1; ; attempt++) {
      const token = await this.credential.getToken('https://graph.microsoft.com/.default');
      if (!token) throw new ConsoleRegistrationError('could not get a Microsoft Graph token (sign in with `azd auth login` or `az login`)');
      const init: RequestInit = {
        method,
        headers: { authorization: `Bearer ${token.token}`, 'content-type': 'application/json', ...headers },
        signal: AbortSignal.timeout(60_000),
      };
      if (body !== undefined) init.body = JSON.stringify(body);
      const response = await fetch(new URL(`/v1.0/${path}`, this.baseUrl), init);
      const parsed = await readJsonBody(response);
      const retryable = response.status === 429 || response.status === 503 || response.status === 504;
      if (!retryable || attempt >= this.maxAttempts) return { status: response.status, body: parsed };
      const after = Number(response.headers.get('retry-after'));
      await new Promise((r) => setTimeout(r, Number.isFinite(after) && after > 0 ? Math.min(after, 60) * 1000 : 1000 * attempt));
    }
  }
}

function describe(response: GraphResponse): string {
  const error = (response.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return `HTTP ${response.status}${typeof error?.code === 'string' ? ` ${error.code}` : ''}${typeof error?.message === 'string' ? `: ${error.message.slice(0, 300)}` : ''}`;
}

function expect(response: GraphResponse, ok: number[], what: string): void {
  if (ok.includes(response.status)) return;
  const hint =
    response.status === 401 || response.status === 403
      ? ' (the signed-in account needs the Application Administrator or Cloud Application Administrator role, or to own the app)'
      : '';
  throw new ConsoleRegistrationError(`${what} failed: ${describe(response)}${hint}`);
}

export interface ConsoleRegistrationOptions {
  /** Alternate key of the application, e.g. oath-console-<environment>. */
  uniqueName: string;
  displayName: string;
  /** The Function app's host name; its Easy Auth callback becomes a redirect URI. Unknown before the first provision. */
  hostName?: string;
  /** Groups (object ids) to assign each role. */
  helpdeskGroupId?: string;
  adminGroupId?: string;
  log?: (line: string) => void;
}

export interface ConsoleRegistration {
  /** The application (client) id App Service Authentication uses: CONSOLE_CLIENT_ID. */
  appId: string;
  servicePrincipalId: string;
  /** What this run changed, in words; empty when everything was already in place. */
  changes: string[];
}

interface AppRoleJson {
  id: string;
  value: string;
  displayName: string;
  description: string;
  allowedMemberTypes: string[];
  isEnabled: boolean;
}

interface ApplicationJson {
  id: string;
  appId: string;
  displayName: string;
  appRoles?: AppRoleJson[];
  web?: { redirectUris?: string[]; implicitGrantSettings?: { enableIdTokenIssuance?: boolean } };
  requiredResourceAccess?: { resourceAppId: string; resourceAccess: { id: string; type: string }[] }[];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function quoteKey(value: string): string {
  return value.replace(/'/g, "''");
}

/** The Easy Auth callback of the Function app (App Service Authentication's redirect URI for Entra ID). */
export function easyAuthCallback(hostName: string): string {
  return `https://${hostName}/.auth/login/aad/callback`;
}

export async function ensureConsoleRegistration(graph: GraphClient, options: ConsoleRegistrationOptions): Promise<ConsoleRegistration> {
  const log = options.log ?? (() => undefined);
  const changes: string[] = [];
  for (const [name, id] of [
    ['helpdesk group', options.helpdeskGroupId],
    ['admin group', options.adminGroupId],
  ] as const) {
    if (id && !GUID.test(id))
      throw new ConsoleRegistrationError(`the ${name} must be an object id (a GUID), got ${JSON.stringify(id.slice(0, 60))}`);
  }
  if (!/^[A-Za-z0-9._-]{1,120}$/.test(options.uniqueName))
    throw new ConsoleRegistrationError(
      `the unique name ${JSON.stringify(options.uniqueName)} may hold only letters, digits, '.', '_' and '-'`,
    );
  const appPath = `applications(uniqueName='${quoteKey(options.uniqueName)}')`;

  // 1. The application: create it, or bring what this project owns up to date without touching the rest.
  const found = await graph.request('GET', appPath);
  expect(found, [200, 404], `reading application ${options.uniqueName}`);
  const existing = found.status === 200 ? (found.body as ApplicationJson) : undefined;
  const patch: Record<string, unknown> = {};
  const roles = [...(existing?.appRoles ?? [])];
  for (const wanted of CONSOLE_APP_ROLES) {
    const have = roles.find((r) => r.id.toLowerCase() === wanted.id);
    if (have && have.value !== wanted.value) {
      throw new ConsoleRegistrationError(
        `app role ${wanted.id} of ${options.uniqueName} holds ${JSON.stringify(have.value)}, not ${wanted.value}; fix it in the Entra admin center (disable, then edit) and run again`,
      );
    }
    if (!have) {
      roles.push({ ...wanted, allowedMemberTypes: ['User'], isEnabled: true });
      changes.push(`app role ${wanted.value} added`);
    } else if (!have.isEnabled) {
      log(`app role ${wanted.value} is disabled in ${options.uniqueName}; left as someone set it`);
    }
  }
  if (!existing || roles.length !== (existing.appRoles ?? []).length) patch.appRoles = roles;
  const redirects = [...(existing?.web?.redirectUris ?? [])];
  const callback = options.hostName ? easyAuthCallback(options.hostName) : undefined;
  if (callback && !redirects.includes(callback)) {
    redirects.push(callback);
    changes.push(`redirect URI ${callback} added`);
  }
  const idTokens = existing?.web?.implicitGrantSettings?.enableIdTokenIssuance === true;
  if (!existing || redirects.length !== (existing.web?.redirectUris ?? []).length || !idTokens) {
    // Sign-in takes an ID token (form post): the app needs no client secret, so none exists to leak or rotate.
    patch.web = { redirectUris: redirects, implicitGrantSettings: { enableIdTokenIssuance: true } };
    if (existing && !idTokens) changes.push('ID tokens for sign-in enabled');
  }
  const access = [...(existing?.requiredResourceAccess ?? [])];
  const graphAccess = access.find((a) => a.resourceAppId === MICROSOFT_GRAPH_APP_ID);
  if (!graphAccess?.resourceAccess.some((r) => r.id === USER_READ_SCOPE_ID)) {
    if (graphAccess) graphAccess.resourceAccess = [...graphAccess.resourceAccess, { id: USER_READ_SCOPE_ID, type: 'Scope' }];
    else access.push({ resourceAppId: MICROSOFT_GRAPH_APP_ID, resourceAccess: [{ id: USER_READ_SCOPE_ID, type: 'Scope' }] });
    patch.requiredResourceAccess = access;
    if (existing) changes.push('Microsoft Graph User.Read requested');
  }
  if (!existing) {
    patch.displayName = options.displayName;
    patch.signInAudience = 'AzureADMyOrg';
  }
  let app = existing;
  if (Object.keys(patch).length > 0) {
    const upsert = await graph.request('PATCH', appPath, patch, { prefer: 'create-if-missing' });
    expect(upsert, [201, 204], `${existing ? 'updating' : 'creating'} application ${options.uniqueName}`);
    // 201 answers the new application; 204 (updated) answers nothing, and the ids did not change.
    if (upsert.status === 201) {
      app = upsert.body as ApplicationJson;
      changes.unshift(`application ${options.uniqueName} created`);
    }
  }
  if (!app) throw new ConsoleRegistrationError(`application ${options.uniqueName} was neither found nor created`);

  // 2. Its service principal (the "enterprise application"), where roles are assigned.
  const spFound = await graph.request('GET', `servicePrincipals(appId='${quoteKey(app.appId)}')`);
  expect(spFound, [200, 404], 'reading the service principal');
  let sp = spFound.status === 200 ? (spFound.body as { id: string; appRoleAssignmentRequired?: boolean }) : undefined;
  if (!sp) {
    const created = await graph.request('POST', 'servicePrincipals', { appId: app.appId, appRoleAssignmentRequired: true });
    expect(created, [201], 'creating the service principal');
    sp = created.body as { id: string; appRoleAssignmentRequired?: boolean };
    changes.push('service principal created (assignment required)');
  } else if (sp.appRoleAssignmentRequired !== true) {
    expect(
      await graph.request('PATCH', `servicePrincipals/${sp.id}`, { appRoleAssignmentRequired: true }),
      [204],
      'requiring role assignment',
    );
    changes.push('role assignment now required to sign in');
  }

  // 3. The groups, each with its role.
  const listed = await graph.request('GET', `servicePrincipals/${sp.id}/appRoleAssignedTo`);
  expect(listed, [200], 'listing role assignments');
  const assigned = ((listed.body as { value?: { principalId: string; appRoleId: string }[] }).value ?? []).map(
    (a) => `${a.principalId}/${a.appRoleId.toLowerCase()}`,
  );
  for (const [groupId, role] of [
    [options.helpdeskGroupId, CONSOLE_APP_ROLES[0]!],
    [options.adminGroupId, CONSOLE_APP_ROLES[1]!],
  ] as const) {
    if (!groupId || assigned.includes(`${groupId}/${role.id}`)) continue;
    const created = await graph.request('POST', `servicePrincipals/${sp.id}/appRoleAssignedTo`, {
      principalId: groupId,
      resourceId: sp.id,
      appRoleId: role.id,
    });
    expect(created, [201], `assigning ${role.value} to group ${groupId}`);
    changes.push(`${role.value} assigned to group ${groupId}`);
  }
  for (const change of changes) log(change);
  return { appId: app.appId, servicePrincipalId: sp.id, changes };
}

/** Settings of the hooks, from the azd environment. */
export function registrationFromEnvironment(
  env: NodeJS.ProcessEnv,
): ConsoleRegistrationOptions & { enabled: boolean; graphBaseUrl: string } {
  const environment = env['AZURE_ENV_NAME']?.trim();
  if (!environment) throw new ConsoleRegistrationError('AZURE_ENV_NAME is not set: run this through azd (azd hooks run preprovision)');
  const options: ConsoleRegistrationOptions & { enabled: boolean; graphBaseUrl: string } = {
    enabled: (env['CONSOLE_SIGN_IN'] ?? '').trim().toLowerCase() === 'true',
    graphBaseUrl: env['GRAPH_BASE_URL']?.trim() || 'https://graph.microsoft.com',
    uniqueName: `oath-console-${environment.toLowerCase()}`,
    displayName: `OATH token console (${environment})`,
  };
  const host = env['AZURE_FUNCTION_APP_HOST_NAME']?.trim();
  if (host) options.hostName = host;
  const helpdesk = env['CONSOLE_HELPDESK_GROUP_ID']?.trim();
  if (helpdesk) options.helpdeskGroupId = helpdesk;
  const admin = env['CONSOLE_ADMIN_GROUP_ID']?.trim();
  if (admin) options.adminGroupId = admin;
  return options;
}

runAsHook(import.meta.url, 'console sign-in', async () => {
  const settings = registrationFromEnvironment(process.env);
  if (!settings.enabled) {
    console.log(
      'console sign-in: CONSOLE_SIGN_IN is not true, so no app registration is made and the console answers that sign-in is not set up (README, "The console").',
    );
    return;
  }
  const graph = new GraphClient(settings.graphBaseUrl, hookCredential());
  const result = await ensureConsoleRegistration(graph, { ...settings, log: (line) => console.log(`console sign-in: ${line}`) });
  if (result.changes.length === 0) console.log(`console sign-in: app registration ${settings.uniqueName} is up to date`);
  if (process.env['CONSOLE_CLIENT_ID'] !== result.appId) {
    // The provision that follows passes it to Bicep (consoleClientId), which turns on App Service Authentication.
    const set = spawnSync('azd', ['env', 'set', 'CONSOLE_CLIENT_ID', result.appId], { stdio: 'inherit' });
    if (set.status !== 0)
      throw new ConsoleRegistrationError(
        `could not run \`azd env set CONSOLE_CLIENT_ID ${result.appId}\`; set it yourself, then run \`azd provision\``,
      );
    console.log(`console sign-in: CONSOLE_CLIENT_ID=${result.appId} (set in the azd environment)`);
  }
  if (!settings.hostName)
    console.log(
      'console sign-in: the Function app does not exist yet; its sign-in callback is added after provisioning (postprovision hook).',
    );
});
