import { EventEmitter } from 'node:events';
import type { EngineConfig } from '../config/types';
import { ENGINE_VERSION } from '../config/version';
import { advertisedUrl } from '../cluster/advertise';
import type { ChannelRelay } from '../cluster/channel-relay';
import { ClusterNode } from '../cluster/cluster-node';
import type { Peers } from '../cluster/peer-queries';
import { clusterRedis } from '../cluster/redis-target';
import { createLogger, type Logger } from '../observability/logger';
import { EngineMetrics } from '../observability/metrics';
import type { ConsoleServer } from '../console/server';
import { OpsServer, type Readiness } from '../observability/ops-server';
import type { Json } from '../protocol/messages';
import { Registry } from '../registry/registry';
import type { TriggerEntry } from '../registry/types';
import { defaultHttpFunctionOptions, invokeHttpFunction, type HttpFunctionOptions } from '../router/http-functions';
import { Router, type CallOutcome, type CallRequest, type LocalHandler } from '../router/router';
import { AddressLimit } from '../transport/address-limit';
import type { ChannelManager } from '../transport/channels';
import { WorkerServer } from '../transport/worker-server';
import type { CallFunction } from './access/hooks';
import type { SessionAccess } from './access/session-access';
import { checkUpgrade, openListenerWarning } from './access/upgrade-gate';
import { bindingCall } from './binding-groups';
import { nodeChannels } from './channels';
import { nodeConsole } from './console';
import type {
  CallObserver,
  EngineModule,
  FunctionDefinition,
  ModuleHost,
  ModuleSet,
  TriggerTypeDefinition,
} from './module';
import { applyEngineSettings } from './settings';
import { TriggerManager, type TriggerProvider } from './triggers';
import type { WorkerSession } from './worker-session';
import { Workers, type WorkerEvent } from './workers';

export interface EngineOptions {
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** The modules the node runs (none when absent); `createEngine` hands in the built-in ones. */
  modules?: ModuleSet<Engine>;
}

/** Engine event emitted by the configuration module with the id after every accepted change. */
export const CONFIGURATION_CHANGED = 'configuration:changed';

export type EngineState = 'created' | 'starting' | 'ready' | 'draining' | 'stopped';

/**
 * The composition root of one node: listeners, registry, router, trigger state machine, cluster
 * membership and the modules its caller hands it, with the lifecycle start -> ready -> drain ->
 * stop. Worker connections and the drain are `Workers` (src/engine/workers.ts, drain.ts).
 */
export class Engine implements ModuleHost {
  readonly nodeId: string;
  readonly logger: Logger;
  readonly registry = new Registry();
  readonly router: Router;
  readonly triggers: TriggerManager;
  readonly metrics: EngineMetrics;
  readonly channels: ChannelManager;
  /**
   * `worker` (a WorkerEvent), `telemetry` (signal, body, workerId), `ready` (start() is done, the
   * listeners take workers), `draining` (stop() began; listeners stop taking new work) and
   * CONFIGURATION_CHANGED.
   */
  readonly events = new EventEmitter();
  /** Present in cluster mode (a Redis URL is configured). */
  readonly cluster: ClusterNode | undefined;
  /** Modules' queries to the other nodes (ModuleHost.peers): the cluster node, in cluster mode. */
  readonly peers: Peers | undefined;
  /** Cluster mode: carries workers' channel ends to the node that owns the channel. */
  private readonly channelRelay: ChannelRelay | undefined;
  private readonly workers: Workers;
  private readonly servers: WorkerServer[];
  private readonly ops: OpsServer;
  /** The web console (`engine.console.port` set), else undefined. */
  private readonly console: ConsoleServer | undefined;
  private readonly modules: EngineModule[];
  private readonly moduleSet: ModuleSet<Engine> | undefined;
  /** Traces every call (set once modules exist; spans start when it has started). */
  private readonly observer: CallObserver | undefined;
  private readonly httpFunctionOptions: HttpFunctionOptions;
  private opsPort = 0;
  private stopping: Promise<void> | undefined;
  state: EngineState = 'created';
  /** When this node was made, in ms since the epoch: `engine::cluster::nodes` counts its uptime from here. */
  readonly createdAtMs = Date.now();

