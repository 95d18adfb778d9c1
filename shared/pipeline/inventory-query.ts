/** Paged listing of the token inventory for GET /api/tokens. */
import { publicTokenView } from './inventory.js';
import type { EntityTable, TokenEntity, TokenState } from './ports.js';

const STATES: readonly TokenState[] = ['stored', 'exporting', 'exported', 'imported', 'retired'];

export interface InventoryQuery {
  state?: string;
  batch?: string;
  pageSize?: string;
  continuationToken?: string;
}

export async function listInventoryPage(tokens: EntityTable<TokenEntity>, query: InventoryQuery): Promise<{ items: ReturnType<typeof publicTokenView>[]; continuationToken: string | null } | { error: string }> {
  const where: Partial<Record<keyof TokenEntity & string, string>> = {};
  if (query.state !== undefined) {
    if (!(STATES as readonly string[]).includes(query.state)) return { error: `state must be one of ${STATES.join(', ')}.` };
    where.state = query.state;
  }
  if (query.batch !== undefined) where.batch = query.batch;
  const pageSize = query.pageSize === undefined ? 100 : Number(query.pageSize);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) return { error: 'pageSize must be a whole number from 1 to 1000.' };
  let after: string | undefined;
  if (query.continuationToken !== undefined) {
    after = Buffer.from(query.continuationToken, 'base64url').toString('utf8');
    if (after.length === 0) return { error: 'continuationToken is not valid.' };
  }
  // Sorted by serial (UTF-16 code units), not in the table's escaped-key order, so pages do not depend on the
  // escaping; the continuation token is the last serial of the page, and the next page starts after it.
  const all: TokenEntity[] = [];
  for await (const row of tokens.list(where)) all.push(row.value);
  all.sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
  const start = after === undefined ? 0 : all.findIndex((t) => t.serial > after);
  const page = start < 0 ? [] : all.slice(start, start + pageSize);
  const more = start >= 0 && start + pageSize < all.length;
  return { items: page.map(publicTokenView), continuationToken: more ? Buffer.from(page[page.length - 1]!.serial, 'utf8').toString('base64url') : null };
}
