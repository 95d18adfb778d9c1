import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TransientError } from '../../shared/pipeline/errors.js';
import { escapeTableKey, unescapeTableKey } from '../../shared/azure/table-keys.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { SlidingWindowLimiter, withRetry } from '../../shared/pipeline/rate-limit.js';

describe('names derived from serials', () => {
  it('keeps simple serials readable and encodes the rest', () => {
    assert.equal(secretNameForSerial('60234567'), 'oath-60234567');
    assert.equal(secretNameForSerial('ab12'), 'oath-ab12');
    assert.equal(secretNameForSerial('AB12'), 'oath-x-41423132');
    assert.match(secretNameForSerial('x'.repeat(100) + 'Y'), /^oath-h-[0-9a-f]{64}$/);
  });

  it('is collision-free under Key Vault case-folding and stays inside its name rules', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ minLength: 1, maxLength: 40 }), (a, b) => {
        const na = secretNameForSerial(a);
        const nb = secretNameForSerial(b);
        assert.match(na, /^[0-9a-zA-Z-]{1,127}$/);
        if (a !== b) assert.notEqual(na.toLowerCase(), nb.toLowerCase());
      }),
    );
  });

  it('escapes the characters table keys forbid, reversibly', () => {
    assert.equal(escapeTableKey('a/b\\c#d?e%f'), 'a%2Fb%5Cc%23d%3Fe%25f');
    fc.assert(
      fc.property(fc.string(), (s) => {
        const k = escapeTableKey(s);
        // eslint-disable-next-line no-control-regex
        assert.doesNotMatch(k, /[/\\#?\u0000-\u001f\u007f-\u009f]/);
        assert.equal(unescapeTableKey(k), s);
      }),
    );
  });
});

describe('vault pacing', () => {
  it('spaces grants evenly across the window', async () => {
    let now = 0;
    const granted: number[] = [];
    const limiter = new SlidingWindowLimiter({
      budget: 4,
      windowMs: 1000,
      marginMs: 0,
      now: () => now,
      sleep: (ms) => ((now += ms), Promise.resolve()),
    });
    await Promise.all(Array.from({ length: 6 }, () => limiter.acquire().then(() => granted.push(now))));
    assert.deepEqual(granted, [0, 250, 500, 750, 1000, 1250]);
  });

  it('never grants more than the budget in any window', async () => {
    let now = 0;
    const granted: number[] = [];
    const limiter = new SlidingWindowLimiter({
      budget: 3,
      windowMs: 1000,
      marginMs: 0,
      smooth: false,
      now: () => now,
      sleep: (ms) => ((now += ms), Promise.resolve()),
    });
    await Promise.all(Array.from({ length: 10 }, () => limiter.acquire().then(() => granted.push(now))));
    assert.deepEqual(granted, [0, 0, 0, 1000, 1000, 1000, 2000, 2000, 2000, 3000]);
  });

  it('times a slot from the answer when done() is called, so late arrivals stay inside the window', async () => {
    let now = 0;
    const limiter = new SlidingWindowLimiter({
      budget: 2,
      windowMs: 1000,
      marginMs: 0,
      smooth: false,
      now: () => now,
      sleep: (ms) => ((now += ms), Promise.resolve()),
    });
    const done = await limiter.acquire();
    await limiter.acquire();
    now = 300;
    done();
    await limiter.acquire();
    assert.equal(now, 1300);
  });

  it('holds every grant back while paused after a 429', async () => {
    let now = 0;
    const limiter = new SlidingWindowLimiter({
      budget: 100,
      windowMs: 1000,
      marginMs: 0,
      smooth: false,
      now: () => now,
      sleep: (ms) => ((now += ms), Promise.resolve()),
    });
    await limiter.acquire();
    limiter.pauseFor(2000);
    await limiter.acquire();
    assert.equal(now, 2000);
  });

  it('retries transient errors with exponential backoff, not others', async () => {
    const delays: number[] = [];
    let calls = 0;
    const value = await withRetry(() => (++calls < 4 ? Promise.reject(new TransientError('busy', 429)) : Promise.resolve('ok')), {
      baseDelayMs: 100,
      sleep: (ms) => (delays.push(ms), Promise.resolve()),
    });
    assert.equal(value, 'ok');
    assert.equal(delays.length, 3);
    delays.forEach((d, i) => assert.ok(d >= 100 * 2 ** i * 0.75 && d <= 100 * 2 ** i * 1.25, `delay ${d}`));
    await assert.rejects(
      withRetry(() => Promise.reject(new Error('bad')), { sleep: () => Promise.resolve() }),
      /bad/,
    );
    await assert.rejects(
      withRetry(() => Promise.reject(new TransientError('busy', 503)), { maxAttempts: 2, sleep: () => Promise.resolve() }),
      TransientError,
    );
  });
});