  constructor(
    readonly config: EngineConfig,
    options: EngineOptions = {},
  ) {
    this.nodeId = config.nodeId;
    this.logger = (options.logger ?? createLogger(config.logLevel)).child({ node: config.nodeId });
    this.events.setMaxListeners(0);
    this.router = new Router({
      registry: this.registry,
      nodeId: this.nodeId,
      defaultTimeoutMs: config.invocationTimeoutMs,
      maxPendingCalls: config.limits.maxPendingCallsPerNode,
      onPendingLimit: () => this.metrics.limitRefusals.inc({ limit: 'max_pending_calls_per_node' }),
      worker: (id) => this.workers.drain.target(id),
      httpInvoke: (entry, request) =>
        invokeHttpFunction(entry.id, entry.invocation!, request.data, this.httpFunctionOptions),
      observe: (functionId, outcome, startedAt) => this.metrics.observe(functionId, outcome, startedAt),
      trace: (request) => this.observer?.startSpan(request),
      remote: (nodeId, message) => {
        if (!this.cluster) return Promise.reject(new Error('not in cluster mode'));
        this.metrics.countCrossNode('out', nodeId);
        return this.cluster.send(nodeId, message);
      },
    });
    this.metrics = new EngineMetrics(() => this.router.pending.size, { node: this.nodeId });
    this.triggers = new TriggerManager(
      this.registry,
      this.nodeId,
      (id) => this.workers.sessions.get(id)?.connection,
      this.logger,
    );
    const redis = clusterRedis(config.cluster);
    if (redis !== undefined) {
      redis.onError = (connection) => this.metrics.redisErrors.inc({ connection });
      this.cluster = new ClusterNode(this.registry, this.router, this.triggers, this.nodeId, this.logger, {
        redis,
        keyPrefix: config.cluster.keyPrefix,
        bus: config.cluster.bus ?? 'redis',
        maxMessageBytes: config.limits.maxMessageBytes,
        ...(config.tls?.ca ? { ca: config.tls.ca } : {}),
      });
      if (config.cluster.bus === 'direct') this.metrics.watchLinks(() => this.cluster?.links);
      this.cluster.onServe = (from) => this.metrics.countCrossNode('in', from);
    }
    this.peers = this.cluster;
    this.metrics.watchNode(() =>
      this.cluster
        ? { draining: this.state === 'draining', redisUp: this.cluster.ready, nodes: this.cluster.nodeCount }
        : { draining: this.state === 'draining' },
    );
    ({ channels: this.channels, relay: this.channelRelay } = nodeChannels(
      config,
      this.cluster,
      this.metrics,
      this.logger,
    ));
    if (this.cluster) {
      this.cluster.onReattachClaim = (claim, from) =>
        this.workers.drain.handOverOrphans(claim.previousWorkerId, claim.token, from, claim.workerId);
      this.cluster.onReattachCalls = (workerId, calls) => this.workers.drain.takeOverCalls(workerId, calls);
    }
    // A response may be as large as a message.
    const httpFunctions = {
      ...defaultHttpFunctionOptions(config.httpFunctions.security, options.env),
      maxResponseBytes: config.limits.maxMessageBytes,
    };
    this.httpFunctionOptions = httpFunctions;
    const { registry, router, triggers, metrics, logger, events, cluster, callFunction } = this;
    this.workers = new Workers({
      nodeId: this.nodeId,
      config,
      registry,
      router,
      triggers,
      metrics,
      logger,
      events,
      cluster,
      callFunction,
      httpFunctions,
      ready: () => this.state === 'ready',
    });
    // One count over every worker listener: the limit is per client address, engine-wide.
    const addresses = new AddressLimit(config.limits.maxConnectionsPerAddress, 'max_connections_per_address', () =>
      this.metrics.limitRefusals.inc({ limit: 'max_connections_per_address' }),
    );
    // Connections read their listener's settings when they arrive: RBAC rules reload live.
    this.servers = config.listeners.map(
      (listener, i) =>
        new WorkerServer(
          listener,
          config.limits.maxMessageBytes,
          addresses,
          {
            checkUpgrade: (request) => checkUpgrade(this.config.listeners[i], request),
            onWorker: (socket, request) => this.workers.acceptWorker(socket, request, this.config.listeners[i]),
            onTelemetry: (socket, request) => this.workers.acceptTelemetry(socket, request, this.config.listeners[i]),
            onChannelUpgrade: (request, socket, head) => this.channels.handleUpgrade(request, socket, head),
            onLinkUpgrade: (request, socket, head) => this.cluster?.acceptLink(request, socket, head) ?? false,
          },
          this.logger,
        ),
    );
    this.ops = new OpsServer(this.metrics, () => this.readiness());
    this.console = nodeConsole(config, this.router, this.registry, this.metrics, this.logger, () => this.readiness());
    this.moduleSet = options.modules;
    const made = this.moduleSet?.create(this, config);
    this.modules = made?.modules ?? [];
    this.observer = made?.observer;
  }

