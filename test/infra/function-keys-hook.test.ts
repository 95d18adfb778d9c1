// The postdeploy step that gives each group of callers its own per-function key, against a local stand-in
// for Azure Resource Manager (plain HTTP on a free port): which keys it makes, that it never rotates one,
// that it waits for the deployed functions, and that no key value leaks. Also: the key plan covers exactly
// the app's key-protected functions, and no function needs the master key.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/identity';
import {
  ensureFunctionKeys,
  FUNCTION_KEY_HOLDERS,
  FunctionKeysHookError,
  functionKeysTargetFromEnvironment,
  newFunctionKey,
} from '../../scripts/function-keys.js';
import { WEB_API_VERSION } from '../../scripts/azure-hook.js';
import { repoRoot } from './bicep-compiler.js';

const SITE = '/subscriptions/sub-1/resourceGroups/rg-ci/providers/Microsoft.Web/sites/func-abc123';
const EXISTING = 'existing-default-key-0123456789';

/** Behaviour knobs of the ARM stand-in, reset before each test. */
const arm = {
  /** Function name -> key name -> value; a function is missing until `appearAfter` listkeys calls. */
  keys: new Map<string, Map<string, string>>(),
  appearAfter: 0,
  listCalls: 0,
  putStatus: 200,
  requests: [] as { method: string; path: string }[],
};

