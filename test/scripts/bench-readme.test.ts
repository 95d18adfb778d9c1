import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { benchTable, replaceBetweenMarkers } from '../../scripts/bench-readme.js';

describe('bench:readme', () => {
  const results = {
    generatedAt: '2026-12-01T06:00:00.000Z',
    machine: { node: 'v22.23.3', cpus: 2, cpuModel: 'Test CPU', loadAverageAtStart: [9.5, 9, 8] },
    checks: [
      { figure: 'Verify p50 ÷ floor', value: '1.20 (6 ÷ 5 ms)', target: '<= 1.5', pass: true },
      { figure: 'CSV peak | memory', value: '130 MB', target: '<= 120 MB', pass: false },
      { figure: 'PBKDF2', value: '0.3 ms', target: '(reported)', pass: null },
    ],
  };

  it('renders every check from the results, escaping pipes', () => {
    const table = benchTable(results);
    assert.match(table, /^Measured 2026-12-01 on 2 × Test CPU, Node 22\.23\.3 \(load average 9\.5 at the start\)/);
    assert.match(table, /\| Verify p50 ÷ floor \| \*\*1\.20 \(6 ÷ 5 ms\)\*\* \| <= 1\.5 \| pass \|/);
    assert.match(table, /\| CSV peak \\\| memory \| \*\*130 MB\*\* \| <= 120 MB \| not met \|/);
    assert.match(table, /\| PBKDF2 \| \*\*0\.3 ms\*\* \| \(reported\) \| reported \|/);
  });

  it('replaces only what lies between the markers, and nothing without them', () => {
    const text = 'before\n<!-- bench:table:start -->\nold\n<!-- bench:table:end -->\nafter\n';
    assert.equal(replaceBetweenMarkers(text, 'new'), 'before\n<!-- bench:table:start -->\nnew\n<!-- bench:table:end -->\nafter\n');
    assert.equal(replaceBetweenMarkers('no markers here', 'new'), undefined);
  });
});
