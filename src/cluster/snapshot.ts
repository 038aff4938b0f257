import type { RegistryDelta, RegistryEntry } from '../registry/types';

/**
 * A node's registry entries as stored in its Redis hash: one field per entry, the value its
 * JSON. Worker ids never contain `|`, so `f|<worker>|<function id>` is unambiguous.
 */
export type HashChange = { field: string; value?: string };

export function hashChange(delta: RegistryDelta, entry: RegistryEntry): HashChange {
  switch (delta.op) {
    case 'worker.put':
      return { field: `w|${delta.worker.id}`, value: JSON.stringify(delta.worker) };
    case 'worker.remove':
      return { field: `w|${delta.workerId}` };
    case 'function.put':
      return { field: `f|${delta.fn.workerId}|${delta.fn.id}`, value: JSON.stringify(delta.fn) };
    case 'function.remove':
      return { field: `f|${delta.workerId}|${delta.id}` };
    case 'triggertype.put':
      return { field: `tt|${delta.type.id}`, value: JSON.stringify(delta.type) };
    case 'triggertype.remove':
      return { field: `tt|${delta.id}` };
    case 'trigger.put':
      return { field: `t|${delta.trigger.id}`, value: JSON.stringify(delta.trigger) };
    case 'trigger.remove':
      return { field: `t|${(entry as { id: string }).id}` };
  }
}

/** The deltas that rebuild a node's entries from its hash, workers first. */
export function snapshotDeltas(hash: Record<string, string>): RegistryDelta[] {
  const order = { w: 0, f: 1, tt: 2, t: 3 } as const;
  const fields = Object.keys(hash).sort((a, b) => order[kindOf(a)] - order[kindOf(b)]);
  return fields.map((field) => {
    const value = JSON.parse(hash[field]) as never;
    switch (kindOf(field)) {
      case 'w':
        return { op: 'worker.put', worker: value };
      case 'f':
        return { op: 'function.put', fn: value };
      case 'tt':
        return { op: 'triggertype.put', type: value };
      case 't':
        return { op: 'trigger.put', trigger: value };
    }
  });
}

function kindOf(field: string): 'w' | 'f' | 'tt' | 't' {
  const kind = field.slice(0, field.indexOf('|'));
  if (kind === 'w' || kind === 'f' || kind === 'tt' || kind === 't') return kind;
  throw new Error(`unknown registry field ${field}`);
}