function send(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function handle(request: IncomingMessage, response: ServerResponse) {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const url = new URL(request.url ?? '/', 'http://localhost');
  arm.requests.push({ method: request.method ?? '', path: url.pathname });
  if (request.headers.authorization !== 'Bearer test-token')
    return send(response, 401, { error: { code: 'AuthenticationFailed', message: 'no token' } });
  if (url.searchParams.get('api-version') !== WEB_API_VERSION)
    return send(response, 400, { error: { code: 'InvalidApiVersion', message: 'wrong api-version' } });
  const match = /^\/functions\/(\w+)\/(listkeys|keys\/(\w+))$/.exec(url.pathname.slice(SITE.length));
  if (!url.pathname.startsWith(SITE) || !match) return send(response, 404, { error: { code: 'NotFound', message: url.pathname } });
  const [, fn = '', action = '', keyName] = match;
  if (++arm.listCalls <= arm.appearAfter && action === 'listkeys')
    return send(response, 404, { error: { code: 'NotFound', message: `Function ${fn} not found` } });
  const keys = arm.keys.get(fn) ?? arm.keys.set(fn, new Map([['default', EXISTING]])).get(fn)!;
  if (request.method === 'POST' && action === 'listkeys') return send(response, 200, Object.fromEntries(keys));
  if (request.method === 'PUT' && keyName) {
    if (arm.putStatus !== 200) return send(response, arm.putStatus, { error: { code: 'Conflict', message: `cannot store ${text}` } });
    const body = JSON.parse(text) as { properties: { name: string; value: string } };
    assert.equal(body.properties.name, keyName);
    keys.set(keyName, body.properties.value);
    return send(response, 200, { properties: { name: keyName, value: body.properties.value } });
  }
  send(response, 405, { error: { code: 'MethodNotAllowed', message: request.method ?? '' } });
}

const credential: TokenCredential = {
  getToken: (): Promise<AccessToken> => Promise.resolve({ token: 'test-token', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

let server: Server;
let endpoint: string;

before(async () => {
  server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => send(response, 500, { error: { code: 'Test', message: String(error) } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
});

beforeEach(() => {
  arm.keys.clear();
  arm.appearAfter = 0;
  arm.listCalls = 0;
  arm.putStatus = 200;
  arm.requests = [];
});

const options = (log: string[]) => ({
  subscriptionId: 'sub-1',
  resourceGroup: 'rg-ci',
  functionAppName: 'func-abc123',
  armEndpoint: endpoint,
  credential,
  functionWait: { attempts: 5, delayMs: 5 },
  log: (line: string) => log.push(line),
});

/** Every function the app registers with app.http, and its auth level. */
function httpFunctions(): Map<string, string> {
  const found = new Map<string, string>();
  const dir = path.join(repoRoot, 'functions');
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.ts'))) {
    for (const m of readFileSync(path.join(dir, file), 'utf8').matchAll(/app\.http\('(\w+)', \{[^;]*?authLevel: '(\w+)'/g))
      found.set(m[1]!, m[2]!);
  }
  return found;
}

void describe('function keys (postdeploy hook)', () => {
  void test('the key plan covers exactly the key-protected functions; the helpdesk key opens verify only; nothing needs the master key', () => {
    const functions = httpFunctions();
    assert.ok(
      ['health', 'verifyActivationCode', 'unlockToken'].every((name) => functions.has(name)),
      `found ${[...functions.keys()].join(', ')}`,
    );
    const levels = new Set(functions.values());
    assert.ok(!levels.has('admin'), 'an admin-level function can only be called with the master key');
    // Anonymous: the health probe, and the console, which signs people in with Entra ID and checks their role itself.
    assert.deepEqual(
      [...functions]
        .filter(([, level]) => level === 'anonymous')
        .map(([name]) => name)
        .sort(),
      ['consoleApi', 'consolePages', 'health'],
    );
    for (const file of ['consoleApi.ts', 'consolePages.ts'])
      assert.match(readFileSync(path.join(repoRoot, 'functions', file), 'utf8'), /return serveConsole(Api|Page)\(/, file);
    const planned = FUNCTION_KEY_HOLDERS.flatMap((holder) => [...holder.functions]);
    assert.equal(new Set(planned).size, planned.length, "a function is in two holders' lists");
    assert.deepEqual(
      planned.sort(),
      [...functions]
        .filter(([, level]) => level === 'function')
        .map(([name]) => name)
        .sort(),
    );
    assert.deepEqual([...FUNCTION_KEY_HOLDERS.find((holder) => holder.keyName === 'helpdesk')!.functions], ['verifyActivationCode']);
  });

  void test("creates each holder's named key on each of its functions, with a fresh random value, and logs no value", async () => {
    const log: string[] = [];
    const created = await ensureFunctionKeys(options(log));
    const expected = FUNCTION_KEY_HOLDERS.flatMap((holder) => holder.functions.map((fn) => `${fn}/${holder.keyName}`));
    assert.deepEqual(created, expected);
    const values = new Set<string>();
    for (const holder of FUNCTION_KEY_HOLDERS) {
      for (const fn of holder.functions) {
        const keys = arm.keys.get(fn)!;
        assert.deepEqual([...keys.keys()].sort(), ['default', holder.keyName].sort(), fn);
        const value = keys.get(holder.keyName)!;
        assert.match(value, /^[A-Za-z0-9_-]{54}$/);
        values.add(value);
        assert.ok(!log.join('\n').includes(value), 'a key value was logged');
      }
    }
    assert.equal(values.size, expected.length, 'two functions got the same key value');
    assert.ok(!log.join('\n').includes(EXISTING));
    // No host-level key is touched: only per-function paths.
    assert.ok(arm.requests.every((r) => r.path.startsWith(`${SITE}/functions/`)));
  });

  void test('running it again rotates nothing', async () => {
    await ensureFunctionKeys(options([]));
    const before = JSON.stringify([...arm.keys].map(([fn, keys]) => [fn, [...keys]]));
    const again = await ensureFunctionKeys(options([]));
    assert.deepEqual(again, []);
    assert.equal(JSON.stringify([...arm.keys].map(([fn, keys]) => [fn, [...keys]])), before);
    assert.ok(arm.requests.slice(-FUNCTION_KEY_HOLDERS.flatMap((h) => h.functions).length).every((r) => r.method === 'POST'));
  });

  void test('waits while the just-deployed functions are not listed yet', async () => {
    arm.appearAfter = 3;
    const created = await ensureFunctionKeys(options([]));
    assert.equal(created.length, FUNCTION_KEY_HOLDERS.flatMap((h) => h.functions).length);
  });

  void test('fails clearly when a function never appears, and scrubs key values from errors', async () => {
    arm.appearAfter = 1000;
    await assert.rejects(ensureFunctionKeys(options([])), (error: Error) => {
      assert.ok(error instanceof FunctionKeysHookError);
      assert.match(error.message, /function verifyActivationCode is not there after 5 tries/);
      return true;
    });
    arm.appearAfter = 0;
    arm.putStatus = 409;
    await assert.rejects(ensureFunctionKeys(options([])), (error: Error) => {
      assert.match(error.message, /creating key helpdesk on function verifyActivationCode failed: HTTP 409/);
      assert.doesNotMatch(error.message, /"value":"[A-Za-z0-9_-]{20,}/);
      assert.match(error.message, /\*\*\*/);
      return true;
    });
  });

  void test('reads its target from the azd environment, naming what is missing', () => {
    assert.deepEqual(
      functionKeysTargetFromEnvironment({ AZURE_SUBSCRIPTION_ID: 's', AZURE_RESOURCE_GROUP: 'g', AZURE_FUNCTION_APP_NAME: 'f' }),
      {
        subscriptionId: 's',
        resourceGroup: 'g',
        functionAppName: 'f',
      },
    );
    assert.throws(
      () => functionKeysTargetFromEnvironment({ AZURE_SUBSCRIPTION_ID: 's', AZURE_RESOURCE_GROUP: 'g' }),
      /AZURE_FUNCTION_APP_NAME is not set/,
    );
  });

  void test('new keys are long random URL-safe strings', () => {
    const keys = new Set(Array.from({ length: 100 }, newFunctionKey));
    assert.equal(keys.size, 100);
    for (const key of keys) assert.match(key, /^[A-Za-z0-9_-]{54}$/);
  });
});
