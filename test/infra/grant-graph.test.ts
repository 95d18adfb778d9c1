/**
 * `npm run grant-graph` (scripts/grant-graph.ts) against the Microsoft Graph stand-in: it grants the app's managed
 * identity Graph mode's application permissions, creating only the missing ones; a second run creates nothing; a
 * check run changes nothing; the command line prints what it did and nothing secret.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { GraphClient } from '../../scripts/console-app-registration.js';
import {
  GRAPH_MODE_PERMISSIONS,
  GROUP_CHECK_PERMISSION,
  GrantError,
  grantCommandFrom,
  grantGraphPermissions,
  MICROSOFT_GRAPH_APP_ID,
} from '../../scripts/grant-graph.js';
import { errorOf, raw, startForTest, valueOf } from '../dev/graph/helpers.js';
import { repoRoot } from './bicep-compiler.js';

const IDENTITY_CLIENT_ID = '7d0c9a4e-5b1f-4c2a-9e8d-3f6a1b2c4d5e';
const OTHER_CLIENT_ID = '1e2d3c4b-5a69-4788-9a0b-c1d2e3f40516';
const staticToken: TokenCredential = {
  getToken: () => Promise.resolve({ token: 'admin-token-not-for-logs', expiresOnTimestamp: Number.MAX_SAFE_INTEGER } as AccessToken),
};
const BASE = GRAPH_MODE_PERMISSIONS.map((p) => p.value);

interface ServicePrincipalView {
  id: string;
  appId: string;
  servicePrincipalType: string;
  appRolesGranted: string[];
}

async function standIn(t: TestContext) {
  const graph = await startForTest(t);
  const seeded = await raw(graph, 'POST', '/_admin/service-principals', [
    { appId: IDENTITY_CLIENT_ID, displayName: 'id-pipeline' },
    { appId: OTHER_CLIENT_ID, displayName: 'id-other' },
  ]);
  assert.equal(seeded.status, 200, seeded.text);
  const client = new GraphClient(graph.url, staticToken);
  const granted = async (appId: string): Promise<string[]> => {
    const all = ((await raw(graph, 'GET', '/_admin/service-principals')).body as { servicePrincipals: ServicePrincipalView[] })
      .servicePrincipals;
    return all.find((sp) => sp.appId === appId)!.appRolesGranted;
  };
  return { graph, client, granted };
}

describe('grant-graph (Graph stand-in)', () => {
  it('grants the missing permissions once; a second run creates nothing', async (t) => {
    const { graph, client, granted } = await standIn(t);
    const lines: string[] = [];
    const first = await grantGraphPermissions(client, { clientId: IDENTITY_CLIENT_ID, log: (l) => lines.push(l) });
    assert.deepEqual(first.granted, BASE);
    assert.deepEqual(first.alreadyGranted, []);
    assert.deepEqual(await granted(IDENTITY_CLIENT_ID), [...BASE].sort());
    assert.deepEqual(await granted(OTHER_CLIENT_ID), [], 'another identity is left alone');
    assert.ok(
      lines.some((l) => l.startsWith('granted: Policy.ReadWrite.AuthenticationMethod')),
      lines.join('\n'),
    );

    const posts = (await raw(graph, 'GET', '/_admin/stats')).body as { operations: Record<string, number> };
    const second = await grantGraphPermissions(client, { clientId: IDENTITY_CLIENT_ID });
    assert.deepEqual(second.granted, []);
    assert.deepEqual(second.alreadyGranted, BASE);
    const after = (await raw(graph, 'GET', '/_admin/stats')).body as { operations: Record<string, number> };
    assert.equal(after.operations['createAppRoleAssignment'], posts.operations['createAppRoleAssignment'], 'no POST on the second run');
    assert.equal(first.principalId, second.principalId);

    // As Graph shows it: the identity's assignments on Microsoft Graph's service principal.
    const graphSp = (await raw(graph, 'GET', `/v1.0/servicePrincipals(appId='${MICROSOFT_GRAPH_APP_ID}')`)).body as {
      id: string;
      appRoles: { id: string; value: string }[];
    };
    const held = valueOf<{ resourceId: string; appRoleId: string; principalType: string }>(
      await raw(graph, 'GET', `/v1.0/servicePrincipals/${first.principalId}/appRoleAssignments`),
    );
    assert.equal(held.length, BASE.length);
    for (const a of held) {
      assert.equal(a.resourceId, graphSp.id);
      assert.equal(a.principalType, 'ServicePrincipal');
      assert.ok(BASE.includes(graphSp.appRoles.find((r) => r.id === a.appRoleId)!.value));
    }
  });

  it('adds only what is missing: one granted by hand stays, the group check adds GroupMember.Read.All alone', async (t) => {
    const { graph, client, granted } = await standIn(t);
    const identity = (await raw(graph, 'GET', `/v1.0/servicePrincipals?$filter=appId eq '${IDENTITY_CLIENT_ID}'&$select=id,appId`))
      .body as { value: { id: string }[] };
    assert.equal(identity.value.length, 1);
    const graphSp = (await raw(graph, 'GET', `/v1.0/servicePrincipals(appId='${MICROSOFT_GRAPH_APP_ID}')?$select=id,appRoles`)).body as {
      id: string;
      appRoles: { id: string; value: string }[];
    };
    const userReadAll = graphSp.appRoles.find((r) => r.value === 'User.Read.All')!;
    const byHand = await raw(graph, 'POST', `/v1.0/servicePrincipals/${graphSp.id}/appRoleAssignedTo`, {
      principalId: identity.value[0]!.id,
      resourceId: graphSp.id,
      appRoleId: userReadAll.id,
    });
    assert.equal(byHand.status, 201, byHand.text);

    const result = await grantGraphPermissions(client, { principalId: identity.value[0]!.id });
    assert.deepEqual(result.alreadyGranted, ['User.Read.All']);
    assert.deepEqual(
      result.granted,
      BASE.filter((p) => p !== 'User.Read.All'),
    );
    const withGroup = await grantGraphPermissions(client, { clientId: IDENTITY_CLIENT_ID, groupCheck: true });
    assert.deepEqual(withGroup.granted, [GROUP_CHECK_PERMISSION.value]);
    assert.deepEqual(await granted(IDENTITY_CLIENT_ID), [...BASE, GROUP_CHECK_PERMISSION.value].sort());
  });

  it('a check run reports what is missing and changes nothing', async (t) => {
    const { client, granted } = await standIn(t);
    const result = await grantGraphPermissions(client, { clientId: IDENTITY_CLIENT_ID, checkOnly: true });
    assert.deepEqual(result.missing, BASE);
    assert.deepEqual(result.granted, []);
    assert.deepEqual(await granted(IDENTITY_CLIENT_ID), []);
  });

  it('refuses precisely: an unknown identity, a malformed id', async (t) => {
    const { client, granted } = await standIn(t);
    await assert.rejects(
      grantGraphPermissions(client, { clientId: '00000000-1111-4222-8333-444444444444' }),
      (e: Error) =>
        e instanceof GrantError && /no service principal for client id 00000000-1111/.test(e.message) && /run again/.test(e.message),
    );
    await assert.rejects(
      grantGraphPermissions(client, { clientId: 'not-a-guid' }),
      (e: Error) => e instanceof GrantError && /not a GUID/.test(e.message),
    );
    await assert.rejects(
      grantGraphPermissions(client, {}),
      (e: Error) => e instanceof GrantError && /AZURE_MANAGED_IDENTITY_CLIENT_ID/.test(e.message),
    );
    assert.deepEqual(await granted(IDENTITY_CLIENT_ID), []);
  });

  it('the stand-in refuses what Graph refuses: a duplicate, a role not for applications, an unknown principal', async (t) => {
    const { graph } = await standIn(t);
    const identity = valueOf<{ id: string }>(
      await raw(graph, 'GET', `/v1.0/servicePrincipals?$filter=appId eq '${IDENTITY_CLIENT_ID}'`),
    )[0]!;
    const graphSp = (await raw(graph, 'GET', `/v1.0/servicePrincipals(appId='${MICROSOFT_GRAPH_APP_ID}')`)).body as {
      id: string;
      appRoles: { id: string; value: string }[];
    };
    const role = graphSp.appRoles[0]!;
    const path = `/v1.0/servicePrincipals/${identity.id}/appRoleAssignments`;
    assert.equal((await raw(graph, 'POST', path, { principalId: identity.id, resourceId: graphSp.id, appRoleId: role.id })).status, 201);
    const duplicate = await raw(graph, 'POST', path, { principalId: identity.id, resourceId: graphSp.id, appRoleId: role.id });
    assert.equal(duplicate.status, 400);
    assert.match(errorOf(duplicate).message, /already exists/);
    const unknownRole = await raw(graph, 'POST', path, {
      principalId: identity.id,
      resourceId: graphSp.id,
      appRoleId: '11111111-2222-4333-8444-555555555555',
    });
    assert.equal(unknownRole.status, 400);
    const unknownPrincipal = await raw(graph, 'GET', '/v1.0/servicePrincipals/11111111-2222-4333-8444-555555555555/appRoleAssignments');
    assert.equal(unknownPrincipal.status, 404);
    assert.equal(errorOf(unknownPrincipal).code, 'Request_ResourceNotFound');
    // Graph's application permissions are for applications, not for users.
    graph.seedUsers([{ userPrincipalName: 'ana@contoso.com' }]);
    const ana = graph.users()[0]!;
    const toUser = await raw(graph, 'POST', `/v1.0/servicePrincipals/${graphSp.id}/appRoleAssignedTo`, {
      principalId: ana.id,
      resourceId: graphSp.id,
      appRoleId: role.id,
    });
    assert.equal(toUser.status, 400);
    assert.match(errorOf(toUser).message, /does not allow users/);
  });

  it('command line: flags over the azd environment', () => {
    assert.deepEqual(grantCommandFrom([], { AZURE_MANAGED_IDENTITY_CLIENT_ID: IDENTITY_CLIENT_ID }), {
      graphBaseUrl: 'https://graph.microsoft.com',
      groupCheck: false,
      clientId: IDENTITY_CLIENT_ID,
    });
    assert.deepEqual(
      grantCommandFrom(['--principal-id', OTHER_CLIENT_ID, '--check'], {
        AZURE_MANAGED_IDENTITY_CLIENT_ID: IDENTITY_CLIENT_ID,
        GRAPH_ALLOWED_GROUP_ID: 'x',
        GRAPH_BASE_URL: 'http://127.0.0.1:1',
      }),
      {
        graphBaseUrl: 'http://127.0.0.1:1',
        groupCheck: true,
        principalId: OTHER_CLIENT_ID,
        checkOnly: true,
      },
    );
    assert.throws(() => grantCommandFrom(['--client-id'], {}), /needs a value/);
    assert.throws(() => grantCommandFrom(['--force'], {}), /unknown option --force/);
  });

  it('npm run grant-graph against the stand-in: prints what it did, twice, and no token', async (t) => {
    const { graph, granted } = await standIn(t);
    const run = (...args: string[]): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts', 'grant-graph.ts'), ...args], {
          cwd: repoRoot,
          env: {
            ...process.env,
            GRAPH_BASE_URL: graph.url,
            AZURE_MANAGED_IDENTITY_CLIENT_ID: IDENTITY_CLIENT_ID,
            GRAPH_ALLOWED_GROUP_ID: '',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, out }));
      });
    const check = await run('--check');
    assert.equal(check.code, 3, check.out);
    assert.match(check.out, /4 missing/);
    const first = await run();
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /grant-graph: 4 granted, 0 already there/);
    const second = await run();
    assert.equal(second.code, 0, second.out);
    assert.match(second.out, /grant-graph: 0 granted, 4 already there/);
    assert.doesNotMatch(first.out + second.out, /local-stand-in|Bearer/);
    assert.deepEqual(await granted(IDENTITY_CLIENT_ID), [...BASE].sort());
    assert.equal((await run('--check')).code, 0);
  });
});
