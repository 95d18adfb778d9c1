/**
 * The composition root: config, adapters and services, built once per process
 * on first use. Function files import this lazily, so a cold start loads the
 * Azure SDKs only when a function first needs them.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { systemClock } from '../pipeline/clock.js';
import { loadConfig, type PipelineConfig } from '../config.js';
import { createAzureAdapters, createHardwareOathDirectory, type AzureAdapters } from '../azure/clients.js';
import { AssignmentService } from '../pipeline/assignments.js';
import { BuildService } from '../pipeline/build.js';
import { BuildQueue } from '../pipeline/build-queue.js';
import { CorrectionService } from '../pipeline/corrections.js';
import { IngestService } from '../pipeline/ingest.js';
import { InventoryService } from '../pipeline/inventory-service.js';
import type {
  AssignmentEntity,
  BlobStore,
  Clock,
  EntityTable,
  HardwareOathDirectory,
  Logger,
  RecordStore,
  TokenEntity,
} from '../pipeline/ports.js';
import { ProgramService } from '../pipeline/program.js';
import { Reconciler } from '../pipeline/reconcile.js';
import { ResultsService } from '../pipeline/results.js';
import { UploadService } from '../pipeline/uploads.js';
import { SeedCache } from '../pipeline/seed-cache.js';
import { PacedVault } from '../pipeline/vault.js';
import { VaultBudgetLedger, type BudgetLedgerRecord } from '../pipeline/vault-budget.js';
import { vaultBudgetLedgerName } from '../pipeline/blob-names.js';
import type { IngestCheckpointRecord } from '../pipeline/ingest-checkpoint.js';
import { BlobRecordStore } from '../azure/blob-records.js';
import { VerifyService } from '../pipeline/verify.js';
import { checkHealth } from './health.js';
import { guarded, invocationLogger, routes, type RouteName } from './http.js';

export interface AppContext {
  config: PipelineConfig;
  blobs: BlobStore;
  vault: PacedVault;
  tokens: EntityTable<TokenEntity>;
  assignments: EntityTable<AssignmentEntity>;
  clock: Clock;
  /** Microsoft Graph's hardware OATH directory: only in Graph mode (IMPORT_MODE=graph). */
  directory?: HardwareOathDirectory;
  /** Decoded seeds of pinned versions, shared by every verify on this instance (pipeline/seed-cache.ts); none: no cache. */
  seeds?: SeedCache;
  /** Ingest checkpoints in the `state` container (none: an ingest starts from the top each time). */
  checkpoints?: RecordStore<IngestCheckpointRecord>;
}

/** What a function binding adds to its invocation's services. */
export interface InvocationBindings {
  /** Queues the rest of a seed file's ingest for a new invocation (the continuation queue's output binding). */
  handOff?: (blobName: string) => void;
}

let shared: Promise<AppContext> | undefined;

