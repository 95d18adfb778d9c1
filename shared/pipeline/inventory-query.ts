/** Paged listing of the token inventory for GET /api/tokens. */
import { publicTokenView } from './inventory.js';
import type { EntityTable, TokenEntity, TokenState } from './ports.js';

export const TOKEN_STATES: readonly TokenState[] = ['stored', 'exporting', 'exported', 'imported', 'importFailed', 'assigned', 'activated', 'retired'];
export const PAGE_SIZE = { default: 100, max: 1000 } as const;

export interface InventoryQuery {
  state?: TokenState;
  batch?: string;
  pageSize: number;
  /** List the serials after this one (from a continuation token). */
  after?: string;
}

export interface InventoryPage {
  items: ReturnType<typeof publicTokenView>[];
  /** null on the last page. */
  continuationToken: string | null;
}

/** The serial a continuation token carries; undefined when the token is not one this API handed out. */
export function serialAfter(continuationToken: string): string | undefined {
  const after = Buffer.from(continuationToken, 'base64url').toString('utf8');
  return after.length === 0 ? undefined : after;
}

export async function listInventoryPage(tokens: EntityTable<TokenEntity>, query: InventoryQuery): Promise<InventoryPage> {
  const where: Partial<Record<keyof TokenEntity & string, string>> = {};
  if (query.state !== undefined) where.state = query.state;
  if (query.batch !== undefined) where.batch = query.batch;
  // Ordered by serial (code-unit order) here, whatever order the table returns; the continuation token carries
  // the last serial of the page.
  const all: TokenEntity[] = [];
  for await (const row of tokens.list(where)) all.push(row.value);
  all.sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
  const after = query.after;
  const start = after === undefined ? 0 : all.findIndex((t) => t.serial > after);
  const page = start < 0 ? [] : all.slice(start, start + query.pageSize);
  const more = start >= 0 && start + query.pageSize < all.length;
  return { items: page.map(publicTokenView), continuationToken: more ? Buffer.from(page[page.length - 1]!.serial, 'utf8').toString('base64url') : null };
}
