import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import type { RawData } from 'ws';
import type { ClusterNode } from '../cluster/cluster-node';
import type { EngineConfig, WorkerListenerConfig } from '../config/types';
import type { Logger } from '../observability/logger';
import type { EngineMetrics } from '../observability/metrics';
import { telemetrySignal, type TelemetrySignal } from '../protocol/codec';
import { EngineError, ErrorCode, errors } from '../protocol/errors';
import type { InvokeFunction, Json, RegisterFunction } from '../protocol/messages';
import type { Registry } from '../registry/registry';
import { validateRegistration, type HttpFunctionOptions } from '../router/http-functions';
import type { CallOutcome, Router } from '../router/router';
import { CloseCode, WorkerConnection } from '../transport/connection';
import { rawDataToBuffer } from '../transport/raw-data';
import { sameSecret } from '../transport/secret';
import { Admission } from './access/admission';
import type { CallFunction } from './access/hooks';
import { Drain } from './drain';
import type { TriggerManager } from './triggers';
import { WorkerSession, type SessionHost, type SessionParts } from './worker-session';

/** `worker` events on `engine.events`. */
export interface WorkerEvent {
  event: 'worker_connected' | 'worker_disconnected' | 'worker_metadata_updated';
  worker_id: string;
}

/** What the worker connections need from their node: what their sessions read, and more. */
export interface WorkersHost extends SessionParts {
  readonly config: EngineConfig;
  readonly events: EventEmitter;
  readonly cluster: ClusterNode | undefined;
  readonly httpFunctions: HttpFunctionOptions;
  /** Whether the node takes new workers. */
  ready(): boolean;
}

/**
 * The worker connections of one node: admits sockets (token, auth function), makes a session of
 * each, and is each session's host (registrations, enqueue, reattach, the disconnect cleanup);
 * its drain closes them when the node stops.
 */
export class Workers implements SessionHost {
  readonly sessions = new Map<string, WorkerSession>();
  readonly drain: Drain;
  readonly nodeId: string;
  readonly config: EngineConfig;
  readonly logger: Logger;
  readonly metrics: EngineMetrics;
  readonly registry: Registry;
  readonly router: Router;
  readonly triggers: TriggerManager;
  readonly callFunction: CallFunction;
  private readonly admission: Admission;

  constructor(private readonly host: WorkersHost) {
    ({
      nodeId: this.nodeId,
      config: this.config,
      logger: this.logger,
      metrics: this.metrics,
      registry: this.registry,
      router: this.router,
      triggers: this.triggers,
      callFunction: this.callFunction,
    } = host);
    this.drain = new Drain({ ...host, sessions: this.sessions });
    this.admission = new Admission({
      logger: host.logger,
      maxMessageBytes: host.config.limits.maxMessageBytes,
      callFunction: host.callFunction,
      ready: () => host.ready(),
    });
  }

  /** A socket on a listener's `/`: a worker once admitted. */
  acceptWorker(socket: WebSocket, request: IncomingMessage, listener: WorkerListenerConfig): void {
    if (!this.host.ready()) {
      socket.close(CloseCode.serviceRestart, 'engine not ready');
      return;
    }
    this.admission.admit(socket, request, listener, (access, held) => {
      const connection = new WorkerConnection(
        socket,
        request.socket.remoteAddress ?? '',
        this.config.limits.maxSendQueueBytes,
        () => this.metrics.slowConsumers.inc(),
      );
      const session = new WorkerSession(this, connection, access);
      this.sessions.set(connection.id, session);
      this.metrics.connectedWorkers.inc();
      this.registry.apply({
        op: 'worker.put',
        worker: {
          id: connection.id,
          nodeId: this.nodeId,
          kind: 'worker',
          runtime: 'unknown',
          ipAddress: connection.ipAddress,
          connectedAtMs: connection.connectedAtMs,
        },
      });
      connection.send({ type: 'workerregistered', worker_id: connection.id, reattach_token: connection.reattachToken });
      for (const [data, isBinary] of held) session.onFrame(data, isBinary);
      socket.on('message', (data, isBinary) => session.onFrame(data, isBinary));
      socket.on('close', () => {
        session
          .cleanup()
          .catch((err: unknown) => this.logger.error({ err, worker: connection.id }, 'worker cleanup failed'));
      });
      this.emitWorkerEvent('worker_connected', connection.id);
    });
  }

