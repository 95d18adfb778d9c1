/**
 * Through the local stack: a seed file and its assignment list dropped a moment apart give one import CSV with
 * every row (the blob triggers request a build; the runDueBuild timer runs it once both ingests are done), and
 * Entra's failure file dropped in `results` marks the tokens it lists importFailed for a re-export.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobServiceClient } from '@azure/storage-blob';
import { parse } from 'csv-parse/sync';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';

const SECRETS: Record<string, string> = {
  CO1001: 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ',
  CO1002: 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG',
  CO1003: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
};
const SEEDS =
  'upn,serial number,secret key,time interval,manufacturer,model\n' +
  Object.entries(SECRETS)
    .map(([serial, secret]) => `,${serial},${secret},30,Token2,C202\n`)
    .join('');
const ASSIGNMENTS = 'upn,serial number\nana@contoso.com,CO1001\nbo@contoso.com,CO1002\ncy@contoso.com,CO1003\n';

describe('one drop, one CSV; the failure file comes back (local stack)', () => {
  let stack: TestStack;
  let blobs: BlobServiceClient;
  const scope = suiteScope();
  const upload = (container: string, name: string, content: string) =>
    blobs.getContainerClient(container).getBlockBlobClient(name).upload(content, Buffer.byteLength(content));
  const names = async (container: string) => {
    const out: string[] = [];
    for await (const b of blobs.getContainerClient(container).listBlobsFlat()) out.push(b.name);
    return out.sort();
  };
  const read = async (container: string, name: string) =>
    (await blobs.getContainerClient(container).getBlobClient(name).downloadToBuffer()).toString('utf8');
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.functionsUrl}/api/${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: JSON.parse((await res.text()) || '{}') as Record<string, unknown> };
  };

  before(async () => {
    stack = await startTestStack(scope, {
      settings: { BUILD_SETTLE_SECONDS: '3', KEY_VAULT_RETRY_BASE_MS: '20', RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
    });
    blobs = BlobServiceClient.fromConnectionString(stack.connectionString);
  });

  it(
    'gives exactly one import CSV with every row for a seed file and its assignment list dropped a moment apart',
    { timeout: 120_000 },
    async () => {
      await upload('seeds', 'coalesce-batch.csv', SEEDS);
      await sleep(1500);
      await upload('assignments', 'coalesce-team.csv', ASSIGNMENTS);
      await stack.buildsSettled();
      const imports = await names('imports');
      assert.equal(imports.length, 1, imports.join(', '));
      const rows = parse<Record<string, string>>(await read('imports', imports[0]!), { columns: true });
      assert.deepEqual(rows.map((r) => r['serial number']).sort(), ['CO1001', 'CO1002', 'CO1003']);
      assert.deepEqual((await names('reports')).filter((n) => /^build-[0-9a-f]{12}\.json$/.test(n)).length, 1, 'one build ran');
    },
  );

  it("marks the tokens of Entra's failure file importFailed, lists them, and re-exports exactly those", { timeout: 120_000 }, async () => {
    const [csv] = await names('imports');
    assert.equal((await api('POST', `imports/${csv}/uploaded`)).status, 200);
    await upload(
      'results',
      `Failures_${csv}`,
      `Serial Number,UPN,Secret Key,Reason\nCO1002,bo@contoso.com,${SECRETS.CO1002},User not found\n`,
    );
    await stack.idle();
    const failed = await api('GET', 'tokens?state=importFailed');
    assert.deepEqual(
      (failed.body.items as { serial: string }[]).map((t) => t.serial),
      ['CO1002'],
    );
    assert.equal((await api('GET', 'tokens/CO1001')).body.state, 'imported');
    const reports = (await names('reports')).filter((n) => n.startsWith('results/') && n.endsWith('.json'));
    assert.equal(reports.length, 1);
    assert.ok(!(await read('reports', reports[0]!)).includes(SECRETS.CO1002!.slice(0, 12)));

    const again = await api('POST', 'imports', { reexport: ['CO1002'] });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    const files = await names('imports');
    assert.equal(files.length, 1);
    assert.deepEqual(
      parse<Record<string, string>>(await read('imports', files[0]!), { columns: true }).map((r) => r['serial number']),
      ['CO1002'],
    );

    await upload('results', 'Failures_other.csv', 'Serial Number,Reason\nNOPE1,User not found\n');
    await stack.idle();
    const refused = (await names('reports')).find((n) => n.startsWith('results/Failures_other.csv') && n.endsWith('.json'))!;
    assert.match(await read('reports', refused), /RESULTS_NO_KNOWN_SERIAL/);
  });
});
