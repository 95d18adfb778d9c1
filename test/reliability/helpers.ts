/**
 * Shared pieces of the reliability tests: random seeds, seed and assignment
 * files, the vault stand-in's admin API, storage reads through the real SDKs,
 * and the app's own services built against a running stack (for the cases the
 * local host cannot produce, such as one blob event delivered twice).
 */
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { TableClient } from '@azure/data-tables';
import { parse } from 'csv-parse/sync';
import type { KeyVaultRealism, KeyVaultStats } from '../../dev/keyvault/server.js';
import { composeAppContext, services, type AppContext } from '../../shared/app/context.js';
import { createAzureAdapters, ensureStorageResources } from '../../shared/azure/clients.js';
import { loadConfig } from '../../shared/config.js';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';
import type { Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { systemClock } from '../../shared/pipeline/clock.js';

export const SEED_HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';

export interface SeedToken {
  serial: string;
  bytes: Uint8Array;
  base32: string;
}

/** Random 160-bit seeds: random, so a hit in a leak scan cannot be a coincidence with fixed test data. */
export function randomTokens(prefix: string, count: number, byteLength = 20): SeedToken[] {
  return Array.from({ length: count }, (_, i) => {
    const bytes = new Uint8Array(randomBytes(byteLength));
    return { serial: `${prefix}${String(i + 1).padStart(5, '0')}`, bytes, base32: toCanonicalBase32(bytes) };
  });
}

export function seedCsv(tokens: readonly SeedToken[], extraRows: readonly string[] = []): string {
  return SEED_HEADER + tokens.map((t) => `,${t.serial},${t.base32},30,Token2,C202\n`).join('') + extraRows.join('');
}

export function assignmentCsv(pairs: readonly { upn: string; serial: string }[]): string {
  return 'upn,serial number\n' + pairs.map((p) => `${p.upn},${p.serial}\n`).join('');
}

// ---- vault stand-in admin API ------------------------------------------------------------------------------

export async function vaultStats(keyVaultUrl: string): Promise<KeyVaultStats> {
  const res = await fetch(`${keyVaultUrl}/_admin/stats`);
  if (res.status !== 200) throw new Error(`vault stats: HTTP ${res.status}`);
  return (await res.json()) as KeyVaultStats;
}

export async function setVaultRealism(keyVaultUrl: string, realism: KeyVaultRealism): Promise<void> {
  const res = await fetch(`${keyVaultUrl}/_admin/realism`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(realism),
  });
  if (res.status !== 200) throw new Error(`vault realism: HTTP ${res.status} ${await res.text()}`);
}

// ---- storage ---------------------------------------------------------------------------------------------------

export function blobService(connectionString: string): BlobServiceClient {
  return BlobServiceClient.fromConnectionString(connectionString);
}

export async function upload(connectionString: string, container: string, name: string, content: string): Promise<void> {
  await blobService(connectionString).getContainerClient(container).getBlockBlobClient(name).upload(content, Buffer.byteLength(content));
}

export async function blobNames(connectionString: string, container: string): Promise<string[]> {
  const out: string[] = [];
  const client = blobService(connectionString).getContainerClient(container);
  if (!(await client.exists())) return out;
  for await (const b of client.listBlobsFlat()) out.push(b.name);
  return out.sort();
}

export async function readBlob(connectionString: string, container: string, name: string): Promise<Buffer> {
  return blobService(connectionString).getContainerClient(container).getBlobClient(name).downloadToBuffer();
}

export async function tokenRows(connectionString: string): Promise<Map<string, TokenEntity>> {
  const table = TableClient.fromConnectionString(connectionString, 'tokens', { allowInsecureConnection: true });
  const rows = new Map<string, TokenEntity>();
  for await (const e of table.listEntities<TokenEntity>()) rows.set(e.serial, e);
  return rows;
}

/** Every row of every import CSV, with the file it came from. */
export async function importRows(connectionString: string): Promise<{ file: string; upn: string; serial: string; secret: string }[]> {
  const out: { file: string; upn: string; serial: string; secret: string }[] = [];
  for (const file of await blobNames(connectionString, 'imports')) {
    const rows = parse<Record<string, string>>(await readBlob(connectionString, 'imports', file), { columns: true });
    for (const r of rows) out.push({ file, upn: r.upn!, serial: r['serial number']!, secret: r['secret key']! });
  }
  return out;
}

export async function waitFor(
  what: string,
  condition: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---- the app's services, outside the host ------------------------------------------------------------------

export interface CapturedLogger extends Logger {
  lines: string[];
}

export function capturingLogger(): CapturedLogger {
  const lines: string[] = [];
  const put = (level: string) => (message: string, data?: Record<string, unknown>) =>
    void lines.push(`${level} ${message}${data ? ` ${JSON.stringify(data)}` : ''}`);
  return { lines, info: put('info'), warn: put('warn'), error: put('error') };
}

/**
 * The app's composition (as shared/app/context.ts builds it) against a stack's
 * storage and vault: one call stands for one app instance, with its own
 * clients and its own vault pacer.
 */
export async function appInstance(
  connectionString: string,
  keyVaultUrl: string,
  settings: Record<string, string> = {},
): Promise<AppContext> {
  const config = loadConfig({ PipelineStorage: connectionString, KEY_VAULT_URL: keyVaultUrl, ...settings });
  await ensureStorageResources(config);
  return composeAppContext(config, await createAzureAdapters(config), systemClock);
}

export { services };

export function elapsedSeconds(startMs: number): string {
  return ((Date.now() - startMs) / 1000).toFixed(1);
}