  async start(): Promise<void> {
    if (this.state !== 'created') throw new Error(`Engine cannot start from state ${this.state}`);
    this.state = 'starting';
    for (const module of this.modules) await module.start(this);
    for (const server of this.servers) await server.listen();
    for (const listener of this.config.listeners) {
      const warning = openListenerWarning(listener);
      if (warning) this.logger.warn({ listener: listener.instanceId, host: listener.host }, warning);
    }
    // Workers are refused until `ready`, so listening before joining the cluster is safe.
    await this.cluster?.start(
      advertisedUrl(
        this.config.listeners[0].host,
        this.port,
        this.config.cluster.advertiseHost,
        this.config.listeners[0].tls !== undefined,
      ),
    );
    this.opsPort = await this.ops.listen(this.config.metrics.port, this.config.metrics.host);
    await this.console?.listen();
    this.state = 'ready';
    this.logger.info(
      {
        workerPorts: this.servers.map((s) => s.port),
        metricsPort: this.opsPort,
        consolePort: this.console?.port,
        version: ENGINE_VERSION,
      },
      'iii-cluster engine ready',
    );
    this.events.emit('ready');
  }

  /**
   * Drains, then stops (idempotent: every caller waits for the same shutdown).
   *
   * 1. `draining`: /readyz answers 503 at once, new worker connections are refused (503), the
   *    HTTP trigger server refuses new requests (the `draining` event).
   * 2. Grace (`drainGraceMs`): calls in flight finish. "In flight" is every call in
   *    `router.pending` (calls this node routed to a worker, local or on another node, and calls
   *    other nodes routed to this node's workers) plus the calls each connected worker is waiting
   *    on. Each worker socket is closed (1012, the SDK reconnects through the load balancer) as
   *    soon as nothing is pending on it either way; until then it is served normally, including
   *    new calls it makes. In cluster mode new calls for this node's workers are not sent to them
   *    but forwarded to, or parked until, another node serving the function (`workerTarget`), and
   *    the entries of a worker closed this way stay up to DEPARTED_HOLD_MS, until it has
   *    re-registered elsewhere. The grace ends early when no socket, no parked worker and no
   *    pending call is left.
   * 3. Calls still pending fail with `engine_shutting_down`; the remaining sockets are closed (1012).
   * 4. Leave the cluster, stop the modules, close the listeners.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private async shutDown(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'created') {
      this.state = 'stopped';
      return;
    }
    const startedAt = performance.now();
    this.state = 'draining';
    this.workers.drain.begin();
    this.cluster?.markDraining();
    for (const server of this.servers) server.stopAccepting();
    this.events.emit('draining');
    const { settled, failed } = await this.workers.drain.run(
      startedAt + this.config.drainGraceMs,
      this.config.drainGraceMs,
    );
    const drainMs = Math.round(performance.now() - startedAt);
    // Before the modules stop: the console calls their functions.
    await this.console?.close();
    await this.cluster?.stop();
    for (const module of [...this.modules].reverse()) await module.stop();
    this.channels.close();
    this.channelRelay?.close();
    await Promise.all(this.servers.map((server) => server.close()));
    await this.ops.close();
    this.state = 'stopped';
    this.logger.info(
      { drainMs, stopMs: Math.round(performance.now() - startedAt), graceExpired: !settled, callsFailed: failed },
      'iii-cluster engine stopped',
    );
  }

  /**
   * Hot reload: applies `next`'s settings where they apply live (module settings through each
   * module's `reconfigure`, listeners' RBAC rules for connections made from now on) and says
   * what needs a restart. Nothing running is stopped.
   */
  async applySettings(next: EngineConfig): Promise<{ applied: string[]; restart: string[] }> {
    const { applied, restart } = applyEngineSettings(this.config, next, this.logger);
    const modules = this.moduleSet
      ? await this.moduleSet.reconfigure(this.modules, next)
      : { applied: [], restart: [] };
    return { applied: [...applied, ...modules.applied], restart: [...restart, ...modules.restart] };
  }

