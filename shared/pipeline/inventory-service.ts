/** What the HTTP API asks of the token inventory: one token, a page of them, and retiring one. */
import { publicTokenView, retireToken, type RetireResult } from './inventory.js';
import { listInventoryPage, type InventoryPage, type InventoryQuery } from './inventory-query.js';
import type { Clock, EntityTable, Logger, TokenEntity } from './ports.js';

export interface InventoryDeps {
  tokens: EntityTable<TokenEntity>;
  clock: Clock;
  log: Logger;
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

  async retire(serial: string, reason: string): Promise<RetireResult> {
    const result = await retireToken(this.deps.tokens, serial, this.deps.clock.now().toISOString(), reason);
    if (result.status === 'retired' || result.status === 'already-retired') this.deps.log.info('Token retired', { serial });
    return result;
  }
}
