/**
 * EntityTable over @azure/data-tables (Azure Table Storage or Azurite): PartitionKey = escapeTableKey(key), so each
 * row is its own partition, and RowKey = the table's row kind ('token', 'assignment').
 *
 * A partition per row because every access is by key or a filtered scan of the whole table: no query reads a
 * range of one partition, so one shared partition gains nothing and, in Azurite, costs a scan of that partition
 * for each point read or insert (bench/azurite-partitions.ts). Rows written before this layout (PartitionKey =
 * the kind, RowKey = the escaped key) are moved on an instance's first call (moveLegacyRows).
 *
 * Two gaps between the Tables model and the ports' plain records are closed here:
 * - Tables store no nulls (a null property is simply absent); fields named in `nullableFields` read back as null.
 * - Integers beyond Int32 would be rejected as Int32; they are written as Double (exact up to 2^53) and Int64
 *   values read back as numbers.
 */
import { odata, type TableClient, type TableEntity, type TableEntityResult } from '@azure/data-tables';
import { ConflictError, PreconditionFailedError } from '../pipeline/errors.js';
import type { Entity, EntityPage, EntityTable, EntityValue, PageQuery, Versioned } from '../pipeline/ports.js';
import { mapPool } from '../pipeline/map-pool.js';
import { escapeTableKey, unescapeTableKey } from './table-keys.js';
import { callSignal, errorCodeOf, pagesOf, rethrow, statusOf } from './errors.js';

/** Keys of T (without its index signature) whose type admits null. */
export type NullableKeys<T> = {
  [K in keyof T as string extends K ? never : null extends T[K] ? K : never]: T[K];
} extends infer R
  ? keyof R & string
  : never;

export interface AzureEntityTableOptions<T extends Entity> {
  /** Fields that may be null: absent properties of these read back as null. */
  nullableFields?: readonly NullableKeys<T>[];
  /** Per-call deadline in ms (SDK retries included); 0 disables. Default 30 s. */
  timeoutMs?: number;
  /** Page size of list(); the service maximum (1000) by default. Small values are for tests. */
  listPageSize?: number;
}

/** Rows of the earlier layout moved at once on an instance's first call. */
const LEGACY_MOVES_IN_FLIGHT = 16;

const SYSTEM_FIELDS = new Set(['partitionKey', 'rowKey', 'timestamp', 'etag']);
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

type WireValue = EntityValue | { value: number; type: 'Double' };

function toWire(value: Entity): Record<string, WireValue> {
  const wire: Record<string, WireValue> = {};
  for (const [field, v] of Object.entries(value)) {
    if (SYSTEM_FIELDS.has(field)) throw new Error(`Entity field name ${field} is reserved by Azure Tables.`);
    // Absent is how Tables stores null; sending null is also dropped by the service.
    if (v === null || v === undefined) continue;
    wire[field] = typeof v === 'number' && Number.isInteger(v) && (v < INT32_MIN || v > INT32_MAX) ? { value: v, type: 'Double' } : v;
  }
  return wire;
}

function fromWire(raw: Record<string, unknown>, nullable: readonly string[]): Entity {
  const out: Entity = {};
  for (const field of nullable) out[field] = null;
  for (const [field, v] of Object.entries(raw)) {
    if (SYSTEM_FIELDS.has(field) || field.startsWith('odata.') || field.includes('@odata.')) continue;
    if (typeof v === 'bigint') out[field] = Number(v);
    else if (v instanceof Date) out[field] = v.toISOString();
    else if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[field] = v;
    else if (typeof v === 'object' && 'value' in v) out[field] = String(v.value);
  }
  return out;
}

export class AzureEntityTable<T extends Entity> implements EntityTable<T> {
  private readonly nullable: readonly string[];
  private readonly timeoutMs: number;
  private readonly listPageSize: number;
  /** The move of rows of the earlier layout, once per instance (again after a failure). */
  private legacyMoved: Promise<void> | undefined;

  constructor(
    private readonly client: TableClient,
    /** The RowKey of every row of this table. */
    private readonly rowKind: string,
    options: AzureEntityTableOptions<T> = {},
  ) {
    this.nullable = options.nullableFields ?? [];
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.listPageSize = options.listPageSize ?? 1000;
  }

  private entity(key: string, value: T): TableEntity<Record<string, WireValue>> {
    return { ...toWire(value), partitionKey: escapeTableKey(key), rowKey: this.rowKind };
  }

