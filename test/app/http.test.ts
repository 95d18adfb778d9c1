/**
 * The HTTP module (shared/app/http.ts): request parsing, the status of every
 * problem code, the mapping of domain results to answers, and every route over
 * the real services on in-memory ports.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import functions, { type HttpResponseInit } from '@azure/functions';
import { services, type AppContext } from '../../shared/app/context.js';
import {
  errorResponse,
  guarded,
  importFileFromRoute,
  parseBuildRequest,
  parseInventoryQuery,
  parseRetireReason,
  PROBLEM_STATUS,
  readJsonBody,
  routes,
  serialFromRoute,
  unlockAnswer,
  verifyAnswer,
  type HttpProblemCode,
} from '../../shared/app/http.js';
import { ConfigError, loadConfig } from '../../shared/config.js';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';
import { PROBLEM_CODES } from '../../shared/core/problems.js';
import { totpCode } from '../../shared/core/totp.js';
import { TransientError } from '../../shared/pipeline/errors.js';
import { newTokenEntity } from '../../shared/pipeline/inventory.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import type { AssignmentEntity, Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import type { VerifyOutcome } from '../../shared/pipeline/verify.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';

// A CommonJS package whose classes only its default export carries under ESM.
const { HttpRequest, InvocationContext } = functions;

const body = (answer: HttpResponseInit) => answer.jsonBody as Record<string, unknown>;
const errorOf = (answer: HttpResponseInit) => body(answer).error as { code: string; message: string };

void describe('errorResponse', () => {
  // The documented status of each code the API answers with.
  const expected: Record<HttpProblemCode, number> = {
    REQUEST_INVALID: 400,
    SERIAL_MISSING: 400,
    SERIAL_INVALID: 400,
    FIELD_INVALID: 400,
    ASSIGNMENT_UPN_INVALID: 400,
    ASSIGNMENT_GUEST_UPN: 400,
    ENTRA_FORMULA_CELL: 400,
    TOKEN_ALREADY_EXISTS: 409,
    VAULT_SECRET_DELETED: 409,
    REQUEST_TOO_LARGE: 413,
    TOKEN_NOT_FOUND: 404,
    ASSIGNMENT_NOT_FOUND: 404,
    IMPORT_FILE_NOT_FOUND: 404,
    TOKEN_NOT_TOTP: 409,
    TOKEN_STATE_INVALID: 409,
    CODE_REPLAYED: 409,
    TOKEN_RETIRED: 410,
    TOKEN_LOCKED: 423,
    CONFIG_INVALID: 500,
    INTERNAL_ERROR: 500,
    IMPORT_CONFIRM_INCOMPLETE: 503,
    GRAPH_ACTIVATE_FROM_SEED_OFF: 403,
    GRAPH_REFUSED: 502,
    GRAPH_UNAVAILABLE: 503,
  };

  void it('answers each problem code with its status and exactly { error: { code, message } }', () => {
    assert.deepEqual(Object.keys(PROBLEM_STATUS).sort(), Object.keys(expected).sort());
    for (const [code, status] of Object.entries(expected) as [HttpProblemCode, number][]) {
      assert.ok(Object.hasOwn(PROBLEM_CODES, code), `${code} is in the one list`);
      const answer = errorResponse(code, `about ${code}`);
      assert.equal(answer.status, status, code);
      assert.deepEqual(answer.jsonBody, { error: { code, message: `about ${code}` } });
      assert.equal((answer.headers as Record<string, string>)['cache-control'], 'no-store');
    }
  });

  void it("defaults the message to the code's hint, and keeps extra fields beside the error", () => {
    assert.deepEqual(errorResponse('TOKEN_LOCKED', undefined, { extra: { lockedUntil: null } }).jsonBody, {
      error: { code: 'TOKEN_LOCKED', message: PROBLEM_CODES.TOKEN_LOCKED },
      lockedUntil: null,
    });
    const withHeader = errorResponse('IMPORT_CONFIRM_INCOMPLETE', 'm', { headers: { 'retry-after': '5' } });
    assert.deepEqual(withHeader.headers, { 'cache-control': 'no-store', 'retry-after': '5' });
  });

  void it('answers 503 instead of 500 only for an internal error of an unavailable backing service', () => {
    assert.equal(errorResponse('INTERNAL_ERROR', 'm', { unavailable: true }).status, 503);
    assert.equal(errorResponse('TOKEN_NOT_FOUND', 'm', { unavailable: true }).status, 404);
  });
});

void describe('guarded', () => {
  const context = () => {
    const logged: unknown[][] = [];
    return {
      logged,
      context: new InvocationContext({
        functionName: 'verifyActivationCode',
        logHandler: (level, ...args) => logged.push([level, ...args]),
      }),
    };
  };

  void it('turns unexpected failures into 500 / 503 with a stable code and no internals', async () => {
    const internal = 'SDK said: body {"code":"123456"} at https://vault.example/secrets/oath-x';
    const failing = context();
    const failed = await guarded(failing.context, () => Promise.reject(new Error(internal)));
    assert.equal(failed.status, 500);
    assert.equal(errorOf(failed).code, 'INTERNAL_ERROR');
    const busy = await guarded(context().context, () => Promise.reject(new TransientError(internal, 503)));
    assert.equal(busy.status, 503);
    assert.equal(errorOf(busy).code, 'INTERNAL_ERROR');
    const misconfigured = await guarded(context().context, () => Promise.reject(new ConfigError('KEY_VAULT_URL', 'is required')));
    assert.deepEqual([misconfigured.status, errorOf(misconfigured).code], [500, 'CONFIG_INVALID']);
    for (const answer of [failed, busy]) assert.ok(!JSON.stringify(answer.jsonBody).includes('123456'));
    assert.ok(!JSON.stringify(failing.logged).includes('123456'), 'only the error class is logged');
    assert.deepEqual(await guarded(context().context, () => Promise.resolve({ status: 204 })), { status: 204 });
  });
});

void describe('request parsing', () => {
  void it('takes a serial from the route, refusing one no token can have with 400 before anything else', () => {
    assert.deepEqual(serialFromRoute({ params: { serial: 'TK-0001' } }), { ok: true, value: 'TK-0001' });
    assert.deepEqual(serialFromRoute({ params: { serial: 'S'.repeat(128) } }), { ok: true, value: 'S'.repeat(128) });
    for (const [serial, code] of [
      ['', 'SERIAL_MISSING'],
      ['S'.repeat(129), 'SERIAL_INVALID'],
      ['AB\u200bC1', 'SERIAL_INVALID'],
      ['AB\u0001C1', 'SERIAL_INVALID'],
    ] as const) {
      const parsed = serialFromRoute({ params: { serial } });
      assert.ok(!parsed.ok, JSON.stringify(serial));
      assert.equal(parsed.answer.status, 400);
      assert.equal(errorOf(parsed.answer).code, code);
      assert.match(errorOf(parsed.answer).message, /serial/i);
    }
  });

  void it('takes an import file name from the route', () => {
    assert.deepEqual(importFileFromRoute({ params: { file: 'entra-oath-20261129T100000Z-0123456789ab.csv' } }), {
      ok: true,
      value: 'entra-oath-20261129T100000Z-0123456789ab.csv',
    });
    for (const file of ['', '../x.csv', 'a b.csv', 'x'.repeat(201)]) {
      const parsed = importFileFromRoute({ params: { file } });
      assert.ok(!parsed.ok && parsed.answer.status === 400 && errorOf(parsed.answer).code === 'REQUEST_INVALID', file);
    }
  });

  void it('reads a JSON body: empty is undefined, anything unparsable is refused', async () => {
    const text = (t: string) => ({ text: () => Promise.resolve(t) });
    assert.deepEqual(await readJsonBody(text('')), { ok: true, value: undefined });
    assert.deepEqual(await readJsonBody(text('  \n')), { ok: true, value: undefined });
    assert.deepEqual(await readJsonBody(text('{"a":1}')), { ok: true, value: { a: 1 } });
    assert.deepEqual(await readJsonBody(text('{"a":')), { ok: false });
  });

  void it('parses the build body: empty, {} or a list of serials', () => {
    assert.deepEqual(parseBuildRequest(undefined), {});
    assert.deepEqual(parseBuildRequest(null), {});
    assert.deepEqual(parseBuildRequest({}), {});
    assert.deepEqual(parseBuildRequest({ reexport: ['A', 'B'] }), { reexport: ['A', 'B'] });
    for (const bad of [
      [],
      'x',
      1,
      { reexport: 'A' },
      { reexport: [''] },
      { reexport: [1] },
      { reexport: ['S'.repeat(129)] },
      { reexport: Array(1001).fill('A') },
      { other: 1 },
    ]) {
      assert.equal(parseBuildRequest(bad), undefined, JSON.stringify(bad).slice(0, 40));
    }
  });

  void it('reads a retire reason, cut to 200 characters; anything else is no reason', () => {
    assert.equal(parseRetireReason({ reason: 'lost' }), 'lost');
    assert.equal(parseRetireReason({ reason: 'r'.repeat(300) }), 'r'.repeat(200));
    for (const other of [undefined, null, 'lost', { reason: 1 }, {}]) assert.equal(parseRetireReason(other), '');
  });

  void it('parses the inventory query string', () => {
    const parse = (q: string) => parseInventoryQuery(new URLSearchParams(q));
    assert.deepEqual(parse(''), { ok: true, value: { pageSize: 100 } });
    const token = Buffer.from('TK-0002', 'utf8').toString('base64url');
    assert.deepEqual(parse(`state=stored&batch=b1&pageSize=2&continuationToken=${token}`), {
      ok: true,
      value: { state: 'stored', batch: 'b1', pageSize: 2, after: 'TK-0002' },
    });
    for (const [q, message] of [
      ['state=bogus', 'state must be one of stored, exporting, exported, imported, importFailed, assigned, activated, retired.'],
      ['state=', 'state must be one of stored, exporting, exported, imported, importFailed, assigned, activated, retired.'],
      ['pageSize=0', 'pageSize must be a whole number from 1 to 1000.'],
      ['pageSize=1001', 'pageSize must be a whole number from 1 to 1000.'],
      ['pageSize=1.5', 'pageSize must be a whole number from 1 to 1000.'],
      ['pageSize=ten', 'pageSize must be a whole number from 1 to 1000.'],
      ['continuationToken=', 'continuationToken is not valid.'],
    ]) {
      const parsed = parse(q!);
      assert.ok(!parsed.ok, q);
      assert.equal(parsed.answer.status, 400);
      assert.deepEqual(parsed.answer.jsonBody, { error: { code: 'REQUEST_INVALID', message } });
    }
  });
});

void describe('verify and unlock answers', () => {
  const checkedAt = '2026-11-29T10:00:00.000Z';
  const answer = (outcome: VerifyOutcome) => {
    const a = verifyAnswer(outcome);
    return [a.status, a.jsonBody] as const;
  };
  const result = {
    serial: 'S1',
    valid: false,
    confirmationRequired: false,
    driftSeconds: null,
    withinSignInWindow: false,
    withinActivationWindow: false,
    checkedAt,
  };

  void it('maps an acceptance to 200 with the drift', () => {
    assert.deepEqual(answer({ status: 'accepted', serial: 'S1', driftSeconds: -30, withinSignInWindow: true, checkedAt }), [
      200,
      { ...result, valid: true, driftSeconds: -30, withinSignInWindow: true, withinActivationWindow: true },
    ]);
  });

  void it('maps a wrong code to 200 with the attempts left, and the lock it set', () => {
    assert.deepEqual(answer({ status: 'rejected', serial: 'S1', reason: 'wrong', attemptsLeft: 2, lock: null, checkedAt }), [
      200,
      { ...result, attemptsLeft: 2 },
    ]);
    const until = '2026-11-29T10:15:00.000Z';
    assert.deepEqual(answer({ status: 'rejected', serial: 'S1', reason: 'wrong', attemptsLeft: 0, lock: { until }, checkedAt }), [
      200,
      { ...result, attemptsLeft: 0, lockedUntil: until },
    ]);
    assert.deepEqual(answer({ status: 'rejected', serial: 'S1', reason: 'wrong', attemptsLeft: 0, lock: { until: null }, checkedAt }), [
      200,
      { ...result, attemptsLeft: 0, lockedUntil: null },
    ]);
  });

  void it('maps an unconfirmed match to 200 confirmationRequired, with no drift and no count', () => {
    assert.deepEqual(
      answer({ status: 'rejected', serial: 'S1', reason: 'confirmation-required', attemptsLeft: 9, lock: null, checkedAt }),
      [200, { ...result, confirmationRequired: true, withinActivationWindow: true }],
    );
  });

  void it('maps a replay to 409 CODE_REPLAYED with the attempts left, and a lock to 423 with its end', () => {
    assert.deepEqual(answer({ status: 'rejected', serial: 'S1', reason: 'replayed', attemptsLeft: 4, lock: null, checkedAt }), [
      409,
      { error: { code: 'CODE_REPLAYED', message: PROBLEM_CODES.CODE_REPLAYED }, attemptsLeft: 4 },
    ]);
    assert.deepEqual(answer({ status: 'locked', serial: 'S1', lockedUntil: '2026-11-29T10:15:00.000Z' }), [
      423,
      { error: { code: 'TOKEN_LOCKED', message: PROBLEM_CODES.TOKEN_LOCKED }, lockedUntil: '2026-11-29T10:15:00.000Z' },
    ]);
  });

  void it('maps the refusals to their codes', () => {
    assert.deepEqual(answer({ status: 'request-invalid', serial: 'S1', reason: 'why' }), [
      400,
      { error: { code: 'REQUEST_INVALID', message: 'why' } },
    ]);
    assert.deepEqual(answer({ status: 'not-found', serial: 'S1' }), [
      404,
      { error: { code: 'TOKEN_NOT_FOUND', message: PROBLEM_CODES.TOKEN_NOT_FOUND } },
    ]);
    assert.deepEqual(answer({ status: 'retired', serial: 'S1' }), [
      410,
      { error: { code: 'TOKEN_RETIRED', message: PROBLEM_CODES.TOKEN_RETIRED } },
    ]);
    assert.deepEqual(answer({ status: 'not-totp', serial: 'S1' }), [
      409,
      { error: { code: 'TOKEN_NOT_TOTP', message: PROBLEM_CODES.TOKEN_NOT_TOTP } },
    ]);
    assert.deepEqual(unlockAnswer({ status: 'unlocked', serial: 'S1', wasLocked: true }).jsonBody, {
      serial: 'S1',
      unlocked: true,
      wasLocked: true,
    });
    assert.equal(unlockAnswer({ status: 'not-found', serial: 'S1' }).status, 404);
    assert.equal(unlockAnswer({ status: 'retired', serial: 'S1' }).status, 410);
  });
});

const SEED = Buffer.from('0123456789abcdef0123', 'utf8');

/** The real services over in-memory ports, as the functions get them from services(). */
function app() {
  const clock = new ManualClock('2026-11-29T10:00:10Z');
  const secrets = new MemorySecretStore();
  const tokens = new MemoryTable<TokenEntity>();
  const assignments = new MemoryTable<AssignmentEntity>();
  const blobs = new MemoryBlobStore(clock);
  const ctx: AppContext = {
    config: loadConfig({
      PipelineStorage: 'UseDevelopmentStorage=true',
      KEY_VAULT_URL: 'https://example.vault.azure.net',
      VERIFY_LOCKOUT_LIMIT: '3',
      VERIFY_LOCKOUT_MINUTES: '15',
    }),
    blobs,
    vault: new PacedVault(secrets, { createBudget: 300, readBudget: 4000, retry: { baseDelayMs: 1 } }),
    tokens,
    assignments,
    clock,
  };
  const lines: string[] = [];
  const log: Logger = {
    info: (m, d) => lines.push(`${m} ${JSON.stringify(d)}`),
    warn: (m, d) => lines.push(`${m} ${JSON.stringify(d)}`),
    error: (m, d) => lines.push(`${m} ${JSON.stringify(d)}`),
  };
  const svc = services(ctx, log);
  const addToken = async (serial: string, extra: Partial<TokenEntity> = {}) => {
    const name = secretNameForSerial(serial);
    const { version } = await secrets.set(name, toCanonicalBase32(SEED), { contentType: 'application/x-oath-seed', tags: { serial } });
    const entity: TokenEntity = newTokenEntity(
      { serial, manufacturer: 'Token2', model: 'C202', type: 'totp', algorithm: 'SHA1', digits: 6, period: 30, secret: SEED, line: 2 },
      name,
      version,
      'seeds/b.csv@"0x1"',
      clock.now().toISOString(),
    );
    await tokens.insert(serial, Object.assign(entity, extra));
  };
  const call = async (
    route: keyof typeof routes,
    init: { params?: Record<string, string>; query?: Record<string, string>; body?: unknown },
  ) => {
    const request = new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/x',
      params: init.params ?? {},
      query: init.query ?? {},
      ...(init.body === undefined ? {} : { body: { string: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } }),
    });
    const answer = await routes[route](request, svc);
    return { status: answer.status, body: answer.jsonBody as Record<string, unknown>, headers: answer.headers as Record<string, string> };
  };
  const code = (offsetSeconds = 0) =>
    totpCode({ secret: SEED, algorithm: 'SHA1', digits: 6, period: 30 }, Math.floor(clock.now().getTime() / 1000) + offsetSeconds);
  return { ctx, clock, tokens, assignments, blobs, secrets, lines, svc, addToken, call, code };
}

