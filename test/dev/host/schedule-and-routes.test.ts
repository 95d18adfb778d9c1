/**
 * Pure parts of the local host: NCRONTAB schedules, HTTP route templates,
 * blob path patterns and app settings.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSchedule } from '../../../dev/host/ncrontab.js';
import { compileRoute } from '../../../dev/host/routes.js';
import { compileBlobPath } from '../../../dev/host/blob-trigger.js';
import { readLocalSettings, resolveAppSettingExpressions, resolveStorageConnection } from '../../../dev/host/settings.js';

const at = (iso: string): Date => new Date(iso);

void describe('NCRONTAB schedules', () => {
  void it('finds the next occurrence of 6-field expressions in UTC', () => {
    assert.equal(parseSchedule('*/5 * * * * *').next(at('2026-03-01T10:00:03.500Z')).toISOString(), '2026-03-01T10:00:05.000Z');
    assert.equal(parseSchedule('0 */5 * * * *').next(at('2026-03-01T10:00:00Z')).toISOString(), '2026-03-01T10:05:00.000Z');
    assert.equal(parseSchedule('0 30 9 * * 1-5').next(at('2026-02-27T10:00:00Z')).toISOString(), '2026-03-02T09:30:00.000Z');
    assert.equal(parseSchedule('0 0 0 1 Jan *').next(at('2026-03-01T00:00:00Z')).toISOString(), '2027-01-01T00:00:00.000Z');
    assert.equal(parseSchedule('0 0 12 * * Sun').next(at('2026-03-02T00:00:00Z')).getUTCDay(), 0);
    assert.equal(parseSchedule('0 0 12 * * 7').next(at('2026-03-02T00:00:00Z')).getUTCDay(), 0);
    assert.equal(parseSchedule('15,45 * * * * *').next(at('2026-03-01T10:00:20Z')).toISOString(), '2026-03-01T10:00:45.000Z');
  });

  void it('requires day and day-of-week to match together, as NCrontab does', () => {
    // The 13th that is a Friday, after 2026-03-01: 2026-03-13.
    assert.equal(parseSchedule('0 0 0 13 * 5').next(at('2026-03-01T00:00:00Z')).toISOString(), '2026-03-13T00:00:00.000Z');
  });

  void it('reads a TimeSpan as a fixed interval', () => {
    assert.equal(parseSchedule('00:00:30').next(at('2026-03-01T10:00:00Z')).toISOString(), '2026-03-01T10:00:30.000Z');
  });

  void it('refuses malformed schedules', () => {
    assert.throws(() => parseSchedule('* * * * *'), /6 fields/);
    assert.throws(() => parseSchedule('60 * * * * *'), /out of range/);
    assert.throws(() => parseSchedule('*/0 * * * * *'), /step/);
    assert.throws(() => parseSchedule('a * * * * *'), /Invalid value/);
  });
});

void describe('HTTP route templates', () => {
  void it('matches parameters, optional parameters, constraints and catch-alls', () => {
    const verify = compileRoute('tokens/{serial}/verify');
    assert.deepEqual(verify.match('tokens/ABC%2F1/verify'), { serial: 'ABC/1' });
    assert.deepEqual(verify.match('TOKENS/abc/VERIFY'), { serial: 'abc' });
    assert.equal(verify.match('tokens/abc'), undefined);
    assert.equal(verify.match('tokens//verify'), undefined);

    const optional = compileRoute('items/{id}/{extra?}');
    assert.deepEqual(optional.match('items/1'), { id: '1' });
    assert.deepEqual(optional.match('items/1/x'), { id: '1', extra: 'x' });

    const constrained = compileRoute('orders/{id:int}');
    assert.deepEqual(constrained.match('orders/12'), { id: '12' });
    assert.equal(constrained.match('orders/ab'), undefined);

    assert.deepEqual(compileRoute('files/{*rest}').match('files/a/b/c'), { rest: 'a/b/c' });
  });
});

void describe('blob trigger paths', () => {
  void it('splits container, listing prefix and name variables', () => {
    const { container, prefix, pattern, variables } = compileBlobPath('seeds/vendor/{name}.csv');
    assert.equal(container, 'seeds');
    assert.equal(prefix, 'vendor/');
    assert.deepEqual(variables, ['name']);
    assert.equal(pattern.exec('vendor/batch.1.csv')?.[1], 'batch.1');
    assert.equal(pattern.exec('vendor/batch.xml'), null);
    assert.ok(compileBlobPath('seeds/{name}').pattern.test('deep/path/file.csv'));
    assert.throws(() => compileBlobPath('{c}/{name}'), /container/);
  });
});

void describe('settings', () => {
  void it('reads local.settings.json Values and resolves %settings% and connections', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'settings-test-'));
    try {
      const file = join(dir, 'local.settings.json');
      await writeFile(
        file,
        JSON.stringify({ IsEncrypted: false, Values: { A: 'one', AzureWebJobsStorage: 'UseDevelopmentStorage=true' } }),
      );
      assert.deepEqual(await readLocalSettings(file), { A: 'one', AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
      await writeFile(file, JSON.stringify({ IsEncrypted: true, Values: {} }));
      await assert.rejects(readLocalSettings(file), /encrypted/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const env = { SCHEDULE: '0 */5 * * * *', AzureWebJobsStorage: 'default-conn', AzureWebJobsOther: 'other-conn', Mine: 'mine-conn' };
    assert.equal(resolveAppSettingExpressions('%SCHEDULE%', env), '0 */5 * * * *');
    assert.throws(() => resolveAppSettingExpressions('%MISSING%', env), /MISSING/);
    assert.equal(resolveStorageConnection(undefined, env), 'default-conn');
    assert.equal(resolveStorageConnection('Other', env), 'other-conn');
    assert.equal(resolveStorageConnection('Mine', env), 'mine-conn');
    assert.throws(() => resolveStorageConnection('Nope', env), /Nope/);
  });
});
