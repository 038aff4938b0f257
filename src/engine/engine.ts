import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import type { RawData } from 'ws';
import type { EngineConfig, WorkerListenerConfig } from '../config/types';
import { ENGINE_VERSION } from '../config/version';
import { advertisedUrl } from '../cluster/advertise';
import { ChannelRelay, channelPrefix } from '../cluster/channel-relay';
import { ClusterNode } from '../cluster/cluster-node';
import { clusterRedis } from '../cluster/redis-target';
import { ChannelManager } from '../modules/channels';
import { DEFAULT_HTTP_TIMEOUT_MS, DEFAULT_MAX_BUFFERED_RESPONSE_BYTES, invokeHttpFunction, ResponseBudget, validateRegistration, type HttpFunctionOptions } from '../modules/http-functions';
import type { EngineModule, FunctionDefinition, ModuleHost, TriggerTypeDefinition } from '../modules/module';
import { createModules, reconfigureModules } from '../modules';
import { compareEngineSettings } from './settings';
import { ObservabilityModule } from '../modules/observability';
import { createLogger, setLogLevel, type Logger } from '../observability/logger';
import { LogLimiter } from '../observability/log-limiter';
import { EngineMetrics } from '../observability/metrics';
import { OpsServer, type Readiness } from '../observability/ops-server';
import { ConsoleServer } from '../console/server';
import { decodeFrame, encode, telemetrySignal, type TelemetrySignal } from '../protocol/codec';
import { EngineError, ErrorCode, errors } from '../protocol/errors';
import type { InvokeFunction, Json, RegisterFunction } from '../protocol/messages';
import { Registry } from '../registry/registry';
import type { FunctionEntry, TriggerEntry } from '../registry/types';
import { Router, type CallOutcome, type CallRequest, type LocalHandler, type WorkerTarget } from '../router/router';
import { AddressLimit } from '../transport/address-limit';
import { CloseCode, WorkerConnection } from '../transport/connection';
import { rawDataToBuffer } from '../transport/raw-data';
import { WorkerServer } from '../transport/worker-server';
import { authenticate } from './access/authenticate';
import { FrameHold, MAX_HELD_FRAMES } from './access/frame-hold';
import type { CallFunction } from './access/hooks';
import { sameSecret } from '../transport/secret';
import { SessionAccess } from './access/session-access';
import { openListenerWarning } from './access/upgrade-gate';
import { bindingCall } from './binding-groups';
import { TriggerManager, type TriggerProvider } from './triggers';
import { WorkerSession } from './worker-session';

export { ENGINE_VERSION };

/** How often the drain looks for idle worker sockets and pending calls, in milliseconds. */
const DRAIN_POLL_MS = 5;
/**
 * How long a draining cluster node keeps the entries of a worker it disconnected, in
 * milliseconds: the SDK reconnects after 1 s (+-30 %), then 2 s if that attempt fails.
 */
const DEPARTED_HOLD_MS = 5000;
/** Calls of one closed socket kept for its worker to claim from its next node (see `orphans`). */
const MAX_ORPHAN_CALLS = 1000;
/** How often a drain that waits logs what it waits for, in milliseconds. */
const DRAIN_REPORT_MS = 1000;
/** How long the stop waits for workers to answer the close frames (1012) before cutting them, in milliseconds. */
const CLOSE_HANDSHAKE_WAIT_MS = 1000;