/** A 6-digit code no step within a day of now shows for SEED: wrong for certain. */
function provenWrong(code: (offset: number) => string, skip = 0): string {
  const window = new Set<string>();
  for (let step = -2881; step <= 2881; step++) window.add(code(step * 30));
  let found = 0;
  for (let n = 0; ; n++) {
    const candidate = String(n).padStart(6, '0');
    if (!window.has(candidate) && found++ === skip) return candidate;
  }
}

void describe('routes over the services', () => {
  void it('verify: counts down the attempts, says until when a lock lasts, and refuses a malformed body before any check', async () => {
    const a = app();
    await a.addToken('TK-1');
    const accepted = await a.call('verifyActivationCode', { params: { serial: 'TK-1' }, body: { code: a.code() } });
    assert.deepEqual([accepted.status, accepted.body.valid, accepted.body.driftSeconds], [200, true, 0]);
    const left: unknown[] = [];
    for (let i = 0; i < 3; i++)
      left.push(
        (await a.call('verifyActivationCode', { params: { serial: 'TK-1' }, body: { code: provenWrong(a.code, i) } })).body.attemptsLeft,
      );
    assert.deepEqual(left, [2, 1, 0]);
    const until = '2026-11-29T10:15:10.000Z';
    assert.equal((await a.tokens.get('TK-1'))!.value.lockedUntil, until);
    const locked = await a.call('verifyActivationCode', { params: { serial: 'TK-1' }, body: { code: a.code(30) } });
    assert.deepEqual(
      [locked.status, locked.body],
      [423, { error: { code: 'TOKEN_LOCKED', message: PROBLEM_CODES.TOKEN_LOCKED }, lockedUntil: until }],
    );

    const notJson = await a.call('verifyActivationCode', { params: { serial: 'TK-1' }, body: '{"code":' });
    assert.deepEqual([notJson.status, (notJson.body.error as { code: string }).code], [400, 'REQUEST_INVALID']);
    const misspelt = await a.call('verifyActivationCode', { params: { serial: 'TK-1' }, body: { code: '123456', next_code: '654321' } });
    assert.equal(misspelt.status, 400);
    assert.match((misspelt.body.error as { message: string }).message, /next_code/);
    assert.equal((await a.call('verifyActivationCode', { params: { serial: 'NOPE' }, body: { code: '123456' } })).status, 404);
    assert.ok(
      a.lines.some((l) => l.startsWith('verify ') && l.includes('"request-invalid"')),
      'a malformed body is logged like any refused check',
    );

    const unlocked = await a.call('unlockToken', { params: { serial: 'TK-1' } });
    assert.deepEqual([unlocked.status, unlocked.body], [200, { serial: 'TK-1', unlocked: true, wasLocked: true }]);
    assert.equal((await a.call('unlockToken', { params: { serial: 'NOPE' } })).status, 404);
  });

  void it('tokens: one, a page, and retiring one', async () => {
    const a = app();
    for (const serial of ['TK-3', 'TK-1', 'TK-2']) await a.addToken(serial);
    const one = await a.call('getToken', { params: { serial: 'TK-2' } });
    assert.deepEqual([one.status, one.body.serial, one.body.state], [200, 'TK-2', 'stored']);
    assert.ok(!JSON.stringify(one.body).includes(toCanonicalBase32(SEED).slice(0, 12)), 'no secret');
    assert.deepEqual((await a.call('getToken', { params: { serial: 'NOPE' } })).body, {
      error: { code: 'TOKEN_NOT_FOUND', message: 'No token has serial "NOPE".' },
    });

    const first = await a.call('listTokens', { query: { pageSize: '2' } });
    assert.deepEqual(
      (first.body.items as { serial: string }[]).map((t) => t.serial),
      ['TK-1', 'TK-2'],
    );
    const second = await a.call('listTokens', { query: { pageSize: '2', continuationToken: first.body.continuationToken as string } });
    assert.deepEqual([(second.body.items as { serial: string }[]).map((t) => t.serial), second.body.continuationToken], [['TK-3'], null]);
    assert.equal((await a.call('listTokens', { query: { state: 'bogus' } })).status, 400);

    const remindEntra =
      'If the token was imported into Entra ID, delete it there too (Entra ID > Authentication methods > Hardware OATH tokens).';
    const retired = await a.call('retireToken', { params: { serial: 'TK-1' }, body: { reason: 'lost' } });
    assert.deepEqual(
      [retired.status, retired.body],
      [
        200,
        {
          serial: 'TK-1',
          state: 'retired',
          changed: true,
          previousState: 'stored',
          secretDisabled: true,
          withdrawnFile: null,
          next: 'Nothing else to do.',
        },
      ],
    );
    // Issue 20: a retired token's seed is no longer readable (the version is disabled, not deleted).
    assert.deepEqual(
      a.secrets.history(secretNameForSerial('TK-1')).map((v) => v.enabled),
      [false],
    );
    assert.equal(await a.ctx.vault.get(secretNameForSerial('TK-1')), undefined);
    assert.deepEqual((await a.call('retireToken', { params: { serial: 'TK-1' }, body: 'not json' })).body, {
      serial: 'TK-1',
      state: 'retired',
      changed: false,
      previousState: 'retired',
      secretDisabled: true,
      withdrawnFile: null,
      next: remindEntra,
    });
    assert.equal((await a.call('retireToken', { params: { serial: 'NOPE' } })).status, 404);
    await a.addToken('TK-4', { state: 'exporting' });
    const busy = await a.call('retireToken', { params: { serial: 'TK-4' } });
    assert.deepEqual([busy.status, (busy.body.error as { code: string }).code], [409, 'TOKEN_STATE_INVALID']);
    assert.deepEqual((await a.call('listTokens', { query: { state: 'retired' } })).body.items, [
      (await a.call('getToken', { params: { serial: 'TK-1' } })).body,
    ]);
  });

  void it('audit: where each secret of a batch is (vault, version, enabled) and its state, never a value', async () => {
    const a = app();
    for (const serial of ['TK-2', 'TK-1', 'TK-3']) await a.addToken(serial);
    await a.call('retireToken', { params: { serial: 'TK-2' } });
    const audit = await a.call('auditSecrets', { query: { batch: 'seeds/b.csv@"0x1"' } });
    const row = (serial: string, state: string, enabled: boolean) => {
      const name = secretNameForSerial(serial);
      return { serial, state, secretName: name, secretVersion: a.secrets.history(name)[0]!.version, enabled, otherEnabledVersions: 0 };
    };
    assert.deepEqual(
      [audit.status, audit.body],
      [
        200,
        {
          batch: 'seeds/b.csv@"0x1"',
          vault: 'example.vault.azure.net',
          tokens: [row('TK-1', 'stored', true), row('TK-2', 'retired', false), row('TK-3', 'stored', true)],
        },
      ],
    );
    assert.ok(!JSON.stringify(audit.body).includes(toCanonicalBase32(SEED).slice(0, 12)), 'no secret');
    assert.deepEqual((await a.call('auditSecrets', { query: { batch: 'nothing' } })).body.tokens, []);
    assert.equal((await a.call('auditSecrets', { query: {} })).status, 400);
  });

  void it('imports: build, and confirming an upload (not found, incomplete with retry-after, done)', async () => {
    const a = app();
    assert.equal((await a.call('buildImport', { body: { reexport: 'TK-1' } })).status, 400);
    const built = await a.call('buildImport', {});
    assert.equal(built.status, 200);
    assert.deepEqual(Object.keys(built.body).sort(), ['build', 'exported', 'files', 'notExported', 'report']);

    assert.equal((await a.call('confirmImportUploaded', { params: { file: '../etc' } })).status, 400);
    const missing = await a.call('confirmImportUploaded', { params: { file: 'entra-oath-x.csv' } });
    assert.deepEqual([missing.status, (missing.body.error as { code: string }).code], [404, 'IMPORT_FILE_NOT_FOUND']);

    await a.addToken('TK-1', { state: 'exported', exportFile: 'entra-oath-x.csv', upn: 'a@contoso.com' });
    await a.blobs.write('imports', 'entra-oath-x.csv', 'upn,serial number\n');
    const replace = a.tokens.replace.bind(a.tokens);
    a.tokens.replace = () => Promise.reject(new Error('table storage failed'));
    const incomplete = await a.call('confirmImportUploaded', { params: { file: 'entra-oath-x.csv' } });
    assert.deepEqual(
      [incomplete.status, (incomplete.body.error as { code: string }).code, incomplete.headers['retry-after']],
      [503, 'IMPORT_CONFIRM_INCOMPLETE', '5'],
    );
    a.tokens.replace = replace;
    const done = await a.call('confirmImportUploaded', { params: { file: 'entra-oath-x.csv' } });
    assert.deepEqual([done.status, done.body], [200, { file: 'entra-oath-x.csv', deleted: true, imported: ['TK-1'] }]);
  });

  void it("assignments: deleting one (not found, refused once imported, an exported token's file withdrawn, done)", async () => {
    const a = app();
    assert.equal((await a.call('deleteAssignment', { params: { serial: 'TK-1' } })).status, 404);
    await a.assignments.insert('TK-1', {
      serial: 'TK-1',
      upn: 'a@contoso.com',
      sourceFile: 'a.csv',
      line: 2,
      createdAt: '2026-11-29T10:00:00Z',
    });
    await a.addToken('TK-1', { state: 'imported', exportFile: 'entra-oath-x.csv', upn: 'a@contoso.com' });
    const refused = await a.call('deleteAssignment', { params: { serial: 'TK-1' } });
    assert.deepEqual([refused.status, (refused.body.error as { code: string }).code], [409, 'TOKEN_STATE_INVALID']);
    assert.match((refused.body.error as { message: string }).message, /removed-from-entra/);
    const row = (await a.tokens.get('TK-1'))!;
    await a.tokens.replace('TK-1', { ...row.value, state: 'exported' }, row.etag);
    await a.blobs.write('imports', 'entra-oath-x.csv', 'upn,serial number\n');
    const deleted = await a.call('deleteAssignment', { params: { serial: 'TK-1' } });
    assert.deepEqual([deleted.status, deleted.body.status, deleted.body.withdrawnFile], [200, 'deleted', 'entra-oath-x.csv']);
    assert.equal(await a.blobs.properties('imports', 'entra-oath-x.csv'), undefined);
    assert.equal((await a.tokens.get('TK-1'))!.value.state, 'stored');
    assert.equal(await a.assignments.get('TK-1'), undefined);
  });

  void it('retiring a token listed in a waiting import file takes it out of every file (issue 19)', async () => {
    const a = app();
    await a.addToken('TK-1');
    await a.addToken('TK-2');
    for (const [serial, upn] of [
      ['TK-1', 'a@contoso.com'],
      ['TK-2', 'b@contoso.com'],
    ])
      await a.assignments.insert(serial!, { serial: serial!, upn: upn!, sourceFile: 'a.csv', line: 2, createdAt: '2026-11-29T10:00:00Z' });
    const built = await a.call('buildImport', {});
    assert.equal((built.body.files as string[]).length, 1);
    const retired = await a.call('retireToken', { params: { serial: 'TK-1' }, body: { reason: 'lost' } });
    assert.equal(retired.status, 200);
    const listing: string[] = [];
    for await (const b of a.blobs.list('imports')) listing.push(new TextDecoder().decode((await a.blobs.read('imports', b.name))!.bytes));
    assert.equal(listing.length, 1, 'the other token is listed in a file again');
    assert.ok(
      listing.every((csv) => !csv.includes('TK-1')),
      'no import file lists the retired token',
    );
    assert.ok(listing[0]!.includes('TK-2'));
  });

  void it('health: 200 with the report when every check passes', async () => {
    const a = app();
    const health = await a.call('health', {});
    assert.deepEqual(
      [health.status, health.body.status, health.body.checks],
      [200, 'ok', { storage: 'ok', tokensTable: 'ok', keyVault: 'ok' }],
    );
  });

  void it('every {serial} route refuses a serial no token can have with 400 SERIAL_INVALID', async () => {
    const a = app();
    for (const route of ['verifyActivationCode', 'unlockToken', 'retireToken', 'getToken', 'deleteAssignment'] as const) {
      const answer = await a.call(route, { params: { serial: 'AB\u202eC1' }, body: { code: '123456' } });
      assert.deepEqual(
        [answer.status, Object.keys(answer.body), (answer.body.error as { code: string }).code],
        [400, ['error'], 'SERIAL_INVALID'],
        route,
      );
    }
  });
});
