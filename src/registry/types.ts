import type { HttpInvocation, Json } from '../protocol/messages';

/**
 * The registry's data model: the whole cluster's view of workers, functions, trigger types and
 * trigger bindings. Every entry names the node that owns it, so a node that disappears can be
 * swept by the survivors.
 */

export interface WorkerEntry {
  id: string;
  nodeId: string;
  /** `worker` for a WebSocket connection, `module` for an in-process module. */
  kind: 'worker' | 'module';
  name?: string;
  description?: string;
  runtime: string;
  version?: string;
  os?: string;
  pid?: number;
  isolation?: string;
  telemetry?: Json;
  /** iii v0.23: the namespace the worker declared (absent: default). */
  namespace?: string;
  ipAddress?: string;
  connectedAtMs: number;
}

export interface FunctionEntry {
  id: string;
  /** The worker (or module instance) that serves this entry; several entries form a pool. */
  workerId: string;
  nodeId: string;
  description?: string;
  request_format?: Json;
  response_format?: Json;
  metadata?: Json;
  /** Present for HTTP-invoked functions, which the engine executes itself. */
  invocation?: HttpInvocation;
}

export interface TriggerTypeEntry {
  id: string;
  description: string;
  trigger_request_format?: Json;
  call_request_format?: Json;
  /** The provider: a connected worker or an in-process module instance. */
  workerId: string;
  nodeId: string;
}

export interface TriggerEntry {
  id: string;
  trigger_type: string;
  function_id: string;
  config: Json;
  metadata?: Json;
  /** The connection that registered it; absent for durable bindings from `engine::register_trigger`. */
  ownerWorkerId?: string;
  nodeId: string;
  /** `live` once delivered to the type's provider; `parked` while the type is missing or refused it. */
  state: 'live' | 'parked';
}

export type RegistryEntry = WorkerEntry | FunctionEntry | TriggerTypeEntry | TriggerEntry;

/** Every registry mutation is one of these, so a cluster backend can ship them between nodes. */
export type RegistryDelta =
  | { op: 'worker.put'; worker: WorkerEntry }
  | { op: 'worker.remove'; workerId: string }
  | { op: 'function.put'; fn: FunctionEntry }
  | { op: 'function.remove'; id: string; workerId: string }
  | { op: 'triggertype.put'; type: TriggerTypeEntry }
  | { op: 'triggertype.remove'; id: string; workerId: string }
  | { op: 'trigger.put'; trigger: TriggerEntry }
  | { op: 'trigger.remove'; id: string };
