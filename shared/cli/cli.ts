/**
 * The `entra-oath` command line: inspect a seed file, convert it into Entra's
 * import CSV, print a code. Exit status: 0 clean (warnings allowed), 1 some
 * rows have errors, 2 the file could not be used at all.
 */
import { randomBytes } from 'node:crypto';
import { lstat, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { decodeBase32, decodePreSharedKeyHex, parseSecretEncoding, toCanonicalBase32, type SecretEncoding } from '../core/encoding.js';
import { FileError, hasErrors, sortProblems, type Problem } from '../core/problems.js';
import { MAX_COUNTER, MIN_SECRET_BYTES, mintSecret, parseHashAlgorithm, type OathToken } from '../core/token.js';
import { hotpCode, totpCode } from '../core/totp.js';
import { importabilityProblems, partFileName, planImport, splitRows, writeEntraCsv, type EntraRow } from '../entra/import-rules.js';
import { readAssignments, type AssignmentRow } from '../formats/assignments.js';
import { looksLikePskc } from '../formats/pskc.js';
import { readSeedFile } from '../formats/read-seed-file.js';
import { seedCsvFault, seedCsvLayout, writeSeedCsv } from '../formats/seed-writer.js';
import { checkSerial } from '../core/validate.js';
import type { KeyMaterial, SeedReadResult } from '../formats/types.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  stderrIsTTY: boolean;
  now: () => number;
}

export const EXIT_OK = 0;
export const EXIT_ROW_ERRORS = 1;
export const EXIT_FILE_UNUSABLE = 2;

const USAGE = `Usage:
  entra-oath inspect FILE [--secret-encoding base32|hex] [--reveal] [--json] [key options]
  entra-oath convert FILE --assignments CSV [--out PATH] [--max-rows N] [--json] [reading options]
  entra-oath code [--secret BASE32 | --secret-file PATH] [--at UNIX_SECONDS | --counter N] [--algorithm SHA1|SHA256|SHA512] [--digits 6|8] [--period 30|60]
  entra-oath program --serials S1,S2,... --out FILE [--algorithm SHA1|SHA256] [--digits 6|8] [--period 30|60] [--manufacturer M] [--model X]

Key options for encrypted PSKC files (a flag wins over a file, a file over the environment):
  --psk HEX | --psk-file PATH | ENTRA_OATH_PSK        pre-shared transport key, hex
  --password TEXT | --password-file PATH | ENTRA_OATH_PASSWORD
`;

const READ_OPTIONS = {
  'secret-encoding': { type: 'string' },
  psk: { type: 'string' },
  'psk-file': { type: 'string' },
  password: { type: 'string' },
  'password-file': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Thrown for usage mistakes: exit status 2 with the message and the usage text. */
class UsageError extends Error {}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'inspect':
        return await inspect(rest, io);
      case 'convert':
        return await convert(rest, io);
      case 'code':
        return await code(rest, io);
      case 'program':
        return await program(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout(USAGE);
        return command === undefined ? EXIT_FILE_UNUSABLE : EXIT_OK;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`entra-oath: ${(err as Error).message}\n${USAGE}`);
      return EXIT_FILE_UNUSABLE;
    }
    throw err;
  }
}

function parse<O extends ParseArgsConfig['options']>(args: string[], options: O) {
  return parseArgs({ args, options, allowPositionals: true, strict: true });
}

/** A path as given, with where it resolved to when it was relative: an error then says which file was looked for. */
function shownPath(path: string): string {
  return isAbsolute(path) ? path : `${path} (${resolvePath(path)})`;
}

async function readTextFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    throw new FileError('FILE_UNREADABLE', `${shownPath(path)}: the ${what} file cannot be read. Check the path and permissions.`);
  }
}

