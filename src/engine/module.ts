import type { EventEmitter } from 'node:events';
import type { EngineConfig } from '../config/types';
import type { Peers } from '../cluster/peer-queries';
import type { ChannelManager } from '../transport/channels';
import type { Logger } from '../observability/logger';
import type { EngineMetrics } from '../observability/metrics';
import type { Json } from '../protocol/messages';
import type { Registry } from '../registry/registry';
import type { TriggerEntry } from '../registry/types';
import type { CallOutcome, CallRequest, CallSpan, LocalHandler } from '../router/router';
import type { TriggerProvider } from './triggers';

export interface FunctionDefinition {
  id: string;
  description?: string;
  request_format?: Json;
  response_format?: Json;
  metadata?: Json;
}

export interface TriggerTypeDefinition {
  id: string;
  description: string;
  trigger_request_format?: Json;
  call_request_format?: Json;
}

/**
 * What the engine offers an in-process module. Modules are workers that happen to live in the
 * process: they register functions and trigger types in the same registry remote workers use,
 * and reach each other only through `invoke`.
 */
export interface ModuleHost {
  readonly nodeId: string;
  readonly registry: Registry;
  registerFunction(moduleName: string, definition: FunctionDefinition, handler: LocalHandler): void;
  registerTriggerType(moduleName: string, definition: TriggerTypeDefinition, provider: TriggerProvider): Promise<void>;
  invoke(request: CallRequest): Promise<CallOutcome>;
  /** Fires a binding: calls its function with `payload` and its metadata; the result is dropped. */
  fire(trigger: TriggerEntry, payload: Json): void;
  logger: Logger;
  readonly config: EngineConfig;
  /** The bound port of the first worker listener (config port 0 picks one): known once the `ready` event has fired. */
  readonly port: number;
  /** Data channels (`engine::channels::create`): modules stream bodies through them. */
  readonly channels: ChannelManager;
  /** Prometheus registry and the engine's own metrics; modules add their gauges here. */
  readonly metrics: EngineMetrics;
  /** `ready`, `draining`, `worker` and `telemetry` events (see Engine). */
  readonly events: EventEmitter;
  /**
   * Cluster mode: queries to the other live nodes (cluster/peer-queries.ts), answered by the
   * same module there; undefined on a single node.
   */
  readonly peers?: Peers | undefined;
}

/** A built-in module: registered at start, stopped at shutdown. */
export interface EngineModule {
  readonly name: string;
  start(host: ModuleHost): Promise<void>;
  stop(): Promise<void>;
  /**
   * Hot reload: takes a changed block (defaults filled in) while running, applying what can
   * change live without losing anything in flight; resolves with the keys that need a restart.
   * Without it, any change needs a restart.
   */
  reconfigure?(config: Record<string, unknown>): Promise<string[]>;
}

/** The modules of a node, made by the engine's caller (`createEngine`): the engine does not know them. */
export interface ModuleSet<Host> {
  create(host: Host, config: EngineConfig): { modules: EngineModule[]; observer?: CallObserver };
  /** Hot reload: applies `next`'s module settings; names what needs a restart. */
  reconfigure(modules: readonly EngineModule[], next: EngineConfig): Promise<{ applied: string[]; restart: string[] }>;
}

/** The module that traces calls and keeps what workers report of themselves (iii-observability). */
export interface CallObserver {
  startSpan(request: CallRequest): CallSpan | undefined;
  latestWorkerMetrics(workerId: string): Record<string, Json> | undefined;
}