  private versioned(raw: TableEntityResult<Record<string, unknown>>): Versioned<T> {
    return { key: unescapeTableKey(raw.partitionKey ?? ''), value: fromWire(raw, this.nullable) as T, etag: raw.etag };
  }

  /** Resolves once no row of the earlier layout is left; every call waits for it. */
  private ready(): Promise<void> {
    this.legacyMoved ??= this.moveLegacyRows().catch((error: unknown) => {
      this.legacyMoved = undefined;
      throw error;
    });
    return this.legacyMoved;
  }

  /**
   * Moves the rows of the earlier layout (PartitionKey = the kind, RowKey = the escaped key) to this one: each is
   * inserted at its new place, then deleted at its old place if unchanged. Several instances may run it at once: a
   * row already at its new place was moved (and perhaps updated since) by another, and is kept as it is.
   */
  private async moveLegacyRows(): Promise<void> {
    // A row of this layout whose key is the kind itself sits where its legacy row would: nothing to move.
    const filter = odata`PartitionKey eq ${this.rowKind} and RowKey ne ${this.rowKind}`;
    const pages = this.client
      .listEntities<Record<string, unknown>>({ queryOptions: { filter } })
      .byPage({ maxPageSize: this.listPageSize });
    for await (const page of pagesOf(pages, `list earlier-layout entities ${this.client.tableName}`)) {
      await mapPool(page, LEGACY_MOVES_IN_FLIGHT, async (raw) => {
        const key = unescapeTableKey(raw.rowKey ?? '');
        try {
          await this.client.createEntity(this.entity(key, fromWire(raw, this.nullable) as T), { abortSignal: callSignal(this.timeoutMs) });
        } catch (error) {
          if (statusOf(error) !== 409) rethrow(error, this.what('move entity', key));
        }
        try {
          await this.client.deleteEntity(this.rowKind, raw.rowKey ?? '', { etag: raw.etag, abortSignal: callSignal(this.timeoutMs) });
        } catch (error) {
          // Gone: another instance moved it. Changed since it was listed: only an instance of the earlier
          // version writes that layout, and running both at once is not supported (the README says to stop it
          // first); the row is left where it is rather than deleted.
          const status = statusOf(error);
          if (status !== 404 && status !== 412) rethrow(error, this.what('delete earlier-layout entity', key));
        }
      });
    }
  }

  private what(operation: string, key: string): string {
    return `${operation} ${this.client.tableName}/${key}`;
  }

  async get(key: string): Promise<Versioned<T> | undefined> {
    await this.ready();
    try {
      const raw = await this.client.getEntity<Record<string, unknown>>(escapeTableKey(key), this.rowKind, {
        abortSignal: callSignal(this.timeoutMs),
      });
      return this.versioned(raw);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      rethrow(error, this.what('get entity', key));
    }
  }

  async insert(key: string, value: T): Promise<string> {
    await this.ready();
    try {
      const response = await this.client.createEntity(this.entity(key, value), { abortSignal: callSignal(this.timeoutMs) });
      return response.etag ?? '';
    } catch (error) {
      if (statusOf(error) === 409) throw new ConflictError(`${this.what('insert entity', key)}: ${errorCodeOf(error) ?? 'entity exists'}`);
      rethrow(error, this.what('insert entity', key));
    }
  }

  async replace(key: string, value: T, etag: string): Promise<string> {
    await this.ready();
    try {
      const response = await this.client.updateEntity(this.entity(key, value), 'Replace', {
        etag,
        abortSignal: callSignal(this.timeoutMs),
      });
      return response.etag ?? '';
    } catch (error) {
      // A deleted entity is as stale as a changed one (the in-memory table treats both alike).
      const status = statusOf(error);
      if (status === 412 || status === 404)
        throw new PreconditionFailedError(`${this.what('replace entity', key)}: ${errorCodeOf(error) ?? 'changed'}`);
      rethrow(error, this.what('replace entity', key));
    }
  }

  async upsert(key: string, value: T): Promise<string> {
    await this.ready();
    try {
      const response = await this.client.upsertEntity(this.entity(key, value), 'Replace', { abortSignal: callSignal(this.timeoutMs) });
      return response.etag ?? '';
    } catch (error) {
      rethrow(error, this.what('upsert entity', key));
    }
  }

