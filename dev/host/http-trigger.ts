/**
 * HTTP triggers at `/<routePrefix>/<route>` (host.json `extensions.http.routePrefix`, "api" by default),
 * with the request fields the Functions host sends to the Node worker (RpcHttpData: method, url, headers, query, params,
 * body as bytes) and the response taken back from the returned RpcHttpData.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { FunctionDescription } from './core-module.js';
import type { RpcHttpCookie, RpcHttpData, RpcInvocationResponse, RpcNullableString, RpcTypedData } from './core-types.js';
import { compileRoute, type CompiledRoute } from './routes.js';
import { handleAuthPath, withPrincipalHeaders } from './dev-sign-in.js';

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export interface HttpRoute {
  fn: FunctionDescription;
  triggerName: string;
  route: CompiledRoute;
  methods: string[] | undefined;
  authLevel: AuthLevel;
  specificity: number;
}

export interface HttpAuthConfig {
  enforceAuth: boolean;
  /** Play App Service Authentication: development sign-in at /.auth/login/aad and principal headers (dev-sign-in.ts). */
  devSignIn?: boolean;
  masterKey?: string;
  functionKeys: Record<string, string>;
}

export type HttpInvoker = (route: HttpRoute, http: RpcHttpData) => Promise<RpcInvocationResponse>;

export function buildHttpRoutes(functions: Iterable<FunctionDescription>): HttpRoute[] {
  const routes: HttpRoute[] = [];
  for (const fn of functions) {
    for (const [triggerName, binding] of Object.entries(fn.metadata.bindings)) {
      if (binding.type?.toLowerCase() !== 'httptrigger') continue;
      const template = typeof binding.route === 'string' && binding.route !== '' ? binding.route : fn.metadata.name;
      const methods = Array.isArray(binding.methods) ? (binding.methods as string[]).map((m) => m.toUpperCase()) : undefined;
      const authLevel = (typeof binding.authLevel === 'string' ? binding.authLevel.toLowerCase() : 'function') as AuthLevel;
      const segments = template.split('/').filter((s) => s !== '');
      const literalSegments = segments.filter((s) => !s.includes('{')).length;
      const catchAll = template.includes('{*') ? 1 : 0;
      routes.push({
        fn,
        triggerName,
        route: compileRoute(template),
        methods,
        authLevel,
        // Literal segments beat parameters and catch-alls, as in ASP.NET routing.
        specificity: literalSegments * 10 - catchAll * 5 + segments.length,
      });
    }
  }
  return routes.sort((a, b) => b.specificity - a.specificity);
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function isAuthorized(level: AuthLevel, presented: string | undefined, auth: HttpAuthConfig): boolean {
  if (!auth.enforceAuth || level === 'anonymous') return true;
  if (!presented) return false;
  if (auth.masterKey && safeEqual(presented, auth.masterKey)) return true;
  if (level === 'admin') return false;
  return Object.values(auth.functionKeys).some((key) => key !== '' && safeEqual(presented, key));
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function toNullable(values: Record<string, string>): Record<string, RpcNullableString> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { value: v }]));
}

function typedDataToBuffer(data: RpcTypedData | null | undefined): Buffer | undefined {
  if (!data) return undefined;
  if (data.bytes) return Buffer.from(data.bytes);
  if (data.stream) return Buffer.from(data.stream);
  if (typeof data.string === 'string') return Buffer.from(data.string);
  if (typeof data.json === 'string') return Buffer.from(data.json);
  if (typeof data.int === 'number' || typeof data.double === 'number') return Buffer.from(String(data.int ?? data.double));
  return undefined;
}

function cookieHeader(cookie: RpcHttpCookie): string {
  let text = `${cookie.name ?? ''}=${cookie.value ?? ''}`;
  if (cookie.domain?.value) text += `; Domain=${cookie.domain.value}`;
  if (cookie.path?.value) text += `; Path=${cookie.path.value}`;
  const expires = cookie.expires?.value?.seconds;
  if (typeof expires === 'number') text += `; Expires=${new Date(expires * 1000).toUTCString()}`;
  if (typeof cookie.maxAge?.value === 'number') text += `; Max-Age=${cookie.maxAge.value}`;
  if (cookie.secure?.value) text += '; Secure';
  if (cookie.httpOnly?.value) text += '; HttpOnly';
  if (cookie.sameSite && cookie.sameSite !== 'none') {
    text += `; SameSite=${cookie.sameSite === 'explicitNone' ? 'None' : cookie.sameSite[0]!.toUpperCase() + cookie.sameSite.slice(1)}`;
  }
  return text;
}

