// Drops a file into the local stack (`npm run drop -- FILE [--assignments] [--metadata key=value]`) and lists what
// the pipeline made of it (`npm run list`): import files waiting for upload, reports, quarantined files.
// Relative paths are read from the folder npm was run in. The storage is the running stack's (dev/data), or
// AZURE_STORAGE_CONNECTION_STRING when set.
import { readFileSync, existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient } from '@azure/storage-blob';

const REPO = fileURLToPath(new URL('..', import.meta.url));

function connectionString(): string {
  const given = process.env['AZURE_STORAGE_CONNECTION_STRING'];
  if (given) return given;
  const settings = resolve(REPO, 'dev/data/local.settings.json');
  if (!existsSync(settings)) throw new Error(`${settings} does not exist: start the local stack first (npm start).`);
  const values = (JSON.parse(readFileSync(settings, 'utf8')) as { Values: Record<string, string> }).Values;
  return values['PipelineStorage']!;
}

async function drop(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { assignments: { type: 'boolean' }, name: { type: 'string' }, metadata: { type: 'string', multiple: true } },
  });
  if (positionals.length !== 1) throw new Error('usage: npm run drop -- FILE [--assignments] [--name BLOB] [--metadata key=value]');
  const file = resolve(process.env['INIT_CWD'] ?? process.cwd(), positionals[0]!);
  if (!existsSync(file)) throw new Error(`${positionals[0]} (${file}): no such file.`);
  const container = values.assignments ? 'assignments' : 'seeds';
  const name = values.name ?? basename(file);
  const metadata = Object.fromEntries((values.metadata ?? []).map((m) => [m.slice(0, m.indexOf('=')), m.slice(m.indexOf('=') + 1)]));
  const bytes = readFileSync(file);
  await BlobServiceClient.fromConnectionString(connectionString())
    .getContainerClient(container)
    .getBlockBlobClient(name)
    .uploadData(bytes, { metadata });
  console.log(
    `${file} -> ${container}/${name} (${bytes.length} bytes). Reports land in reports/ (assignment lists: reports/assignments/); see them with npm run list.`,
  );
}

async function list(): Promise<void> {
  const service = BlobServiceClient.fromConnectionString(connectionString());
  for (const container of ['seeds', 'assignments', 'imports', 'reports', 'quarantine']) {
    const names: string[] = [];
    for await (const blob of service.getContainerClient(container).listBlobsFlat())
      if (!blob.name.endsWith('.heartbeat'))
        names.push(`  ${blob.name}  (${blob.properties.contentLength ?? 0} bytes, ${blob.properties.lastModified?.toISOString() ?? ''})`);
    console.log(
      `${container}/ (${names.length})${container === 'imports' && names.length ? ': waiting for upload to Entra; each holds secrets' : ''}`,
    );
    for (const line of names) console.log(line);
  }
}

const [command, ...rest] = process.argv.slice(2);
(command === 'list' ? list() : drop(command === 'drop' ? rest : process.argv.slice(2))).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