  async delete(key: string, etag?: string): Promise<boolean> {
    await this.ready();
    try {
      await this.client.deleteEntity(escapeTableKey(key), this.rowKind, {
        etag: etag ?? '*',
        abortSignal: callSignal(this.timeoutMs),
      });
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return false;
      if (status === 412) throw new PreconditionFailedError(`${this.what('delete entity', key)}: ${errorCodeOf(error) ?? 'changed'}`);
      rethrow(error, this.what('delete entity', key));
    }
  }

  /** The OData filter for the row kind and the equality conditions; values go through `odata` so quotes are escaped. */
  filterFor(where: Partial<Record<string, string | number | boolean>> = {}): string {
    const clauses = [odata`RowKey eq ${this.rowKind}`];
    for (const [field, value] of Object.entries(where)) {
      if (value === undefined) continue;
      if (!FIELD_NAME.test(field) || SYSTEM_FIELDS.has(field)) throw new Error(`Cannot filter on field ${JSON.stringify(field)}.`);
      if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`Cannot filter ${field} on ${value}.`);
      // odata only quotes a string when text precedes it, hence the ' eq ' inside the template.
      clauses.push(field + odata` eq ${value}`);
    }
    return clauses.join(' and ');
  }

  /** The filter of one page: the equality conditions, then the key range (keys after `after`, within the prefix). */
  pageFilter(query: Omit<PageQuery<T>, 'limit'>): string {
    const clauses = [this.filterFor(query.where)];
    if (query.after !== undefined) clauses.push(odata`PartitionKey gt ${escapeTableKey(query.after)}`);
    if (query.keyPrefix) {
      // Escaping is per character, so escaped keys with this prefix are exactly those in [prefix, prefix with its last code unit + 1).
      const low = escapeTableKey(query.keyPrefix);
      const high = low.slice(0, -1) + String.fromCharCode(low.charCodeAt(low.length - 1) + 1);
      clauses.push(odata`PartitionKey ge ${low}`, odata`PartitionKey lt ${high}`);
    }
    return clauses.join(' and ');
  }

  async page(query: PageQuery<T>): Promise<EntityPage<T>> {
    await this.ready();
    const filter = this.pageFilter(query);
    const rows: Versioned<T>[] = [];
    let continuationToken: string | undefined;
    // One row past the page says whether there are more; the service may answer short or empty pages with a
    // continuation (a filter it scans for), so ask again for what is missing until the page is full or done.
    do {
      const wanted = Math.min(this.listPageSize, query.limit + 1 - rows.length);
      let page;
      try {
        const pages = this.client
          .listEntities<Record<string, unknown>>({ queryOptions: { filter }, abortSignal: callSignal(this.timeoutMs) })
          .byPage({ maxPageSize: wanted, continuationToken });
        page = await pages.next();
      } catch (error) {
        rethrow(error, `list entities ${this.client.tableName}`);
      }
      if (page.done) break;
      for (const raw of page.value.slice(0, wanted)) rows.push(this.versioned(raw));
      continuationToken = page.value.continuationToken;
    } while (continuationToken && rows.length <= query.limit);
    return { rows: rows.slice(0, query.limit), more: rows.length > query.limit };
  }

  async countBy(
    field: keyof T & string,
    where: Partial<Record<keyof T & string, string | number | boolean>> = {},
  ): Promise<Record<string, number>> {
    if (!FIELD_NAME.test(field) || SYSTEM_FIELDS.has(field)) throw new Error(`Cannot count by field ${JSON.stringify(field)}.`);
    await this.ready();
    const counts: Record<string, number> = {};
    const pages = this.client
      .listEntities<Record<string, unknown>>({ queryOptions: { filter: this.filterFor(where), select: [field] } })
      .byPage({ maxPageSize: this.listPageSize });
    for await (const page of pagesOf(pages, `count entities ${this.client.tableName}`)) {
      for (const raw of page) {
        const value = raw[field];
        const key = value === undefined || value === null ? '' : String(value);
        counts[key] = (counts[key] ?? 0) + 1;
      }
    }
    return counts;
  }

  async *list(where: Partial<Record<keyof T & string, string | number | boolean>> = {}): AsyncIterable<Versioned<T>> {
    await this.ready();
    const pages = this.client
      .listEntities<Record<string, unknown>>({ queryOptions: { filter: this.filterFor(where) } })
      .byPage({ maxPageSize: this.listPageSize });
    for await (const page of pagesOf(pages, `list entities ${this.client.tableName}`)) {
      for (const raw of page) yield this.versioned(raw);
    }
  }
}
