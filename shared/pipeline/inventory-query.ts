/**
 * Paged reads of the token inventory (GET /api/tokens and the console). Every page is one filtered, key-ordered
 * read of the table (EntityTable.page): its cost does not grow with the inventory, which may hold 100,000 tokens.
 */
import { publicTokenView } from './inventory.js';
import type { EntityTable, TokenEntity, TokenState } from './ports.js';

export const TOKEN_STATES: readonly TokenState[] = [
  'stored',
  'exporting',
  'exported',
  'imported',
  'importFailed',
  'assigned',
  'activated',
  'retired',
];
export const PAGE_SIZE = { default: 100, max: 1000 } as const;

export interface InventoryQuery {
  state?: TokenState;
  batch?: string;
  /** Tokens exported for this user (the UPN exactly as the assignment gave it). */
  upn?: string;
  /** Serials starting with this text (a key range of the table). */
  serialPrefix?: string;
  pageSize: number;
  /** List the serials after this one (from a continuation token). */
  after?: string;
}

export interface InventoryPage {
  items: ReturnType<typeof publicTokenView>[];
  /** null on the last page. */
  continuationToken: string | null;
}

/** The continuation token of a page ending with this serial. */
export function continuationAfter(serial: string): string {
  return Buffer.from(serial, 'utf8').toString('base64url');
}

/** The serial a continuation token carries; undefined when the token is not one this API handed out. */
export function serialAfter(continuationToken: string): string | undefined {
  const after = Buffer.from(continuationToken, 'base64url').toString('utf8');
  return after.length === 0 || continuationAfter(after) !== continuationToken.replace(/=+$/, '') ? undefined : after;
}

/** One page in the table's key order: the table filters, and the continuation token carries the page's last serial. */
export async function listInventoryPage(tokens: EntityTable<TokenEntity>, query: InventoryQuery): Promise<InventoryPage> {
  const where: Partial<Record<keyof TokenEntity & string, string>> = {};
  if (query.state !== undefined) where.state = query.state;
  if (query.batch !== undefined) where.batch = query.batch;
  if (query.upn !== undefined) where.upn = query.upn;
  const page = await tokens.page({ where, keyPrefix: query.serialPrefix, after: query.after, limit: query.pageSize });
  const last = page.rows[page.rows.length - 1];
  return {
    items: page.rows.map((r) => publicTokenView(r.value)),
    continuationToken: page.more && last ? continuationAfter(last.key) : null,
  };
}