/** Flag, then file, then environment. The key never appears in any message. */
async function keyMaterial(
  values: { psk?: string; 'psk-file'?: string; password?: string; 'password-file'?: string },
  env: NodeJS.ProcessEnv,
): Promise<KeyMaterial> {
  const out: KeyMaterial = {};
  let pskHex = values.psk;
  if (pskHex === undefined && values['psk-file'] !== undefined) pskHex = (await readTextFile(values['psk-file'], 'pre-shared key')).trim();
  if (pskHex === undefined && env.ENTRA_OATH_PSK) pskHex = env.ENTRA_OATH_PSK;
  if (pskHex !== undefined) {
    const psk = decodePreSharedKeyHex(pskHex);
    if (!psk)
      throw new FileError(
        'PSKC_INVALID_KEY_OPTION',
        'The pre-shared key must be hex text of 16, 24 or 32 bytes (32, 48 or 64 hex digits).',
      );
    out.psk = psk;
  }
  let password = values.password;
  if (password === undefined && values['password-file'] !== undefined)
    password = (await readTextFile(values['password-file'], 'password')).replace(/\r?\n$/, '');
  if (password === undefined && env.ENTRA_OATH_PASSWORD) password = env.ENTRA_OATH_PASSWORD;
  if (password !== undefined) out.password = password;
  return out;
}

interface Loaded {
  result?: SeedReadResult;
  fatal?: FileError;
  file: string;
  bytes?: Uint8Array;
}

async function loadSeed(
  file: string,
  values: Parameters<typeof keyMaterial>[0] & { 'secret-encoding'?: string },
  io: CliIo,
): Promise<Loaded> {
  let bytes: Uint8Array | undefined;
  try {
    const encoding: SecretEncoding | undefined =
      values['secret-encoding'] === undefined ? undefined : parseSecretEncoding(values['secret-encoding']);
    const keys = await keyMaterial(values, io.env);
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch {
      throw new FileError('FILE_UNREADABLE', `${shownPath(file)}: the file cannot be read. Check the path and permissions.`);
    }
    const started = io.now();
    if (io.stderrIsTTY && bytes.byteLength > 1_000_000) io.stderr(`Reading ${file} (${(bytes.byteLength / 1e6).toFixed(1)} MB)...\n`);
    const result = readSeedFile(bytes, { fileName: file, secretEncoding: encoding, now: new Date(io.now()), ...keys });
    if (io.stderrIsTTY && bytes.byteLength > 1_000_000)
      io.stderr(`Read ${result.tokens.length} tokens in ${((io.now() - started) / 1000).toFixed(1)} s.\n`);
    return { result, file, bytes };
  } catch (err) {
    if (err instanceof FileError) return { fatal: err, file, bytes };
    throw err;
  }
}

function tokenJson(t: OathToken, reveal: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    serial: t.serial,
    manufacturer: t.manufacturer,
    model: t.model,
    type: t.type,
    algorithm: t.algorithm,
    digits: t.digits,
    period: t.period,
  };
  if (reveal) out.secret = toCanonicalBase32(t.secret);
  // A decimal string: JSON numbers lose exactness above 2^53 in most readers, and counters are 64-bit.
  if (t.counter !== undefined) out.counter = t.counter.toString();
  if (t.timeDriftSeconds !== undefined) out.timeDriftSeconds = t.timeDriftSeconds;
  return out;
}

function formatFor(loaded: Loaded): SeedReadResult['format'] {
  if (loaded.result) return loaded.result.format;
  return loaded.bytes && looksLikePskc(loaded.bytes) ? 'pskc' : 'csv';
}

function describeProblem(p: Problem): string {
  const where = [p.line !== undefined ? `line ${p.line}` : '', p.serial !== undefined ? `serial ${JSON.stringify(p.serial)}` : '']
    .filter(Boolean)
    .join(', ');
  return `${p.severity.toUpperCase()} ${p.code}${where ? ` (${where})` : ''}: ${p.message}`;
}

function fatalLine(err: FileError): string {
  return `entra-oath: ${err.message} [${err.code}]\n`;
}

async function inspect(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { ...READ_OPTIONS, reveal: { type: 'boolean' } });
  if (values.help) {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('inspect takes exactly one FILE');
  const loaded = await loadSeed(file, values, io);

  if (loaded.fatal) {
    if (values.json) {
      io.stdout(JSON.stringify({ file, format: formatFor(loaded), tokens: [], problems: [loaded.fatal.toProblem()] }) + '\n');
    }
    io.stderr(fatalLine(loaded.fatal));
    return EXIT_FILE_UNUSABLE;
  }
  const result = loaded.result!;
  const problems = sortProblems([
    ...result.problems,
    ...result.tokens.flatMap((t) => importabilityProblems({ ...t, secretBytes: t.secret.length }, 'warning', t.line)),
  ]);

  if (values.json) {
    const out: Record<string, unknown> = { file, format: result.format };
    if (result.secretEncoding) out.secretEncoding = result.secretEncoding;
    if (result.encodingDecidedBy) out.encodingDecidedBy = result.encodingDecidedBy;
    out.tokens = result.tokens.map((t) => tokenJson(t, values.reveal === true));
    out.problems = problems;
    io.stdout(JSON.stringify(out) + '\n');
  } else {
    io.stdout(renderInspectTable(result, problems, values.reveal === true));
  }
  return hasErrors(problems) ? EXIT_ROW_ERRORS : EXIT_OK;
}

