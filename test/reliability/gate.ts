/**
 * A gate in front of an app instance's storage ports: the test closes it to stop the instance at a chosen step (its
 * next storage call waits), looks at the state, and opens it again. Tests wait for states ("the instance holds the
 * lease and waits at the gate"), never for a guessed amount of time.
 */
import type { BlobStore, Entity, EntityTable } from '../../shared/pipeline/ports.js';

/** Called after each call that went through the gate and succeeded, before its caller sees the result. */
export type CallObserver = (method: string, args: unknown[], result: unknown) => void;

export class Gate {
  private closedUntil: Promise<void> | undefined;
  private release: () => void = () => undefined;
  private watchers: (() => boolean)[] = [];
  /** Calls running now, and calls held at the closed gate. */
  inFlight = 0;
  waiting = 0;

  constructor(private readonly observe: CallObserver = () => undefined) {}

  get isClosed(): boolean {
    return this.closedUntil !== undefined;
  }

  close(): void {
    if (this.closedUntil) return;
    this.closedUntil = new Promise((resolve) => (this.release = resolve));
  }

  open(): void {
    this.closedUntil = undefined;
    this.release();
  }

  /** Resolves as soon as `condition` holds; it is checked now and after every change at the gate. */
  until(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const holds = condition();
        if (holds) resolve();
        return holds;
      };
      if (!check()) this.watchers.push(check);
    });
  }

  /** Re-checks the watchers: for conditions on state the gate does not see (call it from an observer). */
  changed(): void {
    this.watchers = this.watchers.filter((check) => !check());
  }

  async pass<T>(method: string, args: unknown[], call: () => Promise<T>): Promise<T> {
    while (this.closedUntil) {
      this.waiting++;
      this.changed();
      await this.closedUntil;
      this.waiting--;
    }
    this.inFlight++;
    this.changed();
    try {
      const result = await call();
      this.observe(method, args, result);
      return result;
    } finally {
      this.inFlight--;
      this.changed();
    }
  }
}

/** `target` with each of `methods` (all promise-returning) passing through `gate`; everything else untouched. */
function gated<T extends object>(target: T, gate: Gate, methods: readonly (keyof T & string)[]): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => Promise<unknown>;
      if (!(methods as readonly (string | symbol)[]).includes(property)) return fn.bind(object);
      return (...args: unknown[]) => gate.pass(property as string, args, () => fn.apply(object, args));
    },
  });
}

export function gatedBlobs(blobs: BlobStore, gate: Gate): BlobStore {
  return gated(blobs, gate, ['read', 'properties', 'write', 'delete', 'setMetadata', 'copy', 'acquireLease']);
}

export function gatedTable<T extends Entity>(table: EntityTable<T>, gate: Gate): EntityTable<T> {
  return gated(table, gate, ['get', 'insert', 'replace', 'upsert', 'delete']);
}
