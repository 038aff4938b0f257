import { randomUUID } from 'node:crypto';
import { EngineError, ErrorCode } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import { DEFAULT_NAMESPACE, namespacedKey, validNamespace } from '../../registry/namespaces';
import type { RegistryDelta, WorkerEntry } from '../../registry/types';
import type { Engine } from '../../engine/engine';
import type { WorkerEvent } from '../../engine/workers';
import type { SessionAccess } from '../../engine/access/session-access';
import type { TriggerProvider } from '../../engine/triggers';
import type { CallContext } from '../../router/router';
import { Input } from '../input';
import { clusterNodes } from './nodes';
import type { EngineModule } from '../../engine/module';
import {
  bindingRow,
  byId,
  functionDetail,
  functionSummary,
  isInternalFunction,
  triggerTypeDetail,
  triggerTypeOwner,
  triggerTypeSummary,
  truncate,
  workerName,
  workerSummary,
} from './views';

const MODULE = 'iii-engine-functions';
const MAX_INFO_BATCH = 32;
/** Function-set changes are coalesced over this window before `engine::functions-available` fires. */
const FUNCTIONS_DEBOUNCE_MS = 100;
/** How long `engine::register_trigger` waits for a worker provider's answer. */
const REGISTER_ACK_MS = 10_000;

/** Bindings of the engine's own trigger types need no activation: they are fired from events. */
const ACCEPT_ALL: TriggerProvider = { registerTrigger() {}, unregisterTrigger() {} };

/**
 * `iii-engine-functions`: introspection of the whole registry (`engine::functions|workers|
 * triggers|registered-triggers::*`), the cluster's nodes (`engine::cluster::nodes`), worker metadata, data channels, durable trigger bindings,
 * and the trigger types `engine::functions-available` and `engine::workers-available`.
 */
export class EngineFunctionsModule implements EngineModule {
  readonly name = MODULE;
  private debounce: NodeJS.Timeout | undefined;
  private lastFunctionIds = '';
  private readonly onDelta = (delta: RegistryDelta) => {
    if ((delta.op === 'function.put' || delta.op === 'function.remove') && !this.debounce) {
      this.debounce = setTimeout(() => this.functionsChanged(), FUNCTIONS_DEBOUNCE_MS);
    }
  };
  private readonly onWorkerEvent = (event: WorkerEvent) => this.fireAll('engine::workers-available', { ...event });

  constructor(private readonly engine: Engine) {}

  async start(): Promise<void> {
    const engine = this.engine;
    // `caller` is what the calling connection may do (RBAC); undefined for engine-internal calls.
    const fn = (
      id: string,
      description: string,
      handler: (input: Input, caller: SessionAccess | undefined) => Json | undefined | Promise<Json | undefined>,
    ) =>
      engine.registerFunction(MODULE, { id, description }, (data, ctx: CallContext) =>
        handler(new Input(id, data), engine.accessOf(ctx.callerWorkerId)),
      );

    fn('engine::functions::list', 'List registered functions', (input, caller) => this.listFunctions(input, caller));
    fn('engine::functions::info', 'Describe one or several functions', (input, caller) =>
      this.functionInfo(input, caller),
    );
    fn('engine::triggers::list', 'List registered trigger types', (input) => this.listTriggerTypes(input));
    fn('engine::triggers::info', 'Describe a trigger type', (input) => {
      const id = input.string('id');
      const type = engine.registry.triggerType(id);
      if (!type) throw new EngineError(ErrorCode.notFound, `Trigger type '${id}' is not registered.`);
      return triggerTypeDetail(engine.registry, type);
    });
    fn('engine::registered-triggers::list', 'List trigger bindings', (input) => this.listBindings(input));
    fn('engine::registered-triggers::info', 'Describe a trigger binding', (input) => this.bindingInfo(input));
    fn('engine::workers::list', 'List connected workers and in-process modules', (input) => this.listWorkers(input));
    fn('engine::workers::info', 'Describe a worker by name or worker_id, with its latest reported metrics', (input) =>
      this.workerInfo(input),
    );
    fn('engine::workers::register', "Record the calling worker's metadata", (input) => this.registerWorker(input));
    engine.registerFunction(
      MODULE,
      { id: 'engine::cluster::nodes', description: 'List the nodes of the cluster: state, uptime, worker count' },
      (_data, ctx: CallContext) => clusterNodes(engine, ctx.callerWorkerId),
    );
    fn('engine::channels::create', 'Create a data channel', (input) => {
      const size = input.optNumber('buffer_size');
      return engine.channels.create(size) as unknown as Json;
    });
    fn('engine::register_trigger', 'Create a durable trigger binding', (input, caller) =>
      this.registerTrigger(input, caller),
    );
    fn('engine::unregister_trigger', 'Remove a trigger binding', async (input) => ({
      removed: await engine.triggers.unregister(input.string('id')),
    }));

    await engine.registerTriggerType(
      MODULE,
      { id: 'engine::functions-available', description: 'Fires when the set of registered functions changes' },
      ACCEPT_ALL,
    );
    await engine.registerTriggerType(
      MODULE,
      {
        id: 'engine::workers-available',
        description: 'Fires when a worker connects, disconnects or updates its metadata',
      },
      ACCEPT_ALL,
    );
    this.lastFunctionIds = this.functionIdSet();
    engine.registry.on('delta', this.onDelta);
    engine.events.on('worker', this.onWorkerEvent);
  }

