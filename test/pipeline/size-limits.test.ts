/**
 * Size limits hold before content is loaded (issue 11): an input blob over the limit is refused on its properties,
 * and a read never loads more than the limit and one byte, even when the blob grew after its properties were read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import type { AssignmentEntity, Logger, ReadBlobOptions, TokenEntity } from '../../shared/pipeline/ports.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';

const LIMIT = 1000;
const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };

/** Records how many content bytes each read handed to the service. */
class CountingBlobStore extends MemoryBlobStore {
  readonly loaded: { name: string; bytes: number }[] = [];

  override async read(container: string, name: string, options?: ReadBlobOptions) {
    const blob = await super.read(container, name, options);
    if (blob) this.loaded.push({ name, bytes: blob.bytes.length });
    return blob;
  }
}

function harness() {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  const blobs = new CountingBlobStore(clock);
  const vault = new PacedVault(new MemorySecretStore(), { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
  const tokens = new MemoryTable<TokenEntity>();
  const log: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const ingest = new IngestService({
    blobs,
    vault,
    tokens,
    clock,
    log,
    containers,
    transportKeyPrefix: 'transport-',
    maxSeedFileBytes: LIMIT,
    recoverDeletedSecrets: false,
    leaseWaitMs: 200,
  });
  const assignments = new AssignmentService({
    blobs,
    assignments: new MemoryTable<AssignmentEntity>(),
    tokens,
    clock,
    log,
    containers,
    maxFileBytes: LIMIT,
  });
  return { blobs, ingest, assignments };
}

/** A valid-looking list of 10 times the limit. */
function bigAssignmentList(): string {
  let text = 'upn,serial number\n';
  for (let i = 0; text.length < 10 * LIMIT; i++) text += `user${i}@contoso.com,${100000 + i}\n`;
  return text;
}

function codes(blobs: MemoryBlobStore, reportName: string): string[] {
  return (JSON.parse(blobs.text('reports', reportName)!) as { problems: { code: string }[] }).problems.map((p) => p.code);
}

/** Makes properties() report the size the blob had before someone replaced it with a larger one. */
function staleProperties(blobs: MemoryBlobStore, size: number): void {
  const properties = blobs.properties.bind(blobs);
  blobs.properties = async (c, n) => {
    const info = await properties(c, n);
    return info && { ...info, contentLength: size };
  };
}

describe('size limits before content is loaded', () => {
  it('refuses an assignment list 10x the limit on its properties, without reading it', async () => {
    const h = harness();
    await h.blobs.write('assignments', 'big.csv', bigAssignmentList());
    const r = await h.assignments.ingest('big.csv');
    assert.equal(r.outcome, 'rejected');
    assert.deepEqual(codes(h.blobs, r.reportName!), ['FILE_TOO_LARGE']);
    assert.deepEqual(
      h.blobs.loaded.filter((l) => l.name === 'big.csv'),
      [],
      'no content of big.csv was loaded',
    );
    assert.deepEqual(h.blobs.names('assignments'), []);
    assert.equal(h.blobs.names('quarantine').length, 1, 'kept in quarantine for the administrator');
  });

  it('loads at most the limit and one byte of an assignment list that grew after its properties were read', async () => {
    const h = harness();
    await h.blobs.write('assignments', 'grown.csv', bigAssignmentList());
    staleProperties(h.blobs, 100);
    const r = await h.assignments.ingest('grown.csv');
    assert.deepEqual(codes(h.blobs, r.reportName!), ['FILE_TOO_LARGE']);
    assert.ok(
      h.blobs.loaded.every((l) => l.bytes <= LIMIT + 1),
      JSON.stringify(h.blobs.loaded),
    );
  });

  it('refuses a seed file 10x the limit on its properties, without reading it', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'big.csv', 'x'.repeat(10 * LIMIT));
    const r = await h.ingest.ingest('big.csv');
    assert.equal(r.outcome, 'rejected');
    assert.deepEqual(codes(h.blobs, r.reportName!), ['FILE_TOO_LARGE']);
    assert.deepEqual(
      h.blobs.loaded.filter((l) => l.name === 'big.csv'),
      [],
    );
    assert.deepEqual(h.blobs.names('seeds'), []);
  });

  it('loads at most the limit and one byte of a seed file that grew after its properties were read', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'grown.csv', 'x'.repeat(10 * LIMIT));
    staleProperties(h.blobs, 100);
    const r = await h.ingest.ingest('grown.csv');
    assert.deepEqual(codes(h.blobs, r.reportName!), ['FILE_TOO_LARGE']);
    assert.ok(
      h.blobs.loaded.every((l) => l.bytes <= LIMIT + 1),
      JSON.stringify(h.blobs.loaded),
    );
  });
});