  /** A socket on `/otel`: SDK telemetry once admitted. */
  acceptTelemetry(socket: WebSocket, request: IncomingMessage, listener: WorkerListenerConfig): void {
    // Only binary telemetry frames count on this socket; text frames are ignored, as in the original.
    const onFrame = (data: RawData, isBinary: boolean): void => {
      if (!isBinary) return;
      const frame = rawDataToBuffer(data);
      const signal = telemetrySignal(frame);
      if (signal) this.ingestTelemetry(signal, frame.subarray(4), undefined);
    };
    this.admission.admit(socket, request, listener, (_access, held) => {
      for (const [data, isBinary] of held) onFrame(data, isBinary);
      socket.on('message', onFrame);
    });
  }

  /** SDK telemetry frames (OTLP/JSON) go to whoever listens; they are never parsed as protocol. */
  ingestTelemetry(signal: TelemetrySignal, body: Buffer, workerId: string | undefined): void {
    this.host.events.emit('telemetry', signal, body, workerId);
  }

  emitWorkerEvent(event: WorkerEvent['event'], workerId: string): void {
    this.host.events.emit('worker', { event, worker_id: workerId } satisfies WorkerEvent);
  }

  registerWorkerFunction(workerId: string, message: RegisterFunction): void {
    const { type: _type, invocation, ...definition } = message;
    if (invocation) {
      if (!this.config.httpFunctions.enabled) {
        this.logger.warn(
          { worker: workerId, functionId: message.id },
          'HTTP-invoked function ignored: the iii-http-functions module is disabled',
        );
        return;
      }
      const invalid = validateRegistration(invocation, this.host.httpFunctions);
      if (invalid) {
        this.logger.warn(
          { worker: workerId, functionId: message.id, code: invalid.code, reason: invalid.message },
          'HTTP-invoked function refused',
        );
        return;
      }
    }
    const fn = { ...definition, workerId, nodeId: this.nodeId };
    this.registry.apply({ op: 'function.put', fn: invocation ? { ...fn, invocation } : fn });
  }

  /** The `enqueue` action: handed to `engine::queue::enqueue`, answered with a receipt. */
  async enqueue(queue: string, message: InvokeFunction): Promise<CallOutcome> {
    const messageReceiptId = randomUUID();
    const data: Record<string, Json> = {
      queue,
      function_id: message.function_id,
      data: message.data,
      messageReceiptId,
    };
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
    const cluster = this.host.cluster;
    if (!previous && cluster && token !== undefined) {
      // The previous connection was on another node: if a drain closed it, that node may hold calls it sent.
      // One claim per connection: a worker repeating `reattach` must not turn into a broadcast storm.
      if (current.claimedPrevious) return;
      current.claimedPrevious = true;
      const claim = { type: 'reattach.claim' as const, previousWorkerId: previousId, token, workerId: current.id };
      cluster
        .broadcast(claim)
        .catch((err: unknown) => this.logger.debug({ err, worker: current.id }, 'reattach claim not broadcast'));
      return;
    }
    if (
      !previous ||
      previous === current ||
      token === undefined ||
      !sameSecret(token, previous.connection.reattachToken)
    )
      return;
    previous.connection.close(CloseCode.normal, 'reattached by a new connection');
    await previous.cleanup();
  }

  /** A frame that arrived on a socket already closing: the drain may keep a call for the worker's next node. */
  lateFrame(session: WorkerSession, data: RawData, isBinary: boolean): void {
    this.drain.lateFrame(session, data, isBinary);
  }

  /** The disconnect cleanup (protocol §3.4), run once per connection. */
  async removeWorker(session: WorkerSession): Promise<void> {
    const id = session.id;
    session.connection.closing = true;
    if (this.sessions.get(id) === session) {
      this.sessions.delete(id);
      this.metrics.connectedWorkers.dec();
    }
    if (this.drain.keepsDeparted(session)) {
      // Its calls in flight are over (the drain closed it idle) or diverted; its entries stay a
      // while, so calls for it keep coming here and are parked until it serves again elsewhere.
      await this.triggers.workerGone(id);
      this.emitWorkerEvent('worker_disconnected', id);
      return;
    }
    for (const fn of this.registry.functionsOf(id))
      this.registry.apply({ op: 'function.remove', id: fn.id, workerId: id });
    this.router.pending.rejectWorker(id, errors.invocationStopped);
    await this.triggers.workerGone(id);
    this.registry.apply({ op: 'worker.remove', workerId: id });
    this.emitWorkerEvent('worker_disconnected', id);
  }
}