  async stop(): Promise<void> {
    clearTimeout(this.debounce);
    this.engine.registry.off('delta', this.onDelta);
    this.engine.events.off('worker', this.onWorkerEvent);
  }

  private functionIdSet(): string {
    return [...this.engine.registry.functionIds()].sort().join('\n');
  }

  private functionsChanged(): void {
    this.debounce = undefined;
    const ids = this.functionIdSet();
    if (ids === this.lastFunctionIds) return;
    this.lastFunctionIds = ids;
    const registry = this.engine.registry;
    const functions = [...registry.functions()].sort(byId).map((f) => functionSummary(registry, f));
    this.fireAll('engine::functions-available', { event: 'functions_changed', functions });
  }

  private fireAll(type: string, payload: Json): void {
    for (const binding of this.engine.registry.triggersOfType(type, 'live')) this.engine.fire(binding, payload);
  }

  /** Only the functions the caller's RBAC session may call are listed. */
  private listFunctions(input: Input, caller: SessionAccess | undefined): Json {
    const registry = this.engine.registry;
    const search = input.optString('search')?.toLowerCase();
    const prefix = input.optString('prefix');
    const workers = [
      ...(input.optStringArray('workers') ?? []),
      ...(input.has('worker') ? [input.string('worker')] : []),
    ];
    const includeInternal = input.optBoolean('include_internal') ?? false;
    const includePool = input.optBoolean('include_pool') ?? false;
    const ranked: Array<[number, Record<string, Json>]> = [];
    for (const fn of registry.functions()) {
      if (!includeInternal && isInternalFunction(fn)) continue;
      if (caller && !caller.sees(fn)) continue;
      if (prefix !== undefined && !fn.id.startsWith(prefix)) continue;
      if (workers.length > 0 && !workers.includes(workerName(registry, fn))) continue;
      let rank = 0;
      if (search !== undefined) {
        const id = fn.id.toLowerCase();
        if (id.startsWith(search) || id.split('::').includes(search)) rank = 0;
        else if (id.includes(search)) rank = 1;
        else if (fn.description?.toLowerCase().includes(search)) rank = 2;
        else continue;
      }
      const summary = functionSummary(registry, fn);
      // ours (the web console): every member of the function's pool and the node it is on.
      if (includePool)
        summary.pool = registry
          .pool(fn.id)
          .map((m) => ({ worker_id: m.workerId, worker_name: workerName(registry, m), node_id: m.nodeId }));
      ranked.push([rank, summary]);
    }
    ranked.sort(([ra, a], [rb, b]) => ra - rb || compare(a.function_id as string, b.function_id as string));
    return { functions: ranked.map(([, summary]) => summary) };
  }

  /** A function the caller's RBAC session may not call is FORBIDDEN, whether it exists or not. */
  private functionInfo(input: Input, caller: SessionAccess | undefined): Json {
    const registry = this.engine.registry;
    const single = input.optString('function_id');
    const batch = input.optStringArray('function_ids');
    if ((single === undefined) === (batch === undefined)) {
      throw new EngineError(ErrorCode.invalidArguments, 'Give exactly one of `function_id` or `function_ids`.');
    }
    // iii v0.23: the ids are looked up in `namespace` (default `default`).
    const namespace = input.optString('namespace') ?? DEFAULT_NAMESPACE;
    const lookup = (id: string) => registry.function(namespacedKey(namespace, id));
    const visible = (id: string) => !caller || caller.sees(lookup(id) ?? { id: namespacedKey(namespace, id) });
    if (single !== undefined) {
      if (!visible(single))
        throw new EngineError(ErrorCode.forbidden, `Function '${single}' is not visible to this session.`);
      const fn = lookup(single);
      if (!fn) throw new EngineError(ErrorCode.notFound, `Function '${single}' is not registered.`);
      return functionDetail(registry, fn);
    }
    const ids = [...new Set(batch)];
    if (ids.length === 0 || ids.length > MAX_INFO_BATCH) {
      throw new EngineError(
        ErrorCode.invalidArguments,
        `\`function_ids\` must hold 1 to ${MAX_INFO_BATCH} ids, got ${ids.length}.`,
      );
    }
    return {
      functions: ids.map((id) => {
        if (!visible(id)) return { function_id: id, error: 'forbidden' };
        const fn = lookup(id);
        return fn ? functionDetail(registry, fn) : { function_id: id, error: 'not_found' };
      }),
    };
  }

