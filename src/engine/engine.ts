import { randomUUID, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import type { EngineConfig } from '../config/types';
import { ENGINE_VERSION } from '../config/version';
import { advertisedUrl } from '../cluster/advertise';
import { ChannelRelay, channelPrefix } from '../cluster/channel-relay';
import { ClusterNode } from '../cluster/cluster-node';
import { ChannelManager } from '../modules/channels';
import { DEFAULT_HTTP_TIMEOUT_MS, invokeHttpFunction, validateRegistration, type HttpFunctionOptions } from '../modules/http-functions';
import type { EngineModule, FunctionDefinition, ModuleHost, TriggerTypeDefinition } from '../modules/module';
import { createModules } from '../modules';
import { ObservabilityModule } from '../modules/observability';
import { createLogger, type Logger } from '../observability/logger';
import { EngineMetrics } from '../observability/metrics';
import { OpsServer, type Readiness } from '../observability/ops-server';
import { telemetrySignal, type TelemetrySignal } from '../protocol/codec';
import { EngineError, ErrorCode, errors } from '../protocol/errors';
import type { InvokeFunction, Json, RegisterFunction } from '../protocol/messages';
import { Registry } from '../registry/registry';
import type { TriggerEntry } from '../registry/types';
import { Router, type CallOutcome, type CallRequest, type LocalHandler } from '../router/router';
import { CloseCode, WorkerConnection } from '../transport/connection';
import { rawDataToBuffer } from '../transport/raw-data';
import { WorkerServer } from '../transport/worker-server';
import { TriggerManager, type TriggerProvider } from './triggers';
import { WorkerSession } from './worker-session';

export { ENGINE_VERSION };

export interface EngineOptions {
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

export type EngineState = 'created' | 'starting' | 'ready' | 'draining' | 'stopped';

/** Events on `engine.events`: `worker` ({event, worker_id}) and `telemetry` (signal, body, workerId). */
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
  private readonly modules: EngineModule[];
  /** Traces every call (set once modules exist; spans start when it has started). */
  private readonly observability: ObservabilityModule | undefined;
  private readonly httpFunctionOptions: HttpFunctionOptions;
  private opsPort = 0;
  state: EngineState = 'created';

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
      worker: (id) => this.sessions.get(id)?.connection,
      httpInvoke: (entry, request) => invokeHttpFunction(entry.id, entry.invocation!, request.data, this.httpFunctionOptions),
      observe: (functionId, outcome, startedAt) => this.metrics.observe(functionId, outcome, startedAt),
      trace: (request) => this.observability?.startSpan(request),
      remote: (nodeId, message) => (this.cluster ? this.cluster.send(nodeId, message) : Promise.reject(new Error('not in cluster mode'))),
    });
    this.metrics = new EngineMetrics(() => this.router.pending.size, { node: this.nodeId });
    this.triggers = new TriggerManager(this.registry, this.nodeId, (id) => this.sessions.get(id)?.connection, this.logger);
    if (config.cluster.redisUrl !== undefined) {
      this.cluster = new ClusterNode(this.registry, this.router, this.triggers, this.nodeId, this.logger, {
        redisUrl: config.cluster.redisUrl,
        keyPrefix: config.cluster.keyPrefix,
      });
    }
    this.channels = new ChannelManager({
      ttlMs: config.channels.ttlMs,
      defaultBufferMessages: config.channels.defaultBufferMessages,
      maxBufferMessages: config.channels.maxBufferMessages,
      maxMessageBytes: config.limits.maxMessageBytes,
      idPrefix: this.cluster ? channelPrefix(this.nodeId) : '',
      logger: this.logger,
    });
    if (this.cluster) {
      const cluster = this.cluster;
      this.channelRelay = new ChannelRelay(channelPrefix(this.nodeId), (prefix) => cluster.ownerUrl(prefix), config.limits.maxMessageBytes, this.logger);
      this.channels.forwarder = this.channelRelay.forward;
    }
    this.httpFunctionOptions = {
      security: config.httpFunctions.security,
      env: options.env ?? process.env,
      maxResponseBytes: config.limits.maxMessageBytes,
      defaultTimeoutMs: DEFAULT_HTTP_TIMEOUT_MS,
    };
    this.servers = config.listeners.map(
      (listener) =>
        new WorkerServer(listener, config.limits.maxMessageBytes, {
          onWorker: (socket, request) => this.acceptWorker(socket, request),
          onTelemetry: (socket) => this.acceptTelemetry(socket),
          onChannelUpgrade: (request, socket, head) => this.channels.handleUpgrade(request, socket, head),
        }, this.logger),
    );
    this.ops = new OpsServer(this.metrics, () => this.readiness());
    this.modules = createModules(this, config);
    this.observability = this.modules.find((m): m is ObservabilityModule => m instanceof ObservabilityModule);
  }

  async start(): Promise<void> {
    if (this.state !== 'created') throw new Error(`Engine cannot start from state ${this.state}`);
    this.state = 'starting';
    for (const module of this.modules) await module.start(this);
    for (const server of this.servers) await server.listen();
    // Workers are refused until `ready`, so listening before joining the cluster is safe.
    await this.cluster?.start(advertisedUrl(this.config.listeners[0]!.host, this.port, this.config.cluster.advertiseHost));
    this.opsPort = await this.ops.listen(this.config.metrics.port, this.config.metrics.host);
    this.state = 'ready';
    this.logger.info(
      { workerPorts: this.servers.map((s) => s.port), metricsPort: this.opsPort, version: ENGINE_VERSION },
      'iii-cluster engine ready',
    );
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'created') {
      this.state = 'stopped';
      return;
    }
    this.state = 'draining';
    for (const server of this.servers) server.stopAccepting();
    for (const session of this.sessions.values()) session.connection.close(CloseCode.serviceRestart, 'engine shutting down');
    await Promise.all([...this.sessions.values()].map((session) => session.cleanup()));
    this.router.pending.rejectAll(() => new EngineError(ErrorCode.shuttingDown, 'The engine is shutting down'));
    await this.cluster?.stop();
    for (const module of [...this.modules].reverse()) await module.stop();
    this.channels.close();
    this.channelRelay?.close();
    await Promise.all(this.servers.map((server) => server.close()));
    await this.ops.close();
    this.state = 'stopped';
    this.logger.info('iii-cluster engine stopped');
  }

  /** The port of the first worker listener (the engine's main port). */
  get port(): number {
    return this.servers[0].port;
  }

  get metricsPort(): number {
    return this.opsPort;
  }

  /** A running module by name (`iii-http`, `iii-stream`, ...), for tests and embedding. */
  module<T extends EngineModule>(name: string): T | undefined {
    return this.modules.find((m) => m.name === name) as T | undefined;
  }

  session(workerId: string): WorkerSession | undefined {
    return this.sessions.get(workerId);
  }

  readiness(): Readiness {
    const clusterReady = this.cluster?.ready ?? true;
    const ready = this.state === 'ready' && clusterReady;
    return { ready, checks: this.cluster ? { state: this.state, redis: clusterReady ? 'ok' : 'unreachable' } : { state: this.state } };
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
      .invoke({ functionId: trigger.function_id, data: payload, metadata: trigger.metadata })
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

  private acceptWorker(socket: WebSocket, request: IncomingMessage): void {
    if (this.state !== 'ready') {
      socket.close(CloseCode.serviceRestart, 'engine not ready');
      return;
    }
    const connection = new WorkerConnection(socket, request.socket.remoteAddress ?? '', this.config.limits.maxSendQueueBytes, () =>
      this.metrics.slowConsumers.inc(),
    );
    const session = new WorkerSession(this, connection);
    this.sessions.set(connection.id, session);
    this.metrics.connectedWorkers.inc();
    this.registry.apply({
      op: 'worker.put',
      worker: { id: connection.id, nodeId: this.nodeId, kind: 'worker', runtime: 'unknown', ipAddress: connection.ipAddress, connectedAtMs: connection.connectedAtMs },
    });
    connection.send({ type: 'workerregistered', worker_id: connection.id, reattach_token: connection.reattachToken });
    socket.on('message', (data, isBinary) => session.onFrame(data, isBinary));
    socket.on('close', () => {
      session.cleanup().catch((err: unknown) => this.logger.error({ err, worker: connection.id }, 'worker cleanup failed'));
    });
    socket.on('error', (err) => this.logger.debug({ err, worker: connection.id }, 'worker socket error'));
    this.emitWorkerEvent('worker_connected', connection.id);
  }

  private acceptTelemetry(socket: WebSocket): void {
    // Only binary telemetry frames count on this socket; text frames are ignored, as in the original.
    socket.on('message', (data, isBinary) => {
      if (!isBinary) return;
      const frame = rawDataToBuffer(data);
      const signal = telemetrySignal(frame);
      if (signal) this.ingestTelemetry(signal, frame.subarray(4), undefined);
    });
    socket.on('error', (err) => this.logger.debug({ err }, 'telemetry socket error'));
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
    if (!previous || previous === current || token === undefined || !sameSecret(token, previous.connection.reattachToken)) return;
    previous.connection.close(CloseCode.normal, 'reattached by a new connection');
    await previous.cleanup();
  }

  /** The disconnect cleanup (protocol §3.4), run once per connection. */
  async removeWorker(session: WorkerSession): Promise<void> {
    const id = session.id;
    session.connection.closing = true;
    if (this.sessions.get(id) === session) {
      this.sessions.delete(id);
      this.metrics.connectedWorkers.dec();
    }
    for (const fn of this.registry.functionsOf(id)) this.registry.apply({ op: 'function.remove', id: fn.id, workerId: id });
    this.router.pending.rejectWorker(id, errors.invocationStopped);
    await this.triggers.workerGone(id);
    this.registry.apply({ op: 'worker.remove', workerId: id });
    this.emitWorkerEvent('worker_disconnected', id);
  }
}

/** Compares secrets in time independent of where they differ. */
function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
