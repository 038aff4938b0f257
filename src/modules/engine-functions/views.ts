import type { Json } from '../../protocol/messages';
import { bareId, DEFAULT_NAMESPACE, splitKey } from '../../registry/namespaces';
import type { Registry } from '../../registry/registry';
import type { FunctionEntry, TriggerEntry, TriggerTypeEntry, WorkerEntry } from '../../registry/types';

/**
 * The shapes `engine::*` introspection answers with (protocol reference §4.1), built from the
 * registry. Plain functions of the registry's contents: no state of their own.
 */

/** Provider names of the built-in trigger types, as the original reports them. */
const BUILTIN_TYPE_OWNERS: Record<string, string> = {
  http: 'iii-http',
  cron: 'iii-cron',
  subscribe: 'iii-pubsub',
  state: 'iii-state',
  'durable:subscriber': 'queue',
  stream: 'iii-stream',
  'stream:join': 'iii-stream',
  'stream:leave': 'iii-stream',
  log: 'iii-observability',
  trace: 'iii-observability',
  configuration: 'configuration',
};

function firstSegment(id: string): string {
  const i = id.indexOf('::');
  return i === -1 ? id : id.slice(0, i);
}

export function workerName(registry: Registry, fn: FunctionEntry): string {
  return registry.worker(fn.workerId)?.name ?? firstSegment(bareId(fn.id));
}

/** `function_id` (bare) and `namespace` of a registry key, as every introspection row carries them (iii v0.23). */
function named(key: string): { function_id: string; namespace: string } {
  const { namespace, id } = splitKey(key);
  return { function_id: id, namespace };
}

export function triggerTypeOwner(registry: Registry, type: TriggerTypeEntry): string {
  const id = bareId(type.id);
  return registry.worker(type.workerId)?.name ?? BUILTIN_TYPE_OWNERS[id] ?? firstSegment(id);
}

export function functionSummary(registry: Registry, fn: FunctionEntry): Record<string, Json> {
  const out: Record<string, Json> = { ...named(fn.id), worker_name: workerName(registry, fn) };
  if (fn.description !== undefined) out.description = fn.description;
  if (fn.metadata !== undefined) out.metadata = fn.metadata;
  return out;
}

export function functionDetail(registry: Registry, fn: FunctionEntry): Record<string, Json> {
  // The original's key order: metadata after the schemas and triggers.
  const out: Record<string, Json> = { ...named(fn.id), worker_name: workerName(registry, fn) };
  if (fn.description !== undefined) out.description = fn.description;
  if (fn.request_format !== undefined) out.request_schema = fn.request_format;
  if (fn.response_format !== undefined) out.response_schema = fn.response_format;
  out.registered_triggers = [...registry.triggers()]
    .filter((t) => t.state === 'live' && t.function_id === fn.id)
    .sort(byId)
    .map((t) => ({ id: t.id, trigger_type: bareId(t.trigger_type), config: t.config }));
  if (fn.metadata !== undefined) out.metadata = fn.metadata;
  return out;
}

export function triggerTypeSummary(registry: Registry, type: TriggerTypeEntry): Record<string, Json> {
  const { namespace, id } = splitKey(type.id);
  return { id, namespace, worker_name: triggerTypeOwner(registry, type), description: type.description };
}

export function triggerTypeDetail(registry: Registry, type: TriggerTypeEntry): Record<string, Json> {
  const out = triggerTypeSummary(registry, type);
  if (type.trigger_request_format !== undefined) out.configuration_schema = type.trigger_request_format;
  if (type.call_request_format !== undefined) out.request_schema = type.call_request_format;
  out.instance_count = registry.triggersOfType(type.id, 'live').length;
  return out;
}

export function bindingRow(registry: Registry, t: TriggerEntry): Record<string, Json> {
  const fn = registry.function(t.function_id);
  const configJson = JSON.stringify(t.config) ?? 'null';
  return {
    id: t.id,
    trigger_type: bareId(t.trigger_type),
    ...named(t.function_id),
    worker_name: fn ? workerName(registry, fn) : firstSegment(bareId(t.function_id)),
    config: t.config,
    config_summary: truncate(configJson, 80),
  };
}

export function workerSummary(w: WorkerEntry, functionCount: number, activeInvocations: number): Record<string, Json> {
  const module = w.kind === 'module';
  return {
    name: w.name ?? null,
    description: w.description ?? null,
    version: w.version ?? null,
    id: module ? (w.name ?? w.id) : w.id,
    runtime: w.runtime,
    os: w.os ?? null,
    status: module ? 'available' : 'connected',
    function_count: functionCount,
    connected_at_ms: w.connectedAtMs,
    active_invocations: activeInvocations,
    isolation: w.isolation ?? null,
    ip_address: w.ipAddress ?? null,
    namespace: w.namespace ?? DEFAULT_NAMESPACE,
  };
}

/** Cuts `text` to `max` characters (code points, never half a surrogate pair), marking the cut with `…`. */
export function truncate(text: string, max: number, mark = '…'): string {
  const chars = Array.from(text);
  return chars.length > max ? chars.slice(0, max).join('') + mark : text;
}

export function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Hidden from default listings: engine internals (but not the queue's) and `metadata.internal`. */
export function isInternalFunction(fn: FunctionEntry): boolean {
  if (fn.id.startsWith('engine::') && !fn.id.startsWith('engine::queue::')) return true;
  const meta = fn.metadata;
  return typeof meta === 'object' && meta !== null && !Array.isArray(meta) && meta.internal === true;
}
