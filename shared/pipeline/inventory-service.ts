/** What the HTTP API asks of the token inventory: one token, a page of them, and retiring one. */
import type { SeedCache } from './seed-cache.js';
import { publicTokenView, retireToken, type RetireResult } from './inventory.js';
import { listInventoryPage, type InventoryPage, type InventoryQuery } from './inventory-query.js';
import type { Clock, EntityTable, HardwareOathDirectory, Logger, SecretStore, TokenEntity } from './ports.js';

export interface InventoryDeps {
  tokens: EntityTable<TokenEntity>;
  /** Where retiring disables the token's secret version. */
  secrets: Pick<SecretStore, 'disable' | 'listVersions'>;
  /** The verify seed cache: a version disabled here is dropped from it at once. */
  seeds?: SeedCache;
  clock: Clock;
  log: Logger;
  /** Graph mode: retiring a token also unassigns and deletes its device in Entra. */
  directory?: HardwareOathDirectory;
}

/**
 * A retired token's secret: disabled (unreadable, kept for recovery by an administrator), or not yet when the vault
 * could not be reached; retiring again finishes the job.
 */
export type RetireOutcome =
  Exclude<RetireResult, { secretName: string }> | (Extract<RetireResult, { secretName: string }> & { secretDisabled: boolean });

/** Where one token's secret is, for an audit: never the secret itself. */
export interface SecretLocation {
  serial: string;
  state: string;
  secretName: string;
  secretVersion: string;
  /** The recorded version's enabled flag; null when the vault no longer has that version. */
  enabled: boolean | null;
  /** Other versions of the same name still enabled (0 is what an audit expects). */
  otherEnabledVersions: number;
}

export type TokenLookup = { status: 'found'; token: ReturnType<typeof publicTokenView> } | { status: 'not-found' };

export class InventoryService {
  constructor(private readonly deps: InventoryDeps) {}

  /** State, metadata and history of one token; never its secret. */
  async get(serial: string): Promise<TokenLookup> {
    const row = await this.deps.tokens.get(serial);
    return row ? { status: 'found', token: publicTokenView(row.value) } : { status: 'not-found' };
  }

  list(query: InventoryQuery): Promise<InventoryPage> {
    return listInventoryPage(this.deps.tokens, query);
  }

  async retire(serial: string, reason: string): Promise<RetireOutcome> {
    await this.removeFromEntra(serial);
    const result = await retireToken(this.deps.tokens, serial, this.deps.clock.now().toISOString(), reason);
    if (!('secretName' in result)) return result;
    let secretDisabled = false;
    try {
      // A lost token's seed must not stay readable: disabling is what the app identity's role allows (no purge).
      this.deps.seeds?.forget(result.secretName);
      await this.deps.secrets.disable(result.secretName, result.secretVersion);
      secretDisabled = true;
    } catch (err) {
      this.deps.log.warn('Secret of a retired token not disabled yet; retire again to finish', { serial, error: (err as Error).name });
    }
    this.deps.log.info('Token retired', { serial, secretDisabled });
    return { ...result, secretDisabled };
  }

  /** Where each secret of a batch is (vault name, version, enabled) and the token's state: never a value. */
  async secretLocations(batch: string): Promise<SecretLocation[]> {
    const rows: TokenEntity[] = [];
    for await (const row of this.deps.tokens.list({ batch })) rows.push(row.value);
    rows.sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
    const locations: SecretLocation[] = [];
    for (const row of rows) {
      const versions = await this.deps.secrets.listVersions(row.secretName);
      const recorded = versions.find((v) => v.version === row.secretVersion);
      locations.push({
        serial: row.serial,
        state: row.state,
        secretName: row.secretName,
        secretVersion: row.secretVersion,
        enabled: recorded ? recorded.enabled : null,
        otherEnabledVersions: versions.filter((v) => v.enabled && v.version !== row.secretVersion).length,
      });
    }
    return locations;
  }

  /**
   * Graph mode: a retired token (lost, broken) must stop signing in, so its device leaves Entra first; only then is
   * the row retired. Both steps are idempotent, so a retire that failed half-way is simply sent again.
   */
  private async removeFromEntra(serial: string): Promise<void> {
    const { directory } = this.deps;
    if (!directory) return;
    const row = (await this.deps.tokens.get(serial))?.value;
    if (!row?.deviceId || row.state === 'retired' || row.state === 'exporting') return;
    if (row.userId && row.methodId) await directory.unassign(row.userId, row.methodId);
    await directory.deleteDevice(row.deviceId);
    this.deps.log.info('Token removed from Entra', { serial });
  }
}
