import { EventEmitter } from 'node:events';
import type { FunctionEntry, RegistryDelta, TriggerEntry, TriggerTypeEntry, WorkerEntry } from './types';

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

  apply(delta: RegistryDelta): void {
    switch (delta.op) {
      case 'worker.put':
        this.workersById.set(delta.worker.id, delta.worker);
        break;
      case 'worker.remove':
        if (!this.workersById.delete(delta.workerId)) return;
        break;
      case 'function.put': {
        let pool = this.pools.get(delta.fn.id);
        if (!pool) this.pools.set(delta.fn.id, (pool = new Map()));
        // Re-registration moves the entry to the end: the latest registration describes the pool.
        pool.delete(delta.fn.workerId);
        pool.set(delta.fn.workerId, delta.fn);
        this.poolArrays.set(delta.fn.id, [...pool.values()]);
        break;
      }
      case 'function.remove': {
        const pool = this.pools.get(delta.id);
        if (!pool || !pool.delete(delta.workerId)) return;
        if (pool.size === 0) {
          this.pools.delete(delta.id);
          this.poolArrays.delete(delta.id);
        } else {
          this.poolArrays.set(delta.id, [...pool.values()]);
        }
        break;
      }
      case 'triggertype.put':
        this.triggerTypesById.set(delta.type.id, delta.type);
        break;
      case 'triggertype.remove': {
        const current = this.triggerTypesById.get(delta.id);
        if (!current || current.workerId !== delta.workerId) return;
        this.triggerTypesById.delete(delta.id);
        break;
      }
      case 'trigger.put':
        this.triggersById.set(delta.trigger.id, delta.trigger);
        break;
      case 'trigger.remove':
        if (!this.triggersById.delete(delta.id)) return;
        break;
    }
    this.emit('delta', delta);
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
  entriesOfNode(nodeId: string): { workers: WorkerEntry[]; functions: FunctionEntry[]; triggerTypes: TriggerTypeEntry[]; triggers: TriggerEntry[] } {
    const functions: FunctionEntry[] = [];
    for (const pool of this.pools.values()) for (const fn of pool.values()) if (fn.nodeId === nodeId) functions.push(fn);
    return {
      workers: [...this.workersById.values()].filter((w) => w.nodeId === nodeId),
      functions,
      triggerTypes: [...this.triggerTypesById.values()].filter((t) => t.nodeId === nodeId),
      triggers: [...this.triggersById.values()].filter((t) => t.nodeId === nodeId),
    };
  }
}

const EMPTY: readonly FunctionEntry[] = Object.freeze([]);