  private listTriggerTypes(input: Input): Json {
    const registry = this.engine.registry;
    const search = input.optString('search')?.toLowerCase();
    const prefix = input.optString('prefix');
    const worker = input.optString('worker');
    const includeInternal = input.optBoolean('include_internal') ?? false;
    const triggers = [...registry.triggerTypes()]
      .filter((t) => includeInternal || !t.id.startsWith('engine::'))
      .filter((t) => prefix === undefined || t.id.startsWith(prefix))
      .filter((t) => worker === undefined || triggerTypeOwner(registry, t) === worker)
      .filter(
        (t) =>
          search === undefined || t.id.toLowerCase().includes(search) || t.description.toLowerCase().includes(search),
      )
      .sort(byId)
      .map((t) => triggerTypeSummary(registry, t));
    return { triggers };
  }

  private listBindings(input: Input): Json {
    const registry = this.engine.registry;
    const search = input.optString('search')?.toLowerCase();
    const type = input.optString('trigger_type');
    const functionId = input.optString('function_id');
    const worker = input.optString('worker');
    const includeInternal = input.optBoolean('include_internal') ?? false;
    const rows = [...registry.triggers()]
      .filter((t) => t.state === 'live')
      .filter((t) => includeInternal || !t.function_id.startsWith('engine::'))
      .filter((t) => type === undefined || t.trigger_type === type)
      .filter((t) => functionId === undefined || t.function_id === functionId)
      .filter(
        (t) =>
          search === undefined || [t.id, t.function_id, t.trigger_type].some((s) => s.toLowerCase().includes(search)),
      )
      .sort(byId)
      .map((t) => bindingRow(registry, t))
      .filter((row) => worker === undefined || row.worker_name === worker);
    return { registered_triggers: rows };
  }

  private bindingInfo(input: Input): Json {
    const registry = this.engine.registry;
    const id = input.string('id');
    const binding = registry.trigger(id);
    if (!binding) throw new EngineError(ErrorCode.notFound, `Registered trigger '${id}' was not found.`);
    const { config_summary: _summary, ...row } = bindingRow(registry, binding);
    if (binding.metadata !== undefined) row.metadata = binding.metadata;
    const type = registry.triggerType(binding.trigger_type);
    const fn = registry.function(binding.function_id);
    row.trigger = type ? triggerTypeDetail(registry, type) : null;
    row.function = fn ? functionDetail(registry, fn) : null;
    return row;
  }

  /** Connected workers (all of them, unlike the original, which hides those without a pid) and modules. */
  private listWorkers(input: Input): Json {
    const search = input.optString('search')?.toLowerCase();
    const runtime = input.optString('runtime');
    const status = input.optString('status');
    const includeNode = input.optBoolean('include_node') ?? false;
    const workers = this.workerSummaries(includeNode)
      .filter((w) => runtime === undefined || w.runtime === runtime)
      .filter((w) => status === undefined || w.status === status)
      .filter(
        (w) =>
          search === undefined ||
          String(w.name ?? '')
            .toLowerCase()
            .includes(search),
      )
      .sort((a, b) => compare(String(a.name ?? a.id), String(b.name ?? b.id)) || compare(String(a.id), String(b.id)));
    return { workers };
  }

  /** `includeNode` (ours, the web console): the node a worker is connected to; null for in-process modules, which every node runs. */
  private workerSummaries(includeNode = false): Array<Record<string, Json>> {
    const registry = this.engine.registry;
    const seenModules = new Set<string>();
    const out: Array<Record<string, Json>> = [];
    for (const w of registry.workers()) {
      if (w.kind === 'module') {
        // Every node runs the same modules: list each once.
        if (seenModules.has(w.name ?? w.id)) continue;
        seenModules.add(w.name ?? w.id);
      }
      const summary = workerSummary(w, registry.functionsOf(w.id).length, this.activeInvocations(w));
      if (includeNode) summary.node_id = w.kind === 'module' ? null : w.nodeId;
      out.push(summary);
    }
    return out;
  }

  private activeInvocations(w: WorkerEntry): number {
    return w.kind === 'worker' ? (this.engine.session(w.id)?.activeInvocations ?? 0) : 0;
  }

