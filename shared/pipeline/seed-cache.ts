/**
 * An in-process cache of decoded seeds for the verify check, so a warm
 * instance answers a code with one inventory read and one conditional write
 * and no vault read.
 *
 * Why it is safe for a secret:
 * - It is keyed by secret name and version, and a Key Vault version's value
 *   never changes; the inventory row names the version to use, so a reprogram
 *   (a new version on the row) is never answered from an older entry. Reads
 *   without a pinned version are not cached.
 * - An entry lives a short while (ttlMs, 60 s by default) and the cache holds
 *   at most maxEntries seeds (the oldest goes first). A version the vault
 *   disables behind the pipeline's back is thus still usable on this instance
 *   for at most ttlMs; a version the pipeline disables itself is forgotten at
 *   once (`forget`).
 * - It holds the bytes in this process only, where the check holds them
 *   anyway; it hands out copies (the caller zeroes its copy after the check),
 *   zeroes an entry when it drops it, and never logs or serializes anything.
 */
import { epochMs } from './clock.js';
import type { Clock } from './ports.js';

export interface SeedCacheOptions {
  ttlMs?: number;
  maxEntries?: number;
}

interface Entry {
  seed: Uint8Array;
  expiresAt: number;
}

export class SeedCache {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(
    private readonly clock: Clock,
    options: SeedCacheOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.maxEntries = options.maxEntries ?? 1000;
    if (!(this.ttlMs > 0) || !Number.isInteger(this.maxEntries) || this.maxEntries < 1)
      throw new RangeError('SeedCache needs ttlMs > 0 and maxEntries >= 1.');
  }

  /** A copy of the seed of name at version, or undefined when it is not held or has expired. */
  get(name: string, version: string): Uint8Array | undefined {
    const key = keyOf(name, version);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= epochMs(this.clock)) {
      this.drop(key, entry);
      return undefined;
    }
    return entry.seed.slice();
  }

  /** Keeps a copy of seed for ttlMs from now. */
  set(name: string, version: string, seed: Uint8Array): void {
    const key = keyOf(name, version);
    const old = this.entries.get(key);
    if (old) this.drop(key, old);
    while (this.entries.size >= this.maxEntries) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, Entry];
      this.drop(oldestKey, oldest);
    }
    this.entries.set(key, { seed: seed.slice(), expiresAt: epochMs(this.clock) + this.ttlMs });
  }

  /** Drops every version of name (called when the pipeline disables one of them). */
  forget(name: string): void {
    const prefix = keyOf(name, '');
    for (const [key, entry] of this.entries) if (key.startsWith(prefix)) this.drop(key, entry);
  }

  get size(): number {
    return this.entries.size;
  }

  private drop(key: string, entry: Entry): void {
    entry.seed.fill(0);
    this.entries.delete(key);
  }
}

// Secret names are [0-9a-zA-Z-]: a slash cannot occur in one, so name/version keys never collide.
const keyOf = (name: string, version: string) => `${name}/${version}`;