function maskSecret(base32: string): string {
  return `${'•'.repeat(Math.min(8, base32.length))} (${base32.length} chars)`;
}

function renderInspectTable(result: SeedReadResult, problems: Problem[], reveal: boolean): string {
  const lines: string[] = [];
  lines.push(`File: ${result.file}`);
  lines.push(
    `Format: ${result.format}${result.secretEncoding ? `, secrets ${result.secretEncoding} (${result.encodingDecidedBy === 'forced' ? 'forced' : 'detected'})` : ''}`,
  );
  lines.push(
    `Tokens: ${result.tokens.length} valid, ${problems.filter((p) => p.severity === 'error').length} errors, ${problems.filter((p) => p.severity === 'warning').length} warnings`,
  );
  lines.push('');
  // HOTP counters get a column only when the file gives one, so TOTP files keep their usual table.
  const withCounter = result.tokens.some((t) => t.counter !== undefined);
  const header = [
    'serial',
    'manufacturer',
    'model',
    'type',
    'algorithm',
    'digits',
    'period',
    ...(withCounter ? ['counter'] : []),
    'secret',
  ];
  const rows = result.tokens.map((t) => {
    const b32 = toCanonicalBase32(t.secret);
    const counter = withCounter ? [t.counter?.toString() ?? ''] : [];
    return [
      t.serial,
      t.manufacturer,
      t.model,
      t.type,
      t.algorithm,
      String(t.digits),
      String(t.period),
      ...counter,
      reveal ? b32 : maskSecret(b32),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  lines.push(fmt(header));
  lines.push(fmt(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) lines.push(fmt(r));
  if (problems.length > 0) {
    lines.push('');
    lines.push('Problems:');
    for (const p of problems) lines.push(`  ${describeProblem(p)}`);
  }
  return lines.join('\n') + '\n';
}

async function convert(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    ...READ_OPTIONS,
    assignments: { type: 'string' },
    out: { type: 'string' },
    'max-rows': { type: 'string' },
  });
  if (values.help) {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('convert takes exactly one FILE');
  let maxRows: number | undefined;
  if (values['max-rows'] !== undefined) {
    if (!/^\d+$/.test(values['max-rows']) || Number(values['max-rows']) < 1)
      throw new UsageError('--max-rows must be a whole number of at least 1');
    maxRows = Number(values['max-rows']);
  }

  const fail = (err: FileError): number => {
    if (values.json) io.stderr(JSON.stringify({ file, exported: [], notExported: [err.toProblem()], unassigned: [] }) + '\n');
    else io.stderr(fatalLine(err));
    return EXIT_FILE_UNUSABLE;
  };

  const loaded = await loadSeed(file, values, io);
  if (loaded.fatal) return fail(loaded.fatal);
  const result = loaded.result!;

  let assignments: AssignmentRow[];
  const listProblems: Problem[] = [];
  if (values.assignments !== undefined) {
    try {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(values.assignments));
      } catch {
        throw new FileError(
          'FILE_UNREADABLE',
          `${shownPath(values.assignments)}: the assignment list cannot be read. Check the path and permissions.`,
        );
      }
      const list = readAssignments(bytes, values.assignments);
      assignments = list.rows;
      listProblems.push(...list.problems);
    } catch (err) {
      if (err instanceof FileError) return fail(err);
      throw err;
    }
  } else if (result.embeddedAssignments.length > 0) {
    assignments = result.embeddedAssignments;
  } else {
    throw new UsageError('convert needs --assignments CSV (upn,serial number), unless the seed file itself fills the upn column');
  }

  const plan = planImport(
    result.tokens.map((t) => ({ ...t, secretBytes: t.secret.length })),
    assignments,
  );
  const bySerial = new Map(result.tokens.map((t) => [t.serial, t]));
  const rows: EntraRow[] = plan.exported.map((r) => {
    const t = bySerial.get(r.serial)!;
    return {
      upn: r.upn,
      serial: r.serial,
      secretBase32: toCanonicalBase32(t.secret),
      period: t.period,
      manufacturer: t.manufacturer,
      model: t.model,
    };
  });

  const parts = splitRows(rows, maxRows);
  const outputs: string[] = [];
  if (values.out !== undefined) {
    for (const [i, part] of parts.entries()) {
      const path = partFileName(values.out, i, parts.length);
      await writeSecretFile(path, writeEntraCsv(part));
      outputs.push(path);
    }
  } else {
    if (parts.length > 1) throw new UsageError('--max-rows needs --out PATH to name the part files');
    io.stdout(writeEntraCsv(rows));
  }

  const allProblems = [...result.problems, ...listProblems, ...plan.problems];
  const notExported = allProblems.filter((p) => p.severity === 'error');
  const warnings = allProblems.filter((p) => p.severity !== 'error');
  if (values.json) {
    io.stderr(
      JSON.stringify({
        file,
        outputs,
        exported: plan.exported.map((r) => ({ upn: r.upn, serial: r.serial })),
        notExported,
        warnings,
        unassigned: plan.unassigned,
      }) + '\n',
    );
  } else {
    const lines = [
      `Exported ${plan.exported.length} token${plan.exported.length === 1 ? '' : 's'}${outputs.length ? ` to ${outputs.join(', ')}` : ''}.`,
    ];
    if (notExported.length)
      lines.push(
        `Not exported (${notExported.length} problem${notExported.length === 1 ? '' : 's'}):`,
        ...notExported.map((p) => `  ${describeProblem(p)}`),
      );
    if (warnings.length) lines.push('Warnings:', ...warnings.map((p) => `  ${describeProblem(p)}`));
    if (plan.unassigned.length) lines.push(`Unassigned tokens (not exported, not an error): ${plan.unassigned.join(', ')}`);
    if (outputs.length) lines.push('The import file holds secrets: upload it in the Entra admin center, then delete it.');
    io.stderr(lines.join('\n') + '\n');
  }
  return hasErrors(allProblems) ? EXIT_ROW_ERRORS : EXIT_OK;
}

/**
 * Writes a file that holds secrets, readable by its owner only. `mode` on an
 * existing file keeps that file's old mode (say 0644), so the content goes to
 * a new file created 0600 next to the target ('wx': never an existing file or
 * a planted link) and is renamed over it; on failure the new file is removed.
 */
async function writeSecretFile(path: string, content: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (err) {
    await unlink(temporary).catch(() => undefined);
    throw err;
  }
}

async function code(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    secret: { type: 'string' },
    'secret-file': { type: 'string' },
    at: { type: 'string' },
    counter: { type: 'string' },
    algorithm: { type: 'string' },
    digits: { type: 'string' },
    period: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError('code takes no positional arguments');
  let secretText = values.secret;
  if (secretText === undefined && values['secret-file'] !== undefined) {
    try {
      secretText = (await readFile(values['secret-file'], 'utf8')).trim();
    } catch {
      throw new UsageError(`${shownPath(values['secret-file'])}: the secret file cannot be read`);
    }
  }
  secretText ??= io.env.ENTRA_OATH_SECRET;
  if (!secretText) throw new UsageError('code needs --secret, --secret-file or ENTRA_OATH_SECRET');
  const secret = decodeBase32(secretText);
  if (!secret) throw new UsageError('the secret is not valid base32');
  if (secret.length < MIN_SECRET_BYTES) throw new UsageError('the secret is shorter than 128 bits (RFC 4226 minimum)');
  const algorithm = parseHashAlgorithm(values.algorithm ?? 'SHA1');
  if (!algorithm) throw new UsageError('--algorithm must be SHA1, SHA256 or SHA512');
  const digits = Number(values.digits ?? '6');
  if (digits !== 6 && digits !== 8) throw new UsageError('--digits must be 6 or 8');
  if (values.counter !== undefined) {
    // HOTP: the code for this counter value (what `inspect --json` prints as "counter" for an HOTP token).
    if (values.at !== undefined || values.period !== undefined) throw new UsageError('--counter (HOTP) takes neither --at nor --period');
    if (!/^\d{1,20}$/.test(values.counter) || BigInt(values.counter) > MAX_COUNTER)
      throw new UsageError('--counter must be a whole number from 0 to 2^64-1');
    io.stdout(hotpCode({ secret, algorithm, digits }, BigInt(values.counter)) + '\n');
    return EXIT_OK;
  }
  const period = Number(values.period ?? '30');
  if (!Number.isInteger(period) || period < 1) throw new UsageError('--period must be a whole number of seconds');
  const at = values.at === undefined ? Math.floor(io.now() / 1000) : Number(values.at);
  if (!Number.isInteger(at) || at < 0) throw new UsageError('--at must be whole UNIX seconds');
  io.stdout(totpCode({ secret, algorithm, digits, period }, at) + '\n');
  return EXIT_OK;
}

/**
 * Mints fresh secrets for programmable tokens, offline, into a new seed file (0600) that `inspect`, `convert` and
 * the pipeline's ingest read: the file is the only copy of the secrets until it is ingested or the tokens burned.
 */
async function program(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    serials: { type: 'string' },
    out: { type: 'string' },
    algorithm: { type: 'string' },
    digits: { type: 'string' },
    period: { type: 'string' },
    manufacturer: { type: 'string' },
    model: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError('program takes no positional arguments');
  if (values.serials === undefined) throw new UsageError('program needs --serials S1,S2,...');
  if (values.out === undefined) throw new UsageError('program needs --out FILE (the secrets are never printed)');
  const algorithm = values.algorithm ?? 'SHA1';
  if (algorithm !== 'SHA1' && algorithm !== 'SHA256') throw new UsageError('--algorithm must be SHA1 or SHA256');
  const digits = Number(values.digits ?? '6');
  if (digits !== 6 && digits !== 8) throw new UsageError('--digits must be 6 or 8');
  const period = Number(values.period ?? '30');
  if (period !== 30 && period !== 60) throw new UsageError('--period must be 30 or 60');
  const manufacturer = values.manufacturer ?? '';
  const model = values.model ?? '';

  const serials = values.serials.split(',').map((s) => s.trim());
  const seen = new Set<string>();
  for (const [i, serial] of serials.entries()) {
    const refused = checkSerial(serial);
    if (refused)
      throw new UsageError(`--serials: entry ${i + 1} is not a serial a token can have: ${refused.message.replace(/^Line \?: /, '')}`);
    if (seen.has(serial)) throw new UsageError(`--serials: ${JSON.stringify(serial)} is named twice`);
    seen.add(serial);
  }
  const tokens: OathToken[] = serials.map((serial) => ({
    serial,
    manufacturer,
    model,
    type: 'totp',
    algorithm,
    digits,
    period,
    secret: mintSecret(algorithm),
  }));
  const fault = seedCsvFault(tokens);
  if (fault) throw new UsageError(fault);
  // Never over an existing file: it may hold the only copy of secrets minted earlier.
  const exists = await lstat(values.out).then(
    () => true,
    () => false,
  );
  if (exists)
    throw new UsageError(
      `${values.out} already exists; program never overwrites a file (it may hold secrets minted earlier). Choose a new name.`,
    );
  await writeSecretFile(values.out, writeSeedCsv(tokens));
  const layout = seedCsvLayout(tokens);
  const dropped =
    layout === 'privacyidea-csv' && (manufacturer || model)
      ? " privacyIDEA's layout has no manufacturer or model column: they were not written."
      : '';
  io.stderr(
    `Minted ${tokens.length} token${tokens.length === 1 ? '' : 's'} (${algorithm}, ${digits} digits, ${period} s) into ${values.out}, readable by you only, in the ${layout === 'csv' ? 'header CSV (Entra columns, base32)' : 'privacyIDEA OATH CSV (hex)'} layout.${dropped}\n` +
      'The file holds the only copy of the secrets: burn the tokens from it, drop it into the seeds container (the pipeline deletes it once ingested), then delete any copy left.\n',
  );
  return EXIT_OK;
}
