import { EventEmitter } from 'node:events';
import type { FunctionEntry, RegistryDelta, RegistryEntry, TriggerEntry, TriggerTypeEntry, WorkerEntry } from './types';

/**
 * The in-memory registry every node keeps: the complete view of the cluster, so choosing a
 * target is a map lookup. It is a pure data model: every mutation is a `RegistryDelta` passed to
 * `apply`, which emits it as `delta` (a cluster backend ships local deltas to the other nodes and
 * applies theirs here). The memory backend is this class alone.
 */
export class Registry extends EventEmitter {
  private readonly workersById = new Map<string, WorkerEntry>();
  /** function id -> worker id -> entry: several workers serving one id form a pool. */
  private readonly pools = new Map<string, Map<string, FunctionEntry>>();
  /** function id -> pool as an array, rebuilt on change, read on every invocation. */
  private readonly poolArrays = new Map<string, FunctionEntry[]>();
  private readonly triggerTypesById = new Map<string, TriggerTypeEntry>();
  private readonly triggersById = new Map<string, TriggerEntry>();

  /**
   * Applies one change and emits `delta` with the entry it concerns (for a removal, the entry
   * removed), so a listener can tell whose entry changed. A removal of nothing emits nothing.
   */
  apply(delta: RegistryDelta): void {
    const entry = this.applyOne(delta);
    if (entry) this.emit('delta', delta, entry);
  }

  private applyOne(delta: RegistryDelta): RegistryEntry | undefined {
    switch (delta.op) {
      case 'worker.put':
        this.workersById.set(delta.worker.id, delta.worker);
        return delta.worker;
      case 'worker.remove': {
        const worker = this.workersById.get(delta.workerId);
        if (worker) this.workersById.delete(delta.workerId);
        return worker;
      }
      case 'function.put': {
        let pool = this.pools.get(delta.fn.id);
        if (!pool) this.pools.set(delta.fn.id, (pool = new Map<string, FunctionEntry>()));
        // Re-registration moves the entry to the end: the latest registration describes the pool.
        pool.delete(delta.fn.workerId);
        pool.set(delta.fn.workerId, delta.fn);
        this.poolArrays.set(delta.fn.id, [...pool.values()]);
        return delta.fn;
      }
      case 'function.remove': {
        const pool = this.pools.get(delta.id);
        const fn = pool?.get(delta.workerId);
        if (!pool || !fn) return undefined;
        pool.delete(delta.workerId);
        if (pool.size === 0) {
          this.pools.delete(delta.id);
          this.poolArrays.delete(delta.id);
        } else {
          this.poolArrays.set(delta.id, [...pool.values()]);
        }
        return fn;
      }
      case 'triggertype.put':
        this.triggerTypesById.set(delta.type.id, delta.type);
        return delta.type;
      case 'triggertype.remove': {
        const current = this.triggerTypesById.get(delta.id);
        if (!current || current.workerId !== delta.workerId) return undefined;
        this.triggerTypesById.delete(delta.id);
        return current;
      }
      case 'trigger.put':
        this.triggersById.set(delta.trigger.id, delta.trigger);
        return delta.trigger;
      case 'trigger.remove': {
        const trigger = this.triggersById.get(delta.id);
        if (trigger) this.triggersById.delete(delta.id);
        return trigger;
      }
    }
  }

  worker(id: string): WorkerEntry | undefined {
    return this.workersById.get(id);
  }

  workers(): IterableIterator<WorkerEntry> {
    return this.workersById.values();
  }

  /** The entries serving `id` (empty when none): the candidates for a call. */
  pool(id: string): readonly FunctionEntry[] {
    return this.poolArrays.get(id) ?? EMPTY;
  }

  hasFunction(id: string): boolean {
    return this.pools.has(id);
  }

  /** The entry that describes a pool: its latest registration, as "last registration wins" in the original. */
  function(id: string): FunctionEntry | undefined {
    const entries = this.poolArrays.get(id);
    return entries?.[entries.length - 1];
  }

  /** One describing entry per function id. */
  *functions(): IterableIterator<FunctionEntry> {
    for (const entries of this.poolArrays.values()) yield entries[entries.length - 1];
  }

  functionIds(): IterableIterator<string> {
    return this.pools.keys();
  }

  functionsOf(workerId: string): FunctionEntry[] {
    const out: FunctionEntry[] = [];
    for (const pool of this.pools.values()) {
      const entry = pool.get(workerId);
      if (entry) out.push(entry);
    }
    return out;
  }

  triggerType(id: string): TriggerTypeEntry | undefined {
    return this.triggerTypesById.get(id);
  }

  triggerTypes(): IterableIterator<TriggerTypeEntry> {
    return this.triggerTypesById.values();
  }

  trigger(id: string): TriggerEntry | undefined {
    return this.triggersById.get(id);
  }

  triggers(): IterableIterator<TriggerEntry> {
    return this.triggersById.values();
  }

  triggersOfType(type: string, state?: TriggerEntry['state']): TriggerEntry[] {
    const out: TriggerEntry[] = [];
    for (const t of this.triggersById.values()) {
      if (t.trigger_type === type && (state === undefined || t.state === state)) out.push(t);
    }
    return out;
  }

  /** Everything owned by one node: what survivors sweep when that node disappears. */
  entriesOfNode(nodeId: string): {
    workers: WorkerEntry[];
    functions: FunctionEntry[];
    triggerTypes: TriggerTypeEntry[];
    triggers: TriggerEntry[];
  } {
    const functions: FunctionEntry[] = [];
    for (const pool of this.pools.values())
      for (const fn of pool.values()) if (fn.nodeId === nodeId) functions.push(fn);
    return {
      workers: [...this.workersById.values()].filter((w) => w.nodeId === nodeId),
      functions,
      triggerTypes: [...this.triggerTypesById.values()].filter((t) => t.nodeId === nodeId),
      triggers: [...this.triggersById.values()].filter((t) => t.nodeId === nodeId),
    };
  }
}

const EMPTY: readonly FunctionEntry[] = Object.freeze([]);
