/**
 * Who is calling the console, and what they may do.
 *
 * In Azure, App Service Authentication (Easy Auth) signs people in with Entra ID in front of the app and passes the
 * signed-in user to it in the `x-ms-client-principal` header: base64 JSON `{ auth_typ, claims: [{ typ, val }],
 * name_typ, role_typ }`, with one `roles` claim per app role the user holds. The platform removes that header from
 * incoming requests, so only it can set it, but only while the feature is on: the header is believed only when the
 * platform says so (`WEBSITE_AUTH_ENABLED=True`, which App Service sets for apps with authentication enabled; the
 * local host sets it when it plays that part). Without it, nobody is signed in and the console refuses everything.
 *
 * Two app roles: `Tokens.Helpdesk` looks tokens up and checks codes; `Tokens.Admin` does everything.
 */

export const APP_ROLES = { helpdesk: 'Tokens.Helpdesk', admin: 'Tokens.Admin' } as const;
export type AppRole = (typeof APP_ROLES)[keyof typeof APP_ROLES];

/** What the console lets people do, and the roles that may do each. Admin may do everything. */
export const PERMISSIONS = {
  /** Overview, token search, a token's page, batch reports. */
  view: [APP_ROLES.helpdesk, APP_ROLES.admin],
  checkCode: [APP_ROLES.helpdesk, APP_ROLES.admin],
  unlock: [APP_ROLES.admin],
  retire: [APP_ROLES.admin],
  reassign: [APP_ROLES.admin],
  /** Drop seed files and assignment lists; build now. */
  upload: [APP_ROLES.admin],
  /** Download an import CSV (it holds seeds) and confirm its upload to Entra. */
  imports: [APP_ROLES.admin],
  program: [APP_ROLES.admin],
} as const satisfies Record<string, readonly AppRole[]>;

export type Permission = keyof typeof PERMISSIONS;

export interface Principal {
  /** Entra object id (the `oid` claim), else the principal id header. */
  id: string;
  /** What to call them: their UPN or name. */
  name: string;
  identityProvider: string;
  /** The app roles of this project the user holds (others are ignored). */
  roles: AppRole[];
}

export const PRINCIPAL_HEADER = 'x-ms-client-principal';
/** The identity provider the local host's development sign-in names (dev/host/dev-sign-in.ts); pages then say so. */
export const DEVELOPMENT_IDP = 'development';
const ROLE_CLAIM_TYPES = ['roles', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'];
const NAME_CLAIM_TYPES = [
  'preferred_username',
  'name',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
];
const OBJECT_ID_CLAIM_TYPES = ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'];
/** A principal header is a few KB; anything far larger is not one. */
const MAX_PRINCIPAL_HEADER = 64 * 1024;

type Env = Record<string, string | undefined>;

/** True when the platform's authentication runs in front of the app, so principal headers come from it alone. */
export function platformAuthEnabled(env: Env = process.env): boolean {
  return (env.WEBSITE_AUTH_ENABLED ?? '').trim().toLowerCase() === 'true';
}

interface ClientPrincipalJson {
  auth_typ?: unknown;
  claims?: unknown;
  name_typ?: unknown;
  role_typ?: unknown;
}

/**
 * The signed-in user, from the request's headers; undefined when nobody is signed in (or the header cannot be
 * believed, or is not a principal).
 */
export function principalFromHeaders(headers: { get(name: string): string | null }, env: Env = process.env): Principal | undefined {
  if (!platformAuthEnabled(env)) return undefined;
  const encoded = headers.get(PRINCIPAL_HEADER);
  if (!encoded || encoded.length > MAX_PRINCIPAL_HEADER) return undefined;
  let decoded: ClientPrincipalJson;
  try {
    decoded = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as ClientPrincipalJson;
  } catch {
    return undefined;
  }
  if (typeof decoded !== 'object' || decoded === null || !Array.isArray(decoded.claims)) return undefined;
  const claims = decoded.claims.filter(
    (c): c is { typ: string; val: string } =>
      typeof (c as { typ?: unknown })?.typ === 'string' && typeof (c as { val?: unknown })?.val === 'string',
  );
  const roleTypes = new Set([...ROLE_CLAIM_TYPES, ...(typeof decoded.role_typ === 'string' ? [decoded.role_typ] : [])]);
  const known = new Set<string>(Object.values(APP_ROLES));
  const roles = [...new Set(claims.filter((c) => roleTypes.has(c.typ) && known.has(c.val)).map((c) => c.val as AppRole))];
  const claim = (types: readonly string[]) =>
    types.map((t) => claims.find((c) => c.typ === t)?.val).find((v) => v !== undefined && v !== '');
  const nameTypes = typeof decoded.name_typ === 'string' ? [decoded.name_typ, ...NAME_CLAIM_TYPES] : NAME_CLAIM_TYPES;
  const id = claim(OBJECT_ID_CLAIM_TYPES) ?? headers.get(`${PRINCIPAL_HEADER}-id`) ?? '';
  const name = claim(nameTypes) ?? headers.get(`${PRINCIPAL_HEADER}-name`) ?? id;
  if (id === '' && name === '') return undefined;
  const identityProvider = headers.get(`${PRINCIPAL_HEADER}-idp`) ?? (typeof decoded.auth_typ === 'string' ? decoded.auth_typ : '');
  return { id, name: name.slice(0, 256), identityProvider: identityProvider.slice(0, 64), roles };
}

export function can(principal: Principal | undefined, permission: Permission): boolean {
  const allowed: readonly AppRole[] = PERMISSIONS[permission];
  return principal !== undefined && principal.roles.some((role) => allowed.includes(role));
}

/** The role names that grant a permission, for messages ("needs Tokens.Admin"). */
export function rolesFor(permission: Permission): readonly AppRole[] {
  return PERMISSIONS[permission];
}