  /** The port of the first worker listener (the engine's main port). */
  get port(): number {
    return this.servers[0].port;
  }

  /** The ports of every worker listener, in config order. */
  get ports(): number[] {
    return this.servers.map((server) => server.port);
  }

  get metricsPort(): number {
    return this.opsPort;
  }

  /** The web console's port; undefined when the console is off. */
  get consolePort(): number | undefined {
    return this.console?.port;
  }

  /** A running module by name (`iii-http`, `iii-stream`, ...), for tests and embedding. */
  module<T extends EngineModule>(name: string): T | undefined {
    return this.modules.find((m) => m.name === name) as T | undefined;
  }

  session(workerId: string): WorkerSession | undefined {
    return this.workers.sessions.get(workerId);
  }

  /** The latest resource metrics (memory, CPU, event loop) the worker's SDK sent to this node, if any. */
  latestWorkerMetrics(workerId: string): Record<string, Json> | undefined {
    return this.observer?.latestWorkerMetrics(workerId);
  }

  /** What the connection `workerId` may do; undefined for engine-internal callers (everything). */
  accessOf(workerId: string | undefined): SessionAccess | undefined {
    return workerId === undefined ? undefined : this.workers.sessions.get(workerId)?.access;
  }

  /** Calls a function through the router with a deadline (auth functions, RBAC hooks, middleware). */
  readonly callFunction: CallFunction = (functionId, data, timeoutMs) =>
    this.router.invoke({ functionId, data, timeoutMs });

  readiness(): Readiness {
    const clusterReady = this.cluster?.ready ?? true;
    const ready = this.state === 'ready' && clusterReady;
    const redis = clusterReady ? 'ok' : (this.cluster?.redisProblem ?? 'unreachable');
    return {
      ready,
      draining: this.state === 'draining',
      checks: this.cluster ? { state: this.state, redis } : { state: this.state },
    };
  }

  emitWorkerEvent(event: WorkerEvent['event'], workerId: string): void {
    this.workers.emitWorkerEvent(event, workerId);
  }

  // ModuleHost

  registerFunction(moduleName: string, definition: FunctionDefinition, handler: LocalHandler): void {
    const workerId = this.moduleWorkerId(moduleName);
    this.router.setLocalHandler(workerId, definition.id, handler);
    this.registry.apply({ op: 'function.put', fn: { ...definition, workerId, nodeId: this.nodeId } });
  }

  registerTriggerType(moduleName: string, definition: TriggerTypeDefinition, provider: TriggerProvider): Promise<void> {
    return this.triggers.registerType(
      { ...definition, workerId: this.moduleWorkerId(moduleName), nodeId: this.nodeId },
      provider,
    );
  }

  invoke(request: CallRequest): Promise<CallOutcome> {
    return this.router.invoke(request);
  }

  fire(trigger: TriggerEntry, payload: Json): void {
    this.router
      .invoke(bindingCall(this.registry, trigger, payload, trigger.metadata))
      .catch((err: unknown) =>
        this.logger.warn({ err, trigger: trigger.id, functionId: trigger.function_id }, 'trigger handler failed'),
      );
  }

  /** The registry id of an in-process module on this node. */
  moduleWorkerId(moduleName: string): string {
    const id = `${moduleName}@${this.nodeId}`;
    if (!this.registry.worker(id)) {
      this.registry.apply({
        op: 'worker.put',
        worker: {
          id,
          nodeId: this.nodeId,
          kind: 'module',
          name: moduleName,
          runtime: 'engine',
          version: ENGINE_VERSION,
          isolation: 'in-process',
          connectedAtMs: Date.now(),
        },
      });
    }
    return id;
  }
}
