/**
 * No secret in what a malformed file makes the tools say. Every checked-in
 * hostile-corpus file and every misaligned-row shape (test/helpers/leak-shapes.ts)
 * goes through:
 * - the CLI, in process: `inspect` and `convert`, JSON and table, stdout and
 *   stderr (convert writes its Entra CSV to a file, which is the delivery of
 *   the secrets and serves as the positive control);
 * - the pipeline's services over memory ports: ingest (seed files) and the
 *   assignment-list service, with their JSON and HTML reports, the reports kept
 *   next to quarantined files, the log lines, the answers and the inventory rows
 *   (the quarantined original is the other positive control).
 * Each output is scanned for every 12-character piece of every secret in every
 * text form (test/helpers/secret-scan.ts): zero hits.
 *
 * The in-memory giants of the corpus (5 MB cells, two million rows) are left
 * out: they are not files, and their only secrets are a repeated letter.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../../shared/cli/cli.js';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { IngestService, METADATA_SECRET_ENCODING, METADATA_TRANSPORT_KEY_SECRET } from '../../shared/pipeline/ingest.js';
import type { AssignmentEntity, Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { CORPUS_DIR, corpus, REFERENCE_SEED, type CorpusOptions } from '../fixtures/corpus/generate.js';
import { ManualClock } from '../helpers/clock.js';
import { leakShapes } from '../helpers/leak-shapes.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';
import { leakHits, piecesOf, secretForms } from '../helpers/secret-scan.js';

interface Input {
  /** Name shown in failures and used as the blob name. */
  name: string;
  path: string;
  reader: 'seed' | 'assignments';
  options: CorpusOptions;
}

const work = mkdtempSync(join(tmpdir(), 'entra-oath-leaks-'));
const generated = corpus();
const shapes = leakShapes('leak');

const inputs: Input[] = [];
for (const entry of generated.manifest.entries) {
  if (!entry.file) continue;
  inputs.push({ name: entry.file, path: join(CORPUS_DIR, entry.file), reader: entry.reader, options: entry.options ?? {} });
}
for (const shape of shapes) {
  const path = join(work, shape.name);
  writeFileSync(path, shape.content);
  // Every shape is read both ways: as the seed file it is, and as an assignment list dropped by mistake.
  for (const reader of ['seed', 'assignments'] as const) inputs.push({ name: `shapes/${reader}/${shape.name}`, path, reader, options: {} });
}

const secretTexts = [...generated.secrets, ...shapes.flatMap((s) => s.secrets)].flatMap((bytes) => secretForms(bytes));
const pieces = piecesOf(secretTexts);

const referencePath = join(CORPUS_DIR, REFERENCE_SEED);
const onePairList = join(work, 'one-pair.csv');
writeFileSync(onePairList, 'upn,serial number\nana@contoso.com,S1\n');

function keyArgs(options: CorpusOptions): string[] {
  const args: string[] = [];
  if (options.secretEncoding) args.push('--secret-encoding', options.secretEncoding);
  if (options.psk !== undefined) args.push('--psk', options.psk);
  if (options.password !== undefined) args.push('--password', options.password);
  return args;
}

async function cli(args: string[]): Promise<{ code: number; output: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: {},
    stderrIsTTY: false,
    now: () => 1_700_000_000_000,
  });
  return { code, output: `${stdout}\n${stderr}` };
}

const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };
const TRANSPORT_KEY_NAME = 'transport-corpus';