function send(res: ServerResponse, status: number, headers: Record<string, string | string[]> = {}, body?: Buffer): void {
  res.writeHead(status, headers);
  res.end(body);
}

export interface HttpServerHooks {
  invoke: HttpInvoker;
  status: () => { state: string; functions: string[]; blobPolls: number };
  /** Local-only admin call: resolves when the host is idle (for tests driving a host in another process). */
  idle: () => Promise<void>;
}

/** `/api/items/1` -> `items/1` under prefix "api"; undefined when the path is outside the prefix. */
export function routePathUnder(prefix: string, path: string): string | undefined {
  if (prefix === '') return path.replace(/^\/+/, '');
  const base = `/${prefix}`.toLowerCase();
  const lower = path.toLowerCase();
  if (lower !== base && !lower.startsWith(base + '/')) return undefined;
  return path.slice(base.length).replace(/^\/+/, '');
}

/** Serves the registered HTTP functions under `routePrefix` (no slashes around it); not yet listening. */
export function createHttpServer(routes: HttpRoute[], auth: HttpAuthConfig, hooks: HttpServerHooks, routePrefix: string): Server {
  return createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500);
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = req.headers.host ?? 'localhost';
    const url = new URL(req.url ?? '/', `http://${host}`);
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname;

    if (path === '/' && method === 'GET') {
      send(res, 200, { 'content-type': 'text/plain; charset=utf-8' }, Buffer.from('Local Azure Functions host is running.\n'));
      return;
    }
    if (path.toLowerCase() === '/admin/host/status') {
      const presented = url.searchParams.get('code') ?? headerValue(req, 'x-functions-key');
      if (!isAuthorized('admin', presented, auth)) return send(res, 401);
      send(res, 200, { 'content-type': 'application/json; charset=utf-8' }, Buffer.from(JSON.stringify(hooks.status())));
      return;
    }

    if (path.toLowerCase() === '/admin/host/idle') {
      const presented = url.searchParams.get('code') ?? headerValue(req, 'x-functions-key');
      if (!isAuthorized('admin', presented, auth)) return send(res, 401);
      await hooks.idle();
      send(res, 200, { 'content-type': 'application/json; charset=utf-8' }, Buffer.from('{"idle":true}'));
      return;
    }

    if (auth.devSignIn && (await handleAuthPath(req, res, url))) return;

    const routePath = routePathUnder(routePrefix, path);
    if (routePath === undefined) return send(res, 404);
    let matched: { route: HttpRoute; params: Record<string, string> } | undefined;
    for (const route of routes) {
      const params = route.route.match(routePath);
      if (!params) continue;
      if (route.methods && !route.methods.includes(method)) continue;
      matched = { route, params };
      break;
    }
    if (!matched) return send(res, 404);

    const presented = url.searchParams.get('code') ?? headerValue(req, 'x-functions-key');
    if (!isAuthorized(matched.route.authLevel, presented, auth)) return send(res, 401);

    const body = await readBody(req);
    let headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      headers[key] = Array.isArray(value) ? value.join(', ') : value;
    }
    if (auth.devSignIn) headers = withPrincipalHeaders(req, headers);
    const query: Record<string, string> = {};
    for (const key of new Set(url.searchParams.keys())) {
      query[key] = url.searchParams.getAll(key).join(',');
    }
    const http: RpcHttpData = {
      method,
      url: url.toString(),
      headers,
      nullableHeaders: toNullable(headers),
      query,
      nullableQuery: toNullable(query),
      params: matched.params,
      nullableParams: toNullable(matched.params),
      body: body.length > 0 ? { bytes: body } : null,
      rawBody: body.length > 0 ? { bytes: body } : null,
    };

    let response: RpcInvocationResponse;
    try {
      response = await hooks.invoke(matched.route, http);
    } catch {
      // The invoker has logged the failure; like the host, the caller gets a bare 500.
      return send(res, 500);
    }
    const out = response.returnValue?.http ?? response.outputData?.find((o) => o.data?.http)?.data?.http;
    if (!out) return send(res, 204);
    const status = Number(out.statusCode ?? '200') || 200;
    const outHeaders: Record<string, string | string[]> = { ...(out.headers ?? {}) };
    const cookies = (out.cookies ?? []).map(cookieHeader);
    if (cookies.length > 0) outHeaders['set-cookie'] = cookies;
    const outBody = typedDataToBuffer(out.body);
    send(res, status, outHeaders, method === 'HEAD' ? undefined : outBody);
  }
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
