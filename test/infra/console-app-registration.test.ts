/**
 * The console's app registration step (scripts/console-app-registration.ts, run by the azd hooks) against the
 * Microsoft Graph stand-in: it creates the application with the two app roles, the service principal with
 * "assignment required" and the groups' role assignments; a second run adds only the sign-in callback once the
 * host is known; a third changes nothing. What people added by hand stays, and an enabled role is never changed.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { AccessToken, TokenCredential } from '@azure/identity';
import {
  ConsoleRegistrationError,
  CONSOLE_APP_ROLES,
  easyAuthCallback,
  ensureConsoleRegistration,
  GraphClient,
  registrationFromEnvironment,
} from '../../scripts/console-app-registration.js';
import { APP_ROLES } from '../../shared/app/auth.js';
import { raw, startForTest } from '../dev/graph/helpers.js';

const HELPDESK_GROUP = '0a0a0a0a-1111-4111-8111-000000000001';
const ADMIN_GROUP = '0a0a0a0a-1111-4111-8111-000000000002';
const staticToken: TokenCredential = {
  getToken: () => Promise.resolve({ token: 'test-token', expiresOnTimestamp: Number.MAX_SAFE_INTEGER } as AccessToken),
};

async function standIn(t: TestContext) {
  const graph = await startForTest(t);
  graph.seedUsers([
    { userPrincipalName: 'helga@contoso.com', groups: [HELPDESK_GROUP] },
    { userPrincipalName: 'ana@contoso.com', groups: [ADMIN_GROUP] },
  ]);
  return { graph, client: new GraphClient(graph.url, staticToken) };
}

const OPTIONS = {
  uniqueName: 'oath-console-ci',
  displayName: 'OATH token console (ci)',
  helpdeskGroupId: HELPDESK_GROUP,
  adminGroupId: ADMIN_GROUP,
};

describe('console app registration (Graph stand-in)', () => {
  it('creates the application, its roles, the service principal and the group assignments; then adds the callback; then changes nothing', async (t) => {
    const { graph, client } = await standIn(t);
    const first = await ensureConsoleRegistration(client, OPTIONS);
    assert.deepEqual(first.changes, [
      'application oath-console-ci created',
      `app role ${APP_ROLES.helpdesk} added`,
      `app role ${APP_ROLES.admin} added`,
      'service principal created (assignment required)',
      `${APP_ROLES.helpdesk} assigned to group ${HELPDESK_GROUP}`,
      `${APP_ROLES.admin} assigned to group ${ADMIN_GROUP}`,
    ]);
    const app = (await raw(graph, 'GET', "/v1.0/applications(uniqueName='oath-console-ci')")).body as {
      appId: string;
      signInAudience: string;
      appRoles: { id: string; value: string; allowedMemberTypes: string[]; isEnabled: boolean }[];
      web: { redirectUris: string[]; implicitGrantSettings: { enableIdTokenIssuance: boolean } };
    };
    assert.equal(app.appId, first.appId);
    assert.equal(app.signInAudience, 'AzureADMyOrg');
    assert.deepEqual(
      app.appRoles.map((r) => [r.id, r.value, r.allowedMemberTypes, r.isEnabled]),
      CONSOLE_APP_ROLES.map((r) => [r.id, r.value, ['User'], true]),
    );
    assert.deepEqual(app.web.redirectUris, []);
    assert.equal(app.web.implicitGrantSettings.enableIdTokenIssuance, true);
    const sp = (await raw(graph, 'GET', `/v1.0/servicePrincipals(appId='${first.appId}')`)).body as {
      id: string;
      appRoleAssignmentRequired: boolean;
    };
    assert.equal(sp.appRoleAssignmentRequired, true);
    const assignments = (
      (await raw(graph, 'GET', `/v1.0/servicePrincipals/${sp.id}/appRoleAssignedTo`)).body as {
        value: { principalId: string; principalType: string; appRoleId: string }[];
      }
    ).value;
    assert.deepEqual(
      assignments.map((a) => [a.principalId, a.principalType, a.appRoleId]).sort(),
      [
        [HELPDESK_GROUP, 'Group', CONSOLE_APP_ROLES[0]!.id],
        [ADMIN_GROUP, 'Group', CONSOLE_APP_ROLES[1]!.id],
      ].sort(),
    );

    const second = await ensureConsoleRegistration(client, { ...OPTIONS, hostName: 'func-abc.azurewebsites.net' });
    assert.deepEqual(second.changes, ['redirect URI https://func-abc.azurewebsites.net/.auth/login/aad/callback added']);
    assert.equal(second.appId, first.appId);
    const third = await ensureConsoleRegistration(client, { ...OPTIONS, hostName: 'func-abc.azurewebsites.net' });
    assert.deepEqual(third.changes, []);
    const stats = graph.stats();
    assert.equal(stats.operations.upsertApplication, 2, 'the third run wrote nothing');
    assert.equal(stats.operations.createAppRoleAssignedTo, 2);
  });

  it('keeps what was added by hand (another role, another redirect URI) and never changes an enabled role', async (t) => {
    const { graph, client } = await standIn(t);
    const other = {
      id: '11111111-2222-4333-8444-555555555555',
      value: 'Reports.Read',
      displayName: 'Reports',
      description: 'Read reports',
      allowedMemberTypes: ['User'],
      isEnabled: true,
    };
    const created = await raw(
      graph,
      'PATCH',
      "/v1.0/applications(uniqueName='oath-console-ci')",
      { displayName: 'Hand-made', appRoles: [other], web: { redirectUris: ['https://localhost/callback'] } },
      { headers: { prefer: 'create-if-missing' } },
    );
    assert.equal(created.status, 201);
    // The stand-in refuses what Graph refuses: removing an enabled role.
    const removing = await raw(graph, 'PATCH', "/v1.0/applications(uniqueName='oath-console-ci')", { appRoles: [] });
    assert.equal(removing.status, 400);
    assert.equal((removing.body as { error: { code: string } }).error.code, 'CannotDeleteOrUpdateEnabledEntitlement');

    const result = await ensureConsoleRegistration(client, { ...OPTIONS, hostName: 'func-abc.azurewebsites.net' });
    assert.ok(result.changes.includes(`app role ${APP_ROLES.admin} added`));
    const app = (await raw(graph, 'GET', "/v1.0/applications(uniqueName='oath-console-ci')")).body as {
      displayName: string;
      appRoles: { value: string }[];
      web: { redirectUris: string[] };
    };
    assert.equal(app.displayName, 'Hand-made', 'the name someone gave it stays');
    assert.deepEqual(
      app.appRoles.map((r) => r.value),
      ['Reports.Read', APP_ROLES.helpdesk, APP_ROLES.admin],
    );
    assert.deepEqual(app.web.redirectUris, ['https://localhost/callback', easyAuthCallback('func-abc.azurewebsites.net')]);
  });

  it('says what is wrong: a group that does not exist, a group id that is not a GUID', async (t) => {
    const { client } = await standIn(t);
    await assert.rejects(
      () => ensureConsoleRegistration(client, { ...OPTIONS, adminGroupId: '0a0a0a0a-1111-4111-8111-00000000dead' }),
      (error: Error) =>
        error instanceof ConsoleRegistrationError &&
        /assigning Tokens\.Admin to group 0a0a0a0a-1111-4111-8111-00000000dead failed: HTTP 404 Request_ResourceNotFound/.test(
          error.message,
        ),
    );
    await assert.rejects(
      () => ensureConsoleRegistration(client, { ...OPTIONS, helpdeskGroupId: 'helpdesk' }),
      /the helpdesk group must be an object id/,
    );
  });

  it('reads its settings from the azd environment: off unless CONSOLE_SIGN_IN=true, named after the environment', () => {
    assert.throws(() => registrationFromEnvironment({}), /AZURE_ENV_NAME/);
    assert.deepEqual(registrationFromEnvironment({ AZURE_ENV_NAME: 'Prod' }), {
      enabled: false,
      graphBaseUrl: 'https://graph.microsoft.com',
      uniqueName: 'oath-console-prod',
      displayName: 'OATH token console (Prod)',
    });
    const on = registrationFromEnvironment({
      AZURE_ENV_NAME: 'prod',
      CONSOLE_SIGN_IN: 'true',
      AZURE_FUNCTION_APP_HOST_NAME: 'h.example',
      CONSOLE_HELPDESK_GROUP_ID: HELPDESK_GROUP,
      CONSOLE_ADMIN_GROUP_ID: ADMIN_GROUP,
    });
    assert.equal(on.enabled, true);
    assert.equal(on.hostName, 'h.example');
    assert.equal(on.adminGroupId, ADMIN_GROUP);
  });
});