export interface EngineOptions {
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

export type EngineState = 'created' | 'starting' | 'ready' | 'draining' | 'stopped';

/**
 * Events on `engine.events`: `worker` ({event, worker_id}), `telemetry` (signal, body, workerId),
 * `ready` (no argument: start() is done, the listeners take workers) and `draining` (no argument:
 * stop() began; listeners stop taking new work).
 */
export interface WorkerEvent {
  event: 'worker_connected' | 'worker_disconnected' | 'worker_metadata_updated';
  worker_id: string;
}

/**
 * The composition root of one node: listeners, registry, router, trigger state machine and the
 * built-in modules, with the lifecycle start -> ready -> drain -> stop.
 */
export class Engine implements ModuleHost {
  readonly nodeId: string;
  readonly logger: Logger;
  readonly registry = new Registry();
  readonly router: Router;
  readonly triggers: TriggerManager;
  readonly metrics: EngineMetrics;
  readonly channels: ChannelManager;
  readonly events = new EventEmitter();
  /** Present in cluster mode (a Redis URL is configured). */
  readonly cluster: ClusterNode | undefined;
  /** Cluster mode: carries workers' channel ends to the node that owns the channel. */
  private readonly channelRelay: ChannelRelay | undefined;
  private readonly sessions = new Map<string, WorkerSession>();
  private readonly servers: WorkerServer[];
  private readonly ops: OpsServer;
  /** The web console (`engine.console.port` set), else undefined. */
  private readonly console: ConsoleServer | undefined;
  private readonly modules: EngineModule[];
  /** Traces every call (set once modules exist; spans start when it has started). */
  private readonly observability: ObservabilityModule | undefined;
  private readonly httpFunctionOptions: HttpFunctionOptions;
  private opsPort = 0;
  private stopping: Promise<void> | undefined;
  /** Worker sockets the drain has closed, with when (performance.now()), until their close handshake is over. */
  private readonly drained = new Map<WebSocket, number>();
  /**
   * Cluster mode, draining: calls for this node's workers that were not sent to them (so they
   * can go idle and leave), by invocation id: `parked` until another node serves the function,
   * then `forwarded` there. Their pending entries stay keyed by the original worker.
   */
  private readonly diverted = new Map<string, { workerId: string; message: InvokeFunction; forwarded: boolean }>();
  /**
   * Cluster mode, draining: workers whose socket the drain closed, by id, with the time
   * (performance.now()) until which their registry entries are kept, so the cluster keeps
   * routing their functions here (parked) rather than failing them while they reconnect elsewhere.
   */
  private readonly departed = new Map<string, number>();
  /**
   * Cluster mode, draining: calls a worker sent on a socket the drain had already closed (the
   * frame crossed our close frame; iii-sdk never re-sends it, but keeps waiting for its answer),
   * by worker id, with that socket's reattach token. When the worker reconnects to another node,
   * that node broadcasts a claim (`reattach`) and the calls are handed to it, to be made there as
   * the new connection's own. Kept at most DEPARTED_HOLD_MS.
   */
  private readonly orphans = new Map<string, { token: string; calls: InvokeFunction[]; until: number }>();
  state: EngineState = 'created';
  /** When this node was made, in ms since the epoch: `engine::cluster::nodes` counts its uptime from here. */
  readonly createdAtMs = Date.now();
  /** Auth-function refusals and warnings, at most one line per listener and peer a minute (SDKs reconnect forever). */
  private readonly authLog = new LogLimiter();

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
      worker: (id) => this.workerTarget(id),
      httpInvoke: (entry, request) => invokeHttpFunction(entry.id, entry.invocation!, request.data, this.httpFunctionOptions),
      observe: (functionId, outcome, startedAt) => this.metrics.observe(functionId, outcome, startedAt),
      trace: (request) => this.observability?.startSpan(request),
      remote: (nodeId, message) => (this.cluster ? this.cluster.send(nodeId, message) : Promise.reject(new Error('not in cluster mode'))),
    });
    this.metrics = new EngineMetrics(() => this.router.pending.size, { node: this.nodeId });
    this.triggers = new TriggerManager(this.registry, this.nodeId, (id) => this.sessions.get(id)?.connection, this.logger);
    const redis = clusterRedis(config.cluster);
    if (redis !== undefined) {
      this.cluster = new ClusterNode(this.registry, this.router, this.triggers, this.nodeId, this.logger, {
        redis,
        keyPrefix: config.cluster.keyPrefix,
        bus: config.cluster.bus ?? 'redis',
        maxMessageBytes: config.limits.maxMessageBytes,
        ...(config.tls?.ca ? { ca: config.tls.ca } : {}),
      });
      if (config.cluster.bus === 'direct') this.metrics.watchLinks(() => this.cluster?.links);
    }
    this.channels = new ChannelManager({
      ttlMs: config.channels.ttlMs,
      defaultBufferMessages: config.channels.defaultBufferMessages,
      maxBufferMessages: config.channels.maxBufferMessages,
      maxBufferBytes: config.channels.maxBufferBytes,
      maxOpen: config.channels.maxOpen,
      onLimitRefused: (limit) => this.metrics.limitRefusals.inc({ limit }),
      maxMessageBytes: config.limits.maxMessageBytes,
      idPrefix: this.cluster ? channelPrefix(this.nodeId) : '',
      logger: this.logger,
    });
    if (this.cluster) {
      const cluster = this.cluster;
      cluster.onReattachClaim = (claim, from) => this.handOverOrphans(claim.previousWorkerId, claim.token, from, claim.workerId);
      cluster.onReattachCalls = (workerId, calls) => this.takeOverCalls(workerId, calls);
      this.channelRelay = new ChannelRelay(channelPrefix(this.nodeId), (prefix) => cluster.ownerUrl(prefix), config.limits.maxMessageBytes, this.logger, config.tls?.ca);
      this.channels.forwarder = this.channelRelay.forward;
    }
    this.httpFunctionOptions = {
      security: config.httpFunctions.security,
      env: options.env ?? process.env,
      maxResponseBytes: config.limits.maxMessageBytes,
      defaultTimeoutMs: DEFAULT_HTTP_TIMEOUT_MS,
      responseBudget: new ResponseBudget(DEFAULT_MAX_BUFFERED_RESPONSE_BYTES),
    };
    // One count over every worker listener: the limit is per client address, engine-wide.
    const addresses = new AddressLimit(config.limits.maxConnectionsPerAddress, 'max_connections_per_address', () =>
      this.metrics.limitRefusals.inc({ limit: 'max_connections_per_address' }),
    );
    // Connections read their listener's settings when they arrive: RBAC rules reload live.
    this.servers = config.listeners.map(
      (listener, i) =>
        new WorkerServer(listener, config.limits.maxMessageBytes, addresses, {
          onWorker: (socket, request) => this.acceptWorker(socket, request, this.config.listeners[i]!),
          onTelemetry: (socket, request) => this.acceptTelemetry(socket, request, this.config.listeners[i]!),
          onChannelUpgrade: (request, socket, head) => this.channels.handleUpgrade(request, socket, head),
          onLinkUpgrade: (request, socket, head) => this.cluster?.acceptLink(request, socket, head) ?? false,
        }, this.logger),
    );
    this.ops = new OpsServer(this.metrics, () => this.readiness());
    if (config.console.port !== undefined) {
      this.console = new ConsoleServer(
        // In-process and as the engine itself: the console needs no worker connection of its own.
        {
          nodeId: this.nodeId,
          call: async (functionId, data, observed, traceparent) =>
            (await (observed ? this.router.invoke({ functionId, data, ...(traceparent === undefined ? {} : { traceparent }) }) : this.router.invokeUnobserved({ functionId, data }))).result,
          readiness: () => this.readiness(),
        },
        {
          host: config.console.host,
          port: config.console.port,
          readOnly: config.console.readOnly,
          token: config.listeners[0]?.authToken,
          logger: this.logger,
          maxConnectionsPerAddress: config.limits.maxConnectionsPerAddress,
          onLimitRefused: () => this.metrics.limitRefusals.inc({ limit: 'engine.console.max_connections_per_address' }),
        },
      );
    }
    this.modules = createModules(this, config);
    this.observability = this.modules.find((m): m is ObservabilityModule => m instanceof ObservabilityModule);
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
    await this.cluster?.start(advertisedUrl(this.config.listeners[0]!.host, this.port, this.config.cluster.advertiseHost, this.config.listeners[0]!.tls !== undefined));
    this.opsPort = await this.ops.listen(this.config.metrics.port, this.config.metrics.host);
    await this.console?.listen();
    this.state = 'ready';
    this.logger.info(
      { workerPorts: this.servers.map((s) => s.port), metricsPort: this.opsPort, consolePort: this.console?.port, version: ENGINE_VERSION },
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
    this.cluster?.markDraining();
    for (const server of this.servers) server.stopAccepting();
    this.events.emit('draining');
    const settled = await this.drainSessions(startedAt + this.config.drainGraceMs);
    for (const workerId of [...this.departed.keys()]) this.forgetDeparted(workerId);
    for (const [workerId, held] of this.orphans) {
      this.logger.warn({ worker: workerId, calls: held.calls.length }, 'calls sent on a socket the drain closed were not claimed before the grace ended: lost');
      this.metrics.drainFailedCalls.inc({ reason: 'unclaimed' }, held.calls.length);
    }
    this.orphans.clear();
    const failed = this.router.pending.size;
    if (failed > 0) this.metrics.drainFailedCalls.inc({ reason: 'grace_expired' }, failed);
    this.router.pending.rejectAll(() => new EngineError(ErrorCode.shuttingDown, `The engine is shutting down: the call did not finish within the drain grace (${this.config.drainGraceMs} ms)`));
    // The rejections above answer their callers from promise callbacks: let them go out first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const sessions = [...this.sessions.values()];
    for (const session of sessions) {
      this.drained.set(session.connection.socket, performance.now());
      session.connection.close(CloseCode.serviceRestart, 'engine shutting down');
    }
    await Promise.all(sessions.map((session) => session.cleanup()));
    // The answers and close frames are still in the sockets' buffers: closing the listeners now
    // would cut them (the worker would see 1006 and lose its answers).
    await this.closeHandshakes(CLOSE_HANDSHAKE_WAIT_MS);
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
    this.logger.info({ drainMs, stopMs: Math.round(performance.now() - startedAt), graceExpired: !settled, callsFailed: failed }, 'iii-cluster engine stopped');
  }

  /**
   * The router's view of a worker. While a cluster node drains, its workers get no new calls:
   * each is forwarded to another node serving the function, or parked until one does (the
   * worker itself reconnects to another node within about a second, SDK backoff), so the worker
   * goes idle, its socket closes and nothing it was asked fails.
   */
  private workerTarget(workerId: string): WorkerTarget | undefined {
    const session = this.sessions.get(workerId);
    if (this.state !== 'draining' || !this.cluster) return session;
    if (!session && !this.departed.has(workerId)) return undefined;
    return {
      send: (message) => {
        this.diverted.set(message.invocation_id!, { workerId, message, forwarded: false });
        this.moveDiverted();
        return true;
      },
    };
  }

  /** Diverted calls of `workerId` still pending. */
  private divertedOf(workerId: string): number {
    let count = 0;
    for (const call of this.diverted.values()) if (call.workerId === workerId) count++;
    return count;
  }

  /**
   * Forwards each parked call whose function another node now serves; forgets settled calls;
   * drops the entries of departed workers once their functions are served elsewhere (or after
   * DEPARTED_HOLD_MS), failing what is still parked for them.
   */
  private moveDiverted(): void {
    for (const [id, call] of this.diverted) {
      if (this.router.pending.workerOf(id) === undefined) {
        this.diverted.delete(id);
        continue;
      }
      if (call.forwarded) continue;
      const target = this.servedElsewhere(call.message.function_id);
      if (!target) continue;
      call.forwarded = true;
      const { message } = call;
      const request: CallRequest = { functionId: message.function_id, data: message.data ?? null, pinned: target };
      if (message.metadata !== undefined) request.metadata = message.metadata;
      if (message.traceparent !== undefined) request.traceparent = message.traceparent;
      if (message.baggage !== undefined) request.baggage = message.baggage;
      this.router.invoke(request).then(
        (outcome) => this.router.pending.resolve(id, outcome),
        (err: unknown) => this.router.pending.reject(id, EngineError.from(err)),
      );
    }
    const now = performance.now();
    for (const [workerId, held] of this.orphans) {
      if (now < held.until) continue;
      this.orphans.delete(workerId);
      this.logger.warn({ worker: workerId, calls: held.calls.length }, 'calls sent on a socket the drain closed were not claimed by the worker from another node: lost');
      this.metrics.drainFailedCalls.inc({ reason: 'unclaimed' }, held.calls.length);
    }
    for (const [workerId, holdUntil] of this.departed) {
      const waiting = this.divertedOf(workerId) > 0;
      const replaced = this.registry.functionsOf(workerId).every((fn) => this.servedElsewhere(fn.id) !== undefined);
      if ((replaced && !waiting) || now >= holdUntil) this.forgetDeparted(workerId);
    }
  }

  /** A function entry on another node (the workers of a draining node take no new calls). */
  private servedElsewhere(functionId: string): FunctionEntry | undefined {
    return this.registry.pool(functionId).find((entry) => entry.nodeId !== this.nodeId);
  }

  /** Removes a departed worker's entries; calls still parked for it fail. */
  private forgetDeparted(workerId: string): void {
    this.departed.delete(workerId);
    for (const [id, call] of this.diverted) {
      if (call.workerId !== workerId || call.forwarded) continue;
      this.diverted.delete(id);
      this.metrics.drainFailedCalls.inc({ reason: 'no_target' });
      this.router.pending.reject(id, new EngineError(ErrorCode.invocationStopped, `Worker ${workerId} left draining node ${this.nodeId} and its function is served nowhere else`));
    }
    for (const fn of this.registry.functionsOf(workerId)) this.registry.apply({ op: 'function.remove', id: fn.id, workerId });
    this.registry.apply({ op: 'worker.remove', workerId });
  }

  /**
   * Whether a socket the drain closed may still deliver frames: until the worker answers our close
   * frame (at most CLOSE_HANDSHAKE_WAIT_MS), a call it sent before seeing it can still arrive
   * (cluster mode keeps such calls in `orphans`). A single node has nowhere to hand them.
   */
  private closingHandshakes(): boolean {
    if (!this.cluster) return false;
    const now = performance.now();
    for (const [socket, closedAt] of this.drained) {
      if (socket.readyState !== socket.CLOSED && now - closedAt < CLOSE_HANDSHAKE_WAIT_MS) return true;
    }
    return false;
  }

  /** Waits until every worker socket closed so far has finished its close handshake, at most `waitMs`. */
  private async closeHandshakes(waitMs: number): Promise<void> {
    const open = [...this.drained.keys()].filter((socket) => socket.readyState !== socket.CLOSED);
    this.drained.clear();
    if (open.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(open.map((socket) => new Promise((resolve) => socket.once('close', resolve)))),
      new Promise((resolve) => (timer = setTimeout(resolve, waitMs))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Closes each worker socket once nothing is pending on it, until none is left and no call is
   * pending, or until `deadline` (a performance.now() time). True when everything settled in time.
   */
  private async drainSessions(deadline: number): Promise<boolean> {
    let nextReportAt = performance.now() + DRAIN_REPORT_MS;
    for (;;) {
      this.moveDiverted();
      for (const session of this.sessions.values()) {
        if (session.activeInvocations - this.divertedOf(session.id) === 0 && !session.connection.closing) {
          this.drained.set(session.connection.socket, performance.now());
          session.connection.close(CloseCode.serviceRestart, 'engine shutting down');
          void session.cleanup();
        }
      }
      const idle = this.sessions.size === 0 && this.departed.size === 0 && this.router.pending.size === 0;
      if (idle && this.orphans.size === 0 && !this.closingHandshakes()) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      if (performance.now() >= nextReportAt) {
        nextReportAt += DRAIN_REPORT_MS;
        const busy = [...this.sessions.values()].map((session) => ({ worker: session.id, active: session.activeInvocations }));
        this.logger.info({ pendingCalls: this.router.pending.size, workers: busy, graceLeftMs: Math.round(left) }, 'draining: waiting for calls in flight');
      }
      await new Promise<void>((resolve) => setTimeout(resolve, Math.min(DRAIN_POLL_MS, left)));
    }
  }

  /**
   * Hot reload: applies `next`'s settings where they apply live (module settings through each
   * module's `reconfigure`, listeners' RBAC rules for connections made from now on) and says
   * what needs a restart. Nothing running is stopped.
   */
  async applySettings(next: EngineConfig): Promise<{ applied: string[]; restart: string[] }> {
    const { rbac, restart } = compareEngineSettings(this.config, next);
    const applied: string[] = [];
    if (next.logLevel !== this.config.logLevel) {
      if (setLogLevel(this.logger, next.logLevel)) {
        this.config.logLevel = next.logLevel;
        applied.push(`log level ${next.logLevel}`);
      } else {
        restart.push('the log level changed; restart the engine to apply it (this engine logs through a logger of its embedder)');
      }
    }
    for (const [i, rules] of rbac) {
      const listener = { ...this.config.listeners[i]! };
      if (rules === undefined) delete listener.rbac;
      else listener.rbac = rules;
      this.config.listeners[i] = listener;
      applied.push(`${listener.instanceId} rbac`);
    }
    const modules = await reconfigureModules(this.modules, next);
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
    return this.sessions.get(workerId);
  }

  /** The latest resource metrics (memory, CPU, event loop) the worker's SDK sent to this node, if any. */
  latestWorkerMetrics(workerId: string): Record<string, Json> | undefined {
    return this.observability?.latestWorkerMetrics(workerId);
  }

  /** What the connection `workerId` may do; undefined for engine-internal callers (everything). */
  accessOf(workerId: string | undefined): SessionAccess | undefined {
    return workerId === undefined ? undefined : this.sessions.get(workerId)?.access;
  }

  /** Calls a function through the router with a deadline (auth functions, RBAC hooks, middleware). */
  readonly callFunction: CallFunction = (functionId, data, timeoutMs) => this.router.invoke({ functionId, data, timeoutMs });

  readiness(): Readiness {
    const clusterReady = this.cluster?.ready ?? true;
    const ready = this.state === 'ready' && clusterReady;
    const redis = clusterReady ? 'ok' : (this.cluster?.redisProblem ?? 'unreachable');
    return { ready, draining: this.state === 'draining', checks: this.cluster ? { state: this.state, redis } : { state: this.state } };
  }

  // ModuleHost

  registerFunction(moduleName: string, definition: FunctionDefinition, handler: LocalHandler): void {
    const workerId = this.moduleWorkerId(moduleName);
    this.router.setLocalHandler(workerId, definition.id, handler);
    this.registry.apply({ op: 'function.put', fn: { ...definition, workerId, nodeId: this.nodeId } });
  }

  registerTriggerType(moduleName: string, definition: TriggerTypeDefinition, provider: TriggerProvider): Promise<void> {
    return this.triggers.registerType({ ...definition, workerId: this.moduleWorkerId(moduleName), nodeId: this.nodeId }, provider);
  }

  invoke(request: CallRequest): Promise<CallOutcome> {
    return this.router.invoke(request);
  }

  fire(trigger: TriggerEntry, payload: Json): void {
    this.router
      .invoke(bindingCall(this.registry, trigger, payload, trigger.metadata))
      .catch((err: unknown) => this.logger.warn({ err, trigger: trigger.id, functionId: trigger.function_id }, 'trigger handler failed'));
  }

  /** The registry id of an in-process module on this node. */
  moduleWorkerId(moduleName: string): string {
    let id = `${moduleName}@${this.nodeId}`;
    if (!this.registry.worker(id)) {
      this.registry.apply({
        op: 'worker.put',
        worker: { id, nodeId: this.nodeId, kind: 'module', name: moduleName, runtime: 'engine', version: ENGINE_VERSION, isolation: 'in-process', connectedAtMs: Date.now() },
      });
    }
    return id;
  }

  // Worker connections

  private acceptWorker(socket: WebSocket, request: IncomingMessage, listener: WorkerListenerConfig): void {
    if (this.state !== 'ready') {
      socket.close(CloseCode.serviceRestart, 'engine not ready');
      return;
    }
    this.admit(socket, request, listener, (access, held) => {
      const connection = new WorkerConnection(socket, request.socket.remoteAddress ?? '', this.config.limits.maxSendQueueBytes, () =>
        this.metrics.slowConsumers.inc(),
      );
      const session = new WorkerSession(this, connection, access);
      this.sessions.set(connection.id, session);
      this.metrics.connectedWorkers.inc();
      this.registry.apply({
        op: 'worker.put',
        worker: { id: connection.id, nodeId: this.nodeId, kind: 'worker', runtime: 'unknown', ipAddress: connection.ipAddress, connectedAtMs: connection.connectedAtMs },
      });
      connection.send({ type: 'workerregistered', worker_id: connection.id, reattach_token: connection.reattachToken });
      for (const [data, isBinary] of held) session.onFrame(data, isBinary);
      socket.on('message', (data, isBinary) => session.onFrame(data, isBinary));
      socket.on('close', () => {
        session.cleanup().catch((err: unknown) => this.logger.error({ err, worker: connection.id }, 'worker cleanup failed'));
      });
      this.emitWorkerEvent('worker_connected', connection.id);
    });
  }

  private acceptTelemetry(socket: WebSocket, request: IncomingMessage, listener: WorkerListenerConfig): void {
    // Only binary telemetry frames count on this socket; text frames are ignored, as in the original.
    const onFrame = (data: RawData, isBinary: boolean): void => {
      if (!isBinary) return;
      const frame = rawDataToBuffer(data);
      const signal = telemetrySignal(frame);
      if (signal) this.ingestTelemetry(signal, frame.subarray(4), undefined);
    };
    this.admit(socket, request, listener, (_access, held) => {
      for (const [data, isBinary] of held) onFrame(data, isBinary);
      socket.on('message', onFrame);
    });
  }

  /**
   * Lets a new socket in: at once on a port without an RBAC auth function; otherwise once the
   * auth function (called through the router, deadline `handshake_timeout_ms`) has allowed it.
   * Until then the connection is nobody (no worker id, no registry entry) and its frames are held
   * (at most MAX_HELD_FRAMES frames and `max_message_bytes` bytes, else it is closed 1008). A
   * refusal is the original's `{"type":"error","error":{"code":"AUTH_ERROR",...}}` frame, then
   * a close (1008).
   */
  private admit(socket: WebSocket, request: IncomingMessage, listener: WorkerListenerConfig, admitted: (access: SessionAccess, held: Array<[RawData, boolean]>) => void): void {
    socket.on('error', (err) => this.logger.debug({ err, listener: listener.instanceId }, 'worker socket error'));
    const authFunctionId = listener.rbac?.auth_function_id;
    if (authFunctionId === undefined) return admitted(SessionAccess.permissive(listener), []);
    const maxBytes = this.config.limits.maxMessageBytes;
    const hold = new FrameHold(maxBytes);
    const onHeld = (data: RawData, isBinary: boolean): void => {
      if (!hold.push(data, isBinary)) socket.close(CloseCode.policy, `over ${MAX_HELD_FRAMES} frames or ${maxBytes} bytes before auth`);
    };
    socket.on('message', onHeld);
    const peer = request.socket.remoteAddress;
    authenticate(listener, authFunctionId, request, this.callFunction).then(
      (access) => {
        socket.off('message', onHeld);
        if (socket.readyState !== socket.OPEN) return;
        if (this.state !== 'ready') return socket.close(CloseCode.serviceRestart, 'engine not ready');
        for (const id of access.forbiddenInfrastructure()) {
          this.authLog.warn(this.logger, `infra:${listener.instanceId}:${id}`, { listener: listener.instanceId, peer, functionId: id }, 'the auth function forbids an infrastructure function the SDKs call on their own');
        }
        admitted(access, hold.take());
      },
      (err: unknown) => {
        socket.off('message', onHeld);
        const message = EngineError.from(err).message;
        this.authLog.warn(this.logger, `refused:${listener.instanceId}:${peer ?? ''}`, { listener: listener.instanceId, peer, reason: message }, 'worker connection refused by the auth function');
        if (socket.readyState !== socket.OPEN) return;
        socket.send(encode({ type: 'error', error: { code: ErrorCode.authError, message } }));
        socket.close(CloseCode.policy, 'authentication failed');
      },
    );
  }

  /** SDK telemetry frames (OTLP/JSON) go to whoever listens; they are never parsed as protocol. */
  ingestTelemetry(signal: TelemetrySignal, body: Buffer, workerId: string | undefined): void {
    this.events.emit('telemetry', signal, body, workerId);
  }

  emitWorkerEvent(event: WorkerEvent['event'], workerId: string): void {
    this.events.emit('worker', { event, worker_id: workerId } satisfies WorkerEvent);
  }

  registerWorkerFunction(workerId: string, message: RegisterFunction): void {
    const { type: _type, invocation, ...definition } = message;
    if (invocation) {
      if (!this.config.httpFunctions.enabled) {
        this.logger.warn({ worker: workerId, functionId: message.id }, 'HTTP-invoked function ignored: the iii-http-functions module is disabled');
        return;
      }
      const invalid = validateRegistration(invocation, this.httpFunctionOptions);
      if (invalid) {
        this.logger.warn({ worker: workerId, functionId: message.id, code: invalid.code, reason: invalid.message }, 'HTTP-invoked function refused');
        return;
      }
    }
    const fn = { ...definition, workerId, nodeId: this.nodeId };
    this.registry.apply({ op: 'function.put', fn: invocation ? { ...fn, invocation } : fn });
  }

  /** The `enqueue` action: handed to `engine::queue::enqueue`, answered with a receipt. */
  async enqueue(queue: string, message: InvokeFunction): Promise<CallOutcome> {
    const messageReceiptId = randomUUID();
    const data: Record<string, Json> = { queue, function_id: message.function_id, data: message.data, messageReceiptId };
    if (message.traceparent !== undefined) data.traceparent = message.traceparent;
    if (message.baggage !== undefined) data.baggage = message.baggage;
    try {
      await this.router.invoke({ functionId: 'engine::queue::enqueue', data });
    } catch (err) {
      const cause = EngineError.from(err);
      const text =
        cause.code === ErrorCode.functionNotFound
          ? `No queue provider is installed: enable the queue module (add "- name: iii-queue" to workers) to enqueue ${message.function_id} on "${queue}"`
          : cause.message;
      throw new EngineError(ErrorCode.enqueueError, text);
    }
    return { result: { messageReceiptId } };
  }

  /** Retires a previous connection of a reconnecting worker before its replay (protocol §3.3). */
  async reattach(current: WorkerSession, previousId: string, token: string | undefined): Promise<void> {
    const previous = this.sessions.get(previousId);
    if (!previous && this.cluster && token !== undefined) {
      // The previous connection was on another node: if a drain closed it, that node may hold calls it sent.
      // One claim per connection: a worker repeating `reattach` must not turn into a broadcast storm.
      if (current.claimedPrevious) return;
      current.claimedPrevious = true;
      const claim = { type: 'reattach.claim' as const, previousWorkerId: previousId, token, workerId: current.id };
      this.cluster.broadcast(claim).catch((err: unknown) => this.logger.debug({ err, worker: current.id }, 'reattach claim not broadcast'));
      return;
    }
    if (!previous || previous === current || token === undefined || !sameSecret(token, previous.connection.reattachToken)) return;
    previous.connection.close(CloseCode.normal, 'reattached by a new connection');
    await previous.cleanup();
  }

  /**
   * A frame that arrived on a socket already closing. A call on a socket the drain closed (cluster
   * mode) is kept in `orphans` for the worker to claim from its next node; anything else is dropped.
   */
  lateFrame(session: WorkerSession, data: RawData, isBinary: boolean): void {
    if (this.state !== 'draining' || !this.cluster || !this.drained.has(session.connection.socket)) return;
    const decoded = decodeFrame(rawDataToBuffer(data), isBinary);
    if (decoded.kind !== 'message' || decoded.message.type !== 'invokefunction') return;
    let held = this.orphans.get(session.id);
    if (!held) {
      held = { token: session.connection.reattachToken, calls: [], until: performance.now() + DEPARTED_HOLD_MS };
      this.orphans.set(session.id, held);
    }
    if (held.calls.length < MAX_ORPHAN_CALLS) held.calls.push(decoded.message);
  }

  /** A claim for the calls of `previousWorkerId` from node `to`: hands them over if the token matches. */
  private handOverOrphans(previousWorkerId: string, token: string, to: string, workerId: string): void {
    const held = this.orphans.get(previousWorkerId);
    if (!held || !sameSecret(token, held.token)) return;
    this.orphans.delete(previousWorkerId);
    this.cluster!.send(to, { type: 'reattach.calls', workerId, calls: held.calls }).catch((err: unknown) =>
      this.logger.warn({ err, worker: previousWorkerId, calls: held.calls.length, peer: to }, 'calls of a closed socket not handed over to the worker\'s new node: lost'),
    );
  }

  /** Calls another node held for a worker now connected here: made as this connection's own. */
  private takeOverCalls(workerId: string, calls: InvokeFunction[]): void {
    const session = this.sessions.get(workerId);
    if (!session) {
      this.logger.warn({ worker: workerId, calls: calls.length }, 'calls handed over for a connection that is gone: lost');
      return;
    }
    for (const call of calls) session.acceptCall(call);
  }

  /** The disconnect cleanup (protocol §3.4), run once per connection. */
  async removeWorker(session: WorkerSession): Promise<void> {
    const id = session.id;
    session.connection.closing = true;
    if (this.sessions.get(id) === session) {
      this.sessions.delete(id);
      this.metrics.connectedWorkers.dec();
    }
    if (this.state === 'draining' && this.cluster && this.drained.has(session.connection.socket)) {
      // Its calls in flight are over (the drain closed it idle) or diverted; its entries stay a
      // while, so calls for it keep coming here and are parked until it serves again elsewhere.
      this.departed.set(id, performance.now() + DEPARTED_HOLD_MS);
      await this.triggers.workerGone(id);
      this.emitWorkerEvent('worker_disconnected', id);
      return;
    }
    for (const fn of this.registry.functionsOf(id)) this.registry.apply({ op: 'function.remove', id: fn.id, workerId: id });
    this.router.pending.rejectWorker(id, errors.invocationStopped);
    await this.triggers.workerGone(id);
    this.registry.apply({ op: 'worker.remove', workerId: id });
    this.emitWorkerEvent('worker_disconnected', id);
  }
}