export function getAppContext(): Promise<AppContext> {
  shared ??= build().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

async function build(): Promise<AppContext> {
  const config = loadConfig();
  const adapters = await createAzureAdapters(config, { secretTimeoutMs: config.vaultTimeoutMs });
  const context = composeAppContext(config, adapters, systemClock);
  // The Graph adapter (and its credential) is loaded only in Graph mode.
  if (config.importMode === 'graph') context.directory = await createHardwareOathDirectory(config);
  return context;
}

/** One app instance over its adapters: what every function of a process shares (tests build several). */
export function composeAppContext(config: PipelineConfig, adapters: AzureAdapters, clock: Clock): AppContext {
  // One vault pacer per process, claiming its calls from the ledger every instance shares (pipeline/vault-budget.ts).
  const ledger = new VaultBudgetLedger({
    records: new BlobRecordStore<BudgetLedgerRecord>(adapters.blobs, config.containers.state),
    key: vaultBudgetLedgerName(new URL(config.keyVaultUrl).host),
    clock,
  });
  const vault = new PacedVault(adapters.secrets, {
    createBudget: config.vaultCreateBudget,
    readBudget: config.vaultReadBudget,
    retry: { baseDelayMs: config.vaultRetryBaseMs },
    ledger,
    interactiveShare: config.vaultInteractiveShare,
    clock,
  });
  const checkpoints = new BlobRecordStore<IngestCheckpointRecord>(adapters.blobs, config.containers.state);
  return {
    config,
    blobs: adapters.blobs,
    vault,
    tokens: adapters.tokens,
    assignments: adapters.assignments,
    clock,
    seeds: new SeedCache(clock),
    checkpoints,
  };
}

/** Services are cheap: built per invocation so they log through that invocation. */
export function services(ctx: AppContext, log: Logger, bindings: InvocationBindings = {}) {
  const { config } = ctx;
  const ingest = new IngestService({
    blobs: ctx.blobs,
    vault: ctx.vault,
    tokens: ctx.tokens,
    clock: ctx.clock,
    log,
    containers: config.containers,
    transportKeyPrefix: config.transportKeyPrefix,
    defaultTransportKeySecret: config.defaultTransportKeySecret,
    maxSeedFileBytes: config.maxSeedFileBytes,
    recoverDeletedSecrets: config.recoverDeletedSecrets,
    ...(ctx.checkpoints && { checkpoints: ctx.checkpoints }),
    invocationBudgetMs: config.ingestInvocationBudgetSeconds * 1000,
    ...(bindings.handOff && { handOff: bindings.handOff }),
  });
  const assignments = new AssignmentService({
    blobs: ctx.blobs,
    assignments: ctx.assignments,
    tokens: ctx.tokens,
    clock: ctx.clock,
    log,
    containers: config.containers,
    maxFileBytes: config.maxSeedFileBytes,
  });
  const build = new BuildService({
    blobs: ctx.blobs,
    vault: ctx.vault,
    tokens: ctx.tokens,
    assignments: ctx.assignments,
    clock: ctx.clock,
    log,
    containers: config.containers,
    maxRows: config.importMaxRows,
    ...(ctx.directory && {
      graph: {
        directory: ctx.directory,
        allowPrivilegedUsers: config.graphAllowPrivilegedUsers,
        ...(config.graphAllowedGroupId && { allowedGroupId: config.graphAllowedGroupId }),
      },
    }),
  });
  const buildQueue = new BuildQueue({
    blobs: ctx.blobs,
    clock: ctx.clock,
    log,
    container: config.containers.reports,
    settleSeconds: config.buildSettleSeconds,
  });
  const results = new ResultsService({
    blobs: ctx.blobs,
    tokens: ctx.tokens,
    clock: ctx.clock,
    log,
    containers: config.containers,
    maxFileBytes: config.maxSeedFileBytes,
  });
  const reconciler = new Reconciler({
    blobs: ctx.blobs,
    tokens: ctx.tokens,
    ingest,
    assignments,
    clock: ctx.clock,
    log,
    containers: config.containers,
    minAgeMinutes: config.reconcileMinAgeMinutes,
    ...(ctx.checkpoints && { checkpoints: ctx.checkpoints }),
    ...(ctx.directory && { directory: ctx.directory }),
  });
  // A person waits for these: the vault's reserved interactive share, never behind an ingest.
  const verify = new VerifyService({
    tokens: ctx.tokens,
    secrets: ctx.vault.interactive,
    seeds: ctx.seeds,
    clock: ctx.clock,
    log,
    lockoutLimit: config.lockoutLimit,
    lockoutMinutes: config.lockoutMinutes,
    lockoutMaxMinutes: config.lockoutMaxMinutes,
    ...(ctx.directory && { directory: ctx.directory, activateFromSeed: config.graphActivateFromSeed }),
  });
  const inventory = new InventoryService({
    tokens: ctx.tokens,
    secrets: ctx.vault.interactive,
    seeds: ctx.seeds,
    clock: ctx.clock,
    log,
    ...(ctx.directory && { directory: ctx.directory }),
  });
  const uploads = new UploadService({
    blobs: ctx.blobs,
    tokens: ctx.tokens,
    clock: ctx.clock,
    log,
    importsContainer: config.containers.imports,
  });
  // Cached per process, not per invocation (shared/app/health.ts).
  const health = { check: () => checkHealth(ctx) };
  const program = new ProgramService({
    vault: ctx.vault,
    seeds: ctx.seeds,
    tokens: ctx.tokens,
    blobs: ctx.blobs,
    clock: ctx.clock,
    log,
    containers: config.containers,
    issuer: config.otpauthIssuer,
  });
  const corrections = new CorrectionService({
    blobs: ctx.blobs,
    tokens: ctx.tokens,
    assignments: ctx.assignments,
    clock: ctx.clock,
    log,
    importsContainer: config.containers.imports,
    ...(ctx.directory && { directory: ctx.directory }),
  });
  return {
    log,
    ingest,
    assignments,
    build,
    buildQueue,
    results,
    corrections,
    reconciler,
    verify,
    inventory,
    uploads,
    health,
    program,
    programLimits: { maxTokens: config.programMaxTokens, maxBodyBytes: config.programMaxBodyBytes },
    vaultName: new URL(config.keyVaultUrl).host,
  };
}

export type Services = ReturnType<typeof services>;

/** Answers an HTTP request with the named route over this invocation's services. */
export function serveHttp(route: RouteName, request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return guarded(context, async () => routes[route](request, services(await getAppContext(), invocationLogger(context))));
}
