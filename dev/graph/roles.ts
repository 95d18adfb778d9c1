/**
 * The built-in Entra directory roles the Graph stand-in knows, by display name, with their template ids (the same
 * in every tenant) and whether Entra labels them privileged (`isPrivileged` on the role definition). A small subset,
 * enough to seed users with administrators and with harmless reader roles; the real list comes from Graph
 * (`/roleManagement/directory/roleDefinitions`).
 */
export interface BuiltInRole {
  displayName: string;
  templateId: string;
  isPrivileged: boolean;
  description: string;
}

export const BUILT_IN_ROLES: readonly BuiltInRole[] = [
  {
    displayName: 'Global Administrator',
    templateId: '62e90394-69f5-4237-9190-012177145e10',
    isPrivileged: true,
    description: 'Can manage all aspects of Microsoft Entra ID.',
  },
  {
    displayName: 'Privileged Role Administrator',
    templateId: 'e8611ab8-c189-46e8-94e1-60213ab1f814',
    isPrivileged: true,
    description: 'Can manage role assignments.',
  },
  {
    displayName: 'Privileged Authentication Administrator',
    templateId: '7be44c8a-adaf-4e2a-84d6-ab2649e08a13',
    isPrivileged: true,
    description: 'Can manage authentication methods of any user.',
  },
  {
    displayName: 'Authentication Administrator',
    templateId: 'c4e39bd9-1100-46d3-8c65-fb160da0071f',
    isPrivileged: true,
    description: 'Can manage authentication methods of non-administrators.',
  },
  {
    displayName: 'Helpdesk Administrator',
    templateId: '729827e3-9c14-49f7-bb1b-9608f156bbb8',
    isPrivileged: true,
    description: 'Can reset passwords of non-administrators.',
  },
  {
    displayName: 'User Administrator',
    templateId: 'fe930be7-5e62-47db-91af-98c3a49a38b1',
    isPrivileged: true,
    description: 'Can manage users and groups.',
  },
  {
    displayName: 'Security Administrator',
    templateId: '194ae4cb-b126-40b2-bd5b-6091b380977d',
    isPrivileged: true,
    description: 'Can manage security settings.',
  },
  {
    displayName: 'Application Administrator',
    templateId: '9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3',
    isPrivileged: true,
    description: 'Can manage app registrations and enterprise apps.',
  },
  {
    displayName: 'Cloud Application Administrator',
    templateId: '158c047a-c907-4556-b7ef-446551a6b5f7',
    isPrivileged: true,
    description: 'Can manage enterprise apps.',
  },
  {
    displayName: 'Hybrid Identity Administrator',
    templateId: '8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2',
    isPrivileged: true,
    description: 'Can manage directory synchronisation and federation.',
  },
  {
    displayName: 'Directory Readers',
    templateId: '88d8e3e3-8f55-4a1e-953a-9b9898b8876b',
    isPrivileged: false,
    description: 'Can read basic directory information.',
  },
  {
    displayName: 'Reports Reader',
    templateId: '4a5d8f65-41da-4de4-8968-e035b65339cf',
    isPrivileged: false,
    description: 'Can read sign-in and audit reports.',
  },
  {
    displayName: 'Message Center Reader',
    templateId: '790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b',
    isPrivileged: false,
    description: 'Can read Message Center posts.',
  },
];

const BY_NAME = new Map(BUILT_IN_ROLES.map((r) => [r.displayName.toLowerCase(), r]));
const BY_TEMPLATE = new Map(BUILT_IN_ROLES.map((r) => [r.templateId, r]));

export function roleByName(name: string): BuiltInRole | undefined {
  return BY_NAME.get(name.trim().toLowerCase());
}

export function roleByTemplateId(id: string): BuiltInRole | undefined {
  return BY_TEMPLATE.get(id);
}

/** An application permission (app role) of Microsoft Graph's service principal, present in every tenant. */
export interface GraphApplicationPermission {
  value: string;
  id: string;
  displayName: string;
}

/**
 * The Microsoft Graph application permissions the stand-in's Graph service principal offers: those Graph mode needs
 * and a few near them (a subset of the hundreds Graph has; ids as in Graph's permission reference).
 */
export const GRAPH_APPLICATION_PERMISSIONS: readonly GraphApplicationPermission[] = [
  {
    value: 'Policy.ReadWrite.AuthenticationMethod',
    id: '29c18626-4985-4dcd-85c0-193eef327366',
    displayName: 'Read and write all authentication method policies',
  },
  {
    value: 'UserAuthMethod-HardwareOATH.ReadWrite.All',
    id: '7e9ebcc1-90aa-4471-8051-e68d6b4e9c89',
    displayName: "Read and write all users' hardware OATH methods",
  },
  {
    value: 'UserAuthenticationMethod.ReadWrite.All',
    id: '50483e42-d915-4231-9639-7fdb7fd190e5',
    displayName: "Read and write all users' authentication methods",
  },
  { value: 'User.ReadBasic.All', id: '97235f07-e226-4f63-ace3-39588e11d3a1', displayName: "Read all users' basic profiles" },
  { value: 'User.Read.All', id: 'df021288-bdef-4463-88db-98f22de89214', displayName: "Read all users' full profiles" },
  { value: 'RoleManagement.Read.Directory', id: '483bed4a-2ad3-4361-a73b-c83ccdbdc53c', displayName: 'Read all directory RBAC settings' },
  { value: 'GroupMember.Read.All', id: '98830695-27a2-44f7-8c18-0c3ebc9698f6', displayName: 'Read all group memberships' },
];
