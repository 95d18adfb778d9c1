/**
 * App settings as `func start` provides them: the `Values` of
 * `local.settings.json` become environment variables, and a binding's
 * `connection` names a setting that holds a storage connection string.
 */
import { readFile } from 'node:fs/promises';

export interface LocalSettingsFile {
  IsEncrypted?: boolean;
  Values?: Record<string, string>;
  ConnectionStrings?: Record<string, string>;
  Host?: Record<string, unknown>;
}

/** The `Values` of a local.settings.json file (an encrypted file is refused: only Core Tools can decrypt it). */
export async function readLocalSettings(path: string): Promise<Record<string, string>> {
  const parsed = JSON.parse(await readFile(path, 'utf8')) as LocalSettingsFile;
  if (parsed.IsEncrypted) throw new Error(`${path} is encrypted; decrypt it with "func settings decrypt" first.`);
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed.Values ?? {})) values[key] = String(value);
  return values;
}

/**
 * The connection string a binding's `connection` setting points to. As the
 * host does, an empty name means AzureWebJobsStorage and `X` also finds
 * `AzureWebJobsX`.
 */
export function resolveStorageConnection(connection: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const name = typeof connection === 'string' && connection !== '' ? connection : 'AzureWebJobsStorage';
  const value = env[name] ?? env[`AzureWebJobs${name}`];
  if (value) return value;
  if (env[`${name}__blobServiceUri`] || env[`${name}__serviceUri`]) {
    throw new Error(`Setting "${name}" is identity-based; the local host needs a connection string (Azurite).`);
  }
  throw new Error(`App setting "${name}" (a storage connection string) is not set.`);
}

/** Replaces `%NAME%` in a binding property with app setting NAME, as the host does for schedules, paths and queue names. */
export function resolveAppSettingExpressions(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(/%([^%]+)%/g, (_whole, name: string) => {
    const value = env[name];
    if (value === undefined) throw new Error(`App setting "${name}" (used as %${name}%) is not set.`);
    return value;
  });
}

/** A binding option that should be text (path, schedule, queue name); anything else reads as empty. */
export function textOption(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