function services(maxBytes: number) {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  const blobs = new MemoryBlobStore(clock);
  const secrets = new MemorySecretStore();
  const vault = new PacedVault(secrets, { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
  const tokens = new MemoryTable<TokenEntity>();
  const assignmentTable = new MemoryTable<AssignmentEntity>();
  const lines: string[] = [];
  const put = (m: string, d?: Record<string, unknown>) => void lines.push(`${m} ${JSON.stringify(d ?? {})}`);
  const log: Logger = { info: put, warn: put, error: put };
  const ingest = new IngestService({
    blobs,
    vault,
    tokens,
    clock,
    log,
    containers,
    transportKeyPrefix: 'transport-',
    maxSeedFileBytes: maxBytes,
    recoverDeletedSecrets: false,
    leaseWaitMs: 200,
  });
  const assignments = new AssignmentService({
    blobs,
    assignments: assignmentTable,
    tokens,
    clock,
    log,
    containers,
    maxFileBytes: maxBytes,
  });
  return { blobs, secrets, tokens, assignmentTable, lines, ingest, assignments };
}

/** Collects hits per output; the test asserts none at the end of each part. */
class Scan {
  readonly found: string[] = [];
  outputs = 0;
  bytes = 0;
  controls = 0;

  check(where: string, text: string): void {
    this.outputs++;
    this.bytes += text.length;
    for (const hit of leakHits(pieces, text, 2)) this.found.push(`${where}: ${hit}`);
  }

  control(text: string): void {
    if (leakHits(pieces, text, 1).length > 0) this.controls++;
  }
}

after(() => rmSync(work, { recursive: true, force: true }));

void describe('no secret in CLI output or pipeline reports for hostile files and misaligned rows', () => {
  void it('has inputs: every checked-in corpus file and each shape read both ways', () => {
    assert.ok(inputs.filter((i) => !i.name.startsWith('shapes/')).length >= 100);
    assert.equal(inputs.filter((i) => i.name.startsWith('shapes/')).length, shapes.length * 2);
    assert.ok(pieces.size > 10_000, `${pieces.size} pieces`);
  });

  void it('the CLI (inspect and convert, JSON and table, stdout and stderr) quotes no piece of a secret', async () => {
    const scan = new Scan();
    let run = 0;
    for (const input of inputs) {
      const runs: string[][] =
        input.reader === 'seed'
          ? [
              ['inspect', input.path, ...keyArgs(input.options), '--json'],
              ['inspect', input.path, ...keyArgs(input.options)],
              ['convert', input.path, ...keyArgs(input.options), '--assignments', onePairList, '--json'],
              ['convert', input.path, ...keyArgs(input.options), '--assignments', onePairList],
            ]
          : [
              ['convert', referencePath, '--assignments', input.path, '--json'],
              ['convert', referencePath, '--assignments', input.path],
            ];
      for (const args of runs) {
        const out = join(work, `out-${run++}.csv`);
        const { output } = await cli(args[0] === 'convert' ? [...args, '--out', out] : args);
        scan.check(`${input.name} ${args[0]}${args.includes('--json') ? ' --json' : ''}`, output);
        try {
          scan.control(readFileSync(out, 'utf8'));
        } catch {
          // No token exported: no file.
        }
      }
    }
    assert.ok(scan.controls > 0, 'control: the scan finds the secrets in the Entra CSVs convert wrote');
    assert.deepEqual(scan.found, []);
    console.log(
      `[hostile] CLI secrets scan: ${scan.outputs} outputs (${(scan.bytes / 1024).toFixed(0)} KiB) of ${inputs.length} inputs against ${pieces.size} pieces: 0 hits`,
    );
  });

  void it('the pipeline (reports, quarantine reports, logs, answers, inventory rows) quotes no piece of a secret', async () => {
    const scan = new Scan();
    for (const input of inputs) {
      const s = services(input.options.maxBytes ?? 20 * 1024 * 1024);
      const bytes = readFileSync(input.path);
      let answer: unknown;
      if (input.reader === 'seed') {
        const metadata: Record<string, string> = {};
        if (input.options.secretEncoding) metadata[METADATA_SECRET_ENCODING] = input.options.secretEncoding;
        const key = input.options.psk ?? input.options.password;
        if (key !== undefined) {
          await s.secrets.set(TRANSPORT_KEY_NAME, key, { contentType: 'text/plain', tags: {} });
          metadata[METADATA_TRANSPORT_KEY_SECRET] = TRANSPORT_KEY_NAME;
        }
        await s.blobs.write(containers.seeds, input.name, bytes, { metadata });
        answer = await s.ingest.ingest(input.name);
      } else {
        await s.blobs.write(containers.assignments, input.name, bytes);
        answer = await s.assignments.ingest(input.name);
      }
      scan.check(`${input.name} answer`, JSON.stringify(answer));
      scan.check(`${input.name} log`, s.lines.join('\n'));
      for (const container of Object.values(containers)) {
        for (const blobName of s.blobs.names(container)) {
          const text = s.blobs.text(container, blobName)!;
          // The quarantined original is the file itself, kept private so it can be fixed.
          if (container === containers.quarantine && blobName.endsWith(`/${basename(input.name)}`)) {
            scan.control(text);
            continue;
          }
          scan.check(`${input.name} blob ${container}/${blobName}`, `${blobName}\n${text}`);
        }
      }
      for (const [key, row] of s.tokens.rows) scan.check(`${input.name} token row`, `${key}\n${JSON.stringify(row.value)}`);
      for (const [key, row] of s.assignmentTable.rows) scan.check(`${input.name} assignment row`, `${key}\n${JSON.stringify(row.value)}`);
    }
    assert.ok(scan.controls > 0, 'control: the scan finds the secrets in the quarantined files');
    assert.deepEqual(scan.found, []);
    console.log(
      `[hostile] pipeline secrets scan: ${scan.outputs} outputs (${(scan.bytes / 1024).toFixed(0)} KiB) of ${inputs.length} inputs against ${pieces.size} pieces: 0 hits`,
    );
  });
});