  /**
   * `{name}` (a module first, then the first worker of that name) or `{worker_id}`. `latest_metrics`
   * (absent when there is none) is what the worker's SDK last reported in its `iii.worker.*`
   * gauges to this node, with the worker's runtime (iii-protocol.md `engine::workers::info`).
   */
  private workerInfo(input: Input): Json {
    const registry = this.engine.registry;
    const workerId = input.optString('worker_id');
    const all = [...registry.workers()];
    let w: WorkerEntry | undefined;
    if (workerId !== undefined) {
      w = registry.worker(workerId) ?? all.find((x) => x.kind === 'module' && x.name === workerId);
      if (!w) throw new EngineError(ErrorCode.notFound, `Worker '${workerId}' is not connected.`);
    } else {
      const name = input.string('name');
      w =
        all.find((x) => x.kind === 'module' && x.name === name) ??
        all.find((x) => x.kind === 'worker' && x.name === name);
      if (!w) throw new EngineError(ErrorCode.notFound, `Worker '${name}' is not connected.`);
    }
    const name = w.name ?? w.id;
    const functions = registry.functionsOf(w.id);
    const worker: Record<string, Json> = {
      ...workerSummary(w, functions.length, this.activeInvocations(w)),
      internal: w.kind === 'module',
    };
    if (w.pid !== undefined) worker.pid = w.pid;
    const metrics = w.kind === 'worker' ? this.engine.latestWorkerMetrics(w.id) : undefined;
    if (metrics) worker.latest_metrics = { ...metrics, runtime: w.runtime };
    const functionIds = new Set(functions.map((f) => f.id));
    return {
      worker,
      functions: functions.sort(byId).map((f) => functionSummary(registry, f)),
      trigger_types: [...registry.triggerTypes()]
        .filter((t) => triggerTypeOwner(registry, t) === name)
        .sort(byId)
        .map((t) => triggerTypeSummary(registry, t)),
      registered_triggers: [...registry.triggers()]
        .filter((t) => t.state === 'live' && functionIds.has(t.function_id))
        .sort(byId)
        .map((t) => bindingRow(registry, t)),
    };
  }

  private async registerWorker(input: Input): Promise<Json> {
    const registry = this.engine.registry;
    const workerId = input.optString('_caller_worker_id');
    const current = workerId === undefined ? undefined : registry.worker(workerId);
    if (!current || current.kind !== 'worker') return { success: true };
    const next: WorkerEntry = { ...current, runtime: input.optString('runtime') ?? 'unknown' };
    const name = sanitize(input.optString('name'));
    const description = sanitize(input.optString('description'));
    if (name) next.name = name;
    if (description) next.description = description;
    const os = input.optString('os');
    if (os !== undefined) next.os = os;
    const pid = input.optU32('pid');
    if (pid !== undefined) next.pid = pid;
    const isolation = input.optString('isolation');
    if (isolation !== undefined) next.isolation = isolation;
    next.version = input.optString('version');
    next.telemetry = input.raw('telemetry');
    // iii v0.23: the worker's namespace (SDK option `namespace` / III_NAMESPACE); absent: default.
    const namespace = input.optString('namespace');
    if (namespace !== undefined && !validNamespace(namespace))
      throw input.fail(
        'field `namespace` must be a non-blank name of at most 128 characters, without control characters',
      );
    if (namespace !== undefined) next.namespace = namespace;
    registry.apply({ op: 'worker.put', worker: next });
    if (namespace !== undefined) await this.engine.session(current.id)?.declareNamespace(namespace);
    this.engine.emitWorkerEvent('worker_metadata_updated', current.id);
    return { success: true };
  }

  /** A caller with an RBAC prefix binds its own (prefixed) function, and only to its allowed trigger types. */
  private async registerTrigger(input: Input, caller: SessionAccess | undefined): Promise<Json> {
    const triggerType = input.string('trigger_type');
    const functionId = input.string('function_id');
    const denial = caller?.triggerDenial(triggerType);
    if (denial) throw new EngineError(ErrorCode.forbidden, `Trigger binding refused: ${denial}`);
    const binding = {
      id: randomUUID(),
      trigger_type: triggerType,
      function_id: caller ? caller.prefixed(functionId) : functionId,
      config: input.raw('config') ?? null,
      metadata: input.raw('metadata'),
    };
    await this.engine.triggers.register(binding, undefined, REGISTER_ACK_MS);
    return { id: binding.id };
  }
}

/** Control characters, bidi overrides/isolates and line/paragraph separators removed; 280 chars. */
function sanitize(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;

  const clean = truncate(
    value.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g, ''),
    280,
    '',
  ).trim();
  return clean === '' ? undefined : clean;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
