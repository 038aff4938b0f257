import { randomUUID } from 'node:crypto';
import type { RawData } from 'ws';
import type { EngineConfig } from '../config/types';
import type { Logger } from '../observability/logger';
import type { EngineMetrics } from '../observability/metrics';
import { decodeFrame, type TelemetrySignal } from '../protocol/codec';
import { copyJson } from '../protocol/json-text';
import { EngineError, ErrorCode } from '../protocol/errors';
import type {
  ErrorBody,
  InboundMessage,
  InvocationResult,
  InvokeFunction,
  RegisterFunction,
  RegisterTrigger,
  RegisterTriggerType,
} from '../protocol/messages';
import type { Registry } from '../registry/registry';
import type { CallOutcome, Router, WorkerTarget } from '../router/router';
import type { WorkerConnection } from '../transport/connection';
import { rawDataToBuffer } from '../transport/raw-data';
import { functionHook, triggerHook, triggerTypeHook } from './access/hooks';
import type { CallFunction } from './access/hooks';
import type { SessionAccess } from './access/session-access';
import type { TriggerManager } from './triggers';
import { DEFAULT_NAMESPACE, isEngineOwned, namespacedKey, splitKey } from '../registry/namespaces';
import { CloseCode } from '../transport/connection';

/** The parts of its node a session reads. */
export interface SessionParts {
  readonly nodeId: string;
  readonly config: Pick<EngineConfig, 'limits' | 'namespaceGraceMs'>;
  readonly logger: Logger;
  readonly metrics: EngineMetrics;
  readonly registry: Registry;
  readonly router: Router;
  readonly triggers: TriggerManager;
  readonly callFunction: CallFunction;
}

/** What a session needs from the node that hosts it (the engine's Workers). */
export interface SessionHost extends SessionParts {
  /** The `enqueue` action of a call. */
  enqueue(queue: string, message: InvokeFunction): Promise<CallOutcome>;
  /** An SDK telemetry frame arrived on the session. */
  ingestTelemetry(signal: TelemetrySignal, body: Buffer, workerId: string | undefined): void;
  /** A frame that arrived after the connection began to close. */
  lateFrame(session: WorkerSession, data: RawData, isBinary: boolean): void;
  /** `reattach`: retires the worker's previous connection. */
  reattach(current: WorkerSession, previousId: string, token: string | undefined): Promise<void>;
  /** A `registerfunction` the session accepted, under its registry key. */
  registerWorkerFunction(workerId: string, message: RegisterFunction): void;
  /** The disconnect cleanup, run once per connection. */
  removeWorker(session: WorkerSession): Promise<void>;
}

/**
 * The worker protocol for one connection: decodes its frames, processes them strictly in
 * arrival order (a registration that awaits a provider or an RBAC hook holds back the frames
 * behind it), applies what its session may do (`access`), and answers every call it makes
 * exactly once.
 */
export class WorkerSession implements WorkerTarget {
  /** Calls this connection made that are still pending. */
  private callsOutstanding = 0;
  /** Frames held back while an asynchronous registration completes, in arrival order. */
  private backlog: Array<[RawData, boolean]> | undefined;
  private cleanedUp: Promise<void> | undefined;
  /** Set once this connection has claimed the calls of its previous socket from the other nodes. */
  claimedPrevious = false;
  /**
   * What this connection has registered, as `f:<id>`, `y:<id>` (trigger types) and `t:<id>`,
   * bounded by `max_registrations_per_worker`: the registry (and, in a cluster, Redis and every
   * node's mirror) would otherwise grow with whatever one worker sends.
   */
  private readonly registered = new Set<string>();
  /**
   * iii v0.23: the namespace this connection's registrations and calls live in. Registrations
   * are placed at once (in `default` until the worker says otherwise, so nothing waits); a
   * namespace declared through `engine::workers::register` within `registration_namespace_grace_ms`
   * of the connection moves them there (see `declareNamespace`).
   */
  private namespace = DEFAULT_NAMESPACE;
  private namespaceDeclared = false;
  private readonly connectedAt = Date.now();

  constructor(
    private readonly engine: SessionHost,
    readonly connection: WorkerConnection,
    readonly access: SessionAccess,
  ) {}

  /** Sends this worker a call by the id it registered the function under (its RBAC prefix taken off). */
  send(message: InvokeFunction): boolean {
    const functionId = this.access.unprefixed(message.function_id);
    return this.connection.send(functionId === message.function_id ? message : { ...message, function_id: functionId });
  }

  get id(): string {
    return this.connection.id;
  }

  /** Calls in flight on this worker plus calls it is waiting on. */
  get activeInvocations(): number {
    return this.engine.router.pending.inFlight(this.id) + this.callsOutstanding;
  }

  onFrame(data: RawData, isBinary: boolean): void {
    if (this.connection.closing) return this.engine.lateFrame(this, data, isBinary);
    if (this.backlog) this.backlog.push([data, isBinary]);
    else this.holdFor(this.process(data, isBinary), []);
  }

  /** While `wait` runs, later frames queue in `backlog`; then they are processed in order. */
  private holdFor(wait: Promise<void> | undefined, backlog: Array<[RawData, boolean]>): void {
    if (!wait) return;
    this.backlog = backlog;
    wait
      .catch((err: unknown) => this.engine.logger.error({ err, worker: this.id }, 'worker message handling failed'))
      .finally(() => {
        const queued = this.backlog ?? [];
        this.backlog = undefined;
        for (let i = 0; i < queued.length && !this.connection.closing; i++) {
          const next = this.process(queued[i][0], queued[i][1]);
          if (next) return this.holdFor(next, queued.slice(i + 1));
        }
      });
  }

  /** Handles one frame; returns a promise when later frames must wait for it. */
  private process(data: RawData, isBinary: boolean): Promise<void> | undefined {
    const frame = rawDataToBuffer(data);
    const decoded = decodeFrame(frame, isBinary);
    switch (decoded.kind) {
      case 'message':
        if (
          frame.length > this.engine.config.limits.maxPayloadBytes &&
          this.refuseOversized(decoded.message, frame.length)
        )
          return undefined;
        return this.handle(decoded.message);
      case 'skip':
        return undefined;
      case 'telemetry':
        this.engine.ingestTelemetry(decoded.signal, decoded.body, this.id);
        return undefined;
      case 'invalid':
        this.engine.metrics.invalidFrames.inc();
        this.engine.logger.warn({ worker: this.id, reason: decoded.reason }, 'invalid frame from worker');
        if (decoded.correlation) {
          this.reply(decoded.correlation.invocation_id, decoded.correlation.function_id, undefined, undefined, {
            error: { code: ErrorCode.invalidMessage, message: `Invalid invokefunction: ${decoded.reason}` },
          });
        }
        return undefined;
    }
  }

  /**
   * `max_payload_bytes`, measured on the frame as received (no re-serialisation): a call too
   * large is answered `payload_too_large` (dropped, if it asked for no answer); a result too
   * large fails its call with that code, so its caller learns why. The socket stays open. True
   * when the frame was refused; other message types pass.
   */
  private refuseOversized(message: InboundMessage, bytes: number): boolean {
    if (message.type !== 'invokefunction' && message.type !== 'invocationresult') return false;
    const limit = this.engine.config.limits.maxPayloadBytes;
    this.engine.metrics.limitRefusals.inc({ limit: 'max_payload_bytes' });
    const text = `is ${bytes} bytes, larger than max_payload_bytes (${limit} bytes)`;
    this.engine.logger.warn(
      { worker: this.id, type: message.type, function: message.function_id, bytes, limit },
      'frame over max_payload_bytes refused',
    );
    if (message.type === 'invokefunction') {
      if (message.invocation_id !== undefined) {
        this.reply(message.invocation_id, message.function_id, message.traceparent, message.baggage, {
          error: { code: ErrorCode.payloadTooLarge, message: `The call to ${message.function_id} ${text}` },
        });
      }
    } else if (this.engine.router.pending.workerOf(message.invocation_id) === this.id) {
      this.engine.router.pending.reject(
        message.invocation_id,
        new EngineError(ErrorCode.payloadTooLarge, `The result of ${message.function_id} ${text}`),
      );
    }
    return true;
  }

  private handle(message: InboundMessage): Promise<void> | undefined {
    const engine = this.engine;
    switch (message.type) {
      case 'invokefunction':
        this.invoke(message);
        return undefined;
      case 'invocationresult':
        this.result(message);
        return undefined;
      case 'registerfunction':
        if (!this.admit(`f:${message.id}`))
          return this.refuse(
            `Function registration '${message.id}' refused: ${this.overLimit()}`,
            ErrorCode.limitExceeded,
          );
        return this.registerFunction(message);
      case 'unregisterfunction':
        this.registered.delete(`f:${message.id}`);
        engine.registry.apply({ op: 'function.remove', id: this.key(message.id), workerId: this.id });
        return undefined;
      case 'registertriggertype':
        if (!this.admit(`y:${message.id}`))
          return this.refuse(
            `Trigger type registration '${message.id}' refused: ${this.overLimit()}`,
            ErrorCode.limitExceeded,
          );
        return this.registerTriggerType(message);
      case 'unregistertriggertype':
        this.registered.delete(`y:${message.id}`);
        engine.triggers.unregisterType(namespacedKey(message.namespace ?? this.namespace, message.id), this.id);
        return undefined;
      case 'registertrigger':
        return this.registerTrigger(message);
      case 'unregistertrigger':
        this.registered.delete(`t:${message.id}`);
        return this.unregisterTrigger(message.id);
      case 'triggerregistrationresult':
        engine.triggers.providerResult(this.id, message);
        return undefined;
      case 'reattach':
        return engine.reattach(this, message.previous_worker_id, message.reattach_token);
      case 'ping':
        this.connection.send({ type: 'pong' });
        return undefined;
      case 'registerservice':
      case 'workerregistered':
      case 'pong':
        return undefined;
    }
  }

  /** RBAC: the session's gate, then the hook (which may remap it), then the session's prefix. */
  private registerFunction(message: RegisterFunction): Promise<void> | undefined {
    const denial = this.access.functionRegistrationDenial();
    if (denial) return this.refuse(`Function registration '${message.id}' refused: ${denial}`);
    const register = (fn: RegisterFunction): undefined => {
      const key = this.key(fn.id);
      if (this.namespaceRefusal(fn.id, key)) return undefined;
      this.engine.registerWorkerFunction(this.id, { ...fn, id: key });
      return undefined;
    };
    const hook = this.access.hookId('function');
    if (hook === undefined) return register(message);
    return functionHook(this.access, hook, message, this.engine.callFunction).then((verdict) =>
      'denied' in verdict
        ? this.refuse(`Function registration '${message.id}' refused: ${verdict.denied}`)
        : register(verdict.approved),
    );
  }

  /** RBAC: the session's gate, then the hook (which may remap it). */
  private registerTriggerType(message: RegisterTriggerType): Promise<void> | undefined {
    const denial = this.access.triggerTypeRegistrationDenial();
    if (denial) return this.refuse(`Trigger type registration '${message.id}' refused: ${denial}`);
    const register = ({ namespace, ...type }: RegisterTriggerType) =>
      this.engine.triggers.registerType({
        ...type,
        id: namespacedKey(namespace ?? this.namespace, type.id),
        workerId: this.id,
        nodeId: this.engine.nodeId,
      });
    const hook = this.access.hookId('triggerType');
    if (hook === undefined) return register(message);
    return triggerTypeHook(this.access, hook, message, this.engine.callFunction).then((verdict) =>
      'denied' in verdict
        ? this.refuse(`Trigger type registration '${message.id}' refused: ${verdict.denied}`)
        : register(verdict.approved),
    );
  }

  /**
   * A registration the session may not make. The protocol has no answer for it, so the worker
   * gets a connection-level `error` frame (FORBIDDEN), which the SDKs ignore, and it is logged.
   */
  private refuse(message: string, code: string = ErrorCode.forbidden): undefined {
    this.engine.logger.warn({ worker: this.id }, message);
    this.connection.send({ type: 'error', error: { code, message } });
    return undefined;
  }

  /** Counts a registration against `max_registrations_per_worker`; false when it is over (a re-registration always passes). */
  private admit(key: string): boolean {
    if (this.registered.has(key)) return true;
    if (this.registered.size >= this.engine.config.limits.maxRegistrationsPerWorker) {
      this.engine.metrics.limitRefusals.inc({ limit: 'max_registrations_per_worker' });
      return false;
    }
    this.registered.add(key);
    return true;
  }

  private overLimit(): string {
    const limit = this.engine.config.limits.maxRegistrationsPerWorker;
    return `this connection has ${this.registered.size} registrations, the limit is ${limit} (max_registrations_per_worker); unregister some first`;
  }

  /** RBAC: the allowed trigger types, then the hook (which may remap it), then the prefix on `function_id`. */
  private async registerTrigger(message: RegisterTrigger): Promise<void> {
    const { id, trigger_type, function_id } = message;
    const refuse = (reason: string, code: string = ErrorCode.forbidden) => {
      this.registered.delete(`t:${id}`);
      const error = { code, message: `Trigger '${id}' (${trigger_type}) refused: ${reason}` };
      this.engine.logger.warn({ worker: this.id, trigger: id }, error.message);
      this.connection.send({ type: 'triggerregistrationresult', id, trigger_type, function_id, error });
    };
    if (!this.admit(`t:${id}`)) return refuse(this.overLimit(), ErrorCode.limitExceeded);
    const denial = this.access.triggerDenial(trigger_type);
    if (denial) return refuse(denial);
    let binding = message;
    const hook = this.access.hookId('trigger');
    if (hook !== undefined) {
      const verdict = await triggerHook(this.access, hook, message, this.engine.callFunction);
      if ('denied' in verdict) return refuse(verdict.denied);
      binding = verdict.approved;
    }
    try {
      await this.engine.triggers.register(
        {
          id: binding.id,
          trigger_type: this.triggerTypeKey(binding),
          function_id: this.key(binding.function_id, binding.namespace ?? this.namespace),
          config: binding.config,
          metadata: binding.metadata,
        },
        this.id,
      );
    } catch (err) {
      this.registered.delete(`t:${id}`);
      const error = EngineError.from(err, ErrorCode.triggerRegistrationFailed).toBody();
      this.connection.send({ type: 'triggerregistrationresult', id, trigger_type, function_id, error });
    }
  }

  private async unregisterTrigger(id: string): Promise<void> {
    const binding = this.engine.registry.trigger(id);
    // Only the owner (or anyone, for an ownerless durable binding) may remove a binding.
    if (binding?.ownerWorkerId !== undefined && binding.ownerWorkerId !== this.id) {
      this.engine.logger.warn(
        { worker: this.id, trigger: id },
        'unregistertrigger for a binding owned by another worker ignored',
      );
      return;
    }
    try {
      await this.engine.triggers.unregister(id);
    } catch (err) {
      this.engine.logger.warn({ err, trigger: id }, 'provider failed to unregister a binding');
    }
  }

  /** A call this connection's worker made on its previous socket, handed over by another node. */
  acceptCall(message: InvokeFunction): void {
    this.invoke(message);
  }

  /**
   * A call this connection makes: RBAC first (a denied call is answered FORBIDDEN, even `void`
   * ones, under a fresh id when it has none, as the original does); then the port's middleware,
   * which takes every non-`engine::` call whatever its action; then the action.
   */
  private invoke(message: InvokeFunction): void {
    const { invocation_id: invocationId, function_id: functionId, action } = message;
    // Strict: a call resolves in the namespace it names (absent: `default`); engine-owned ids live in `default` only.
    const namespace =
      message.namespace === undefined || isEngineOwned(functionId) ? DEFAULT_NAMESPACE : message.namespace;
    const key = namespacedKey(namespace, functionId);
    const denial = this.access.invokeDenial(functionId, () => {
      const entry = this.engine.registry.function(key);
      return entry && { ...entry, id: functionId, namespace };
    });
    if (denial !== undefined) {
      this.reply(invocationId ?? randomUUID(), functionId, message.traceparent, message.baggage, {
        error: { code: ErrorCode.forbidden, message: denial },
      });
      return;
    }
    const middleware = this.access.middlewareFunctionId;
    if (middleware !== undefined && !functionId.startsWith('engine::')) {
      // The payload as the caller sent it (no _caller_worker_id); the middleware makes the call if it wants.
      const input = {
        function_id: functionId,
        payload: message.data,
        action: action ?? null,
        context: this.access.context,
      };
      this.call(message, invocationId !== undefined, () =>
        this.engine.router.invoke({
          functionId: middleware,
          data: input,
          metadata: message.metadata,
          traceparent: message.traceparent,
          baggage: message.baggage,
          callerWorkerId: this.id,
        }),
      );
      return;
    }
    if (action?.type === 'enqueue') {
      const queued = this.engine.enqueue(action.queue, key === functionId ? message : { ...message, function_id: key });
      if (invocationId !== undefined) this.answer(queued, message);
      else
        queued.catch((err: unknown) => this.engine.logger.warn({ err, functionId }, 'enqueue without a reply failed'));
      return;
    }
    const data = message.data;
    if (typeof data === 'object' && data !== null && !Array.isArray(data)) data._caller_worker_id = this.id;
    this.call(message, invocationId !== undefined && action?.type !== 'void', () =>
      this.engine.router.invoke({
        functionId: key,
        data,
        metadata: message.metadata,
        traceparent: message.traceparent,
        baggage: message.baggage,
        callerWorkerId: this.id,
      }),
    );
  }

  /** The registry key of one of this worker's ids: its RBAC prefix, in `namespace`. */
  private key(id: string, namespace = this.namespace): string {
    return namespacedKey(namespace, this.access.prefixed(id));
  }

  /**
   * The trigger type a binding names: in `trigger_namespace` when it names one (strict), else
   * the worker's namespace when a provider serves the type there, else `default` (where the
   * engine's own types are).
   */
  private triggerTypeKey(binding: RegisterTrigger): string {
    if (binding.trigger_namespace !== undefined) return namespacedKey(binding.trigger_namespace, binding.trigger_type);
    const own = namespacedKey(this.namespace, binding.trigger_type);
    return this.engine.registry.triggerType(own) ? own : binding.trigger_type;
  }

  /**
   * iii v0.23 refusals of one function: an engine-owned id outside `default`, or (once the worker
   * has declared its namespace) an id that workers of another name serve in that namespace; our
   * pools are the replicas of one worker. Sends `registrationrejected` and returns true.
   */
  private namespaceRefusal(id: string, key: string): boolean {
    const { namespace } = splitKey(key);
    let owner: string | undefined;
    if (namespace !== DEFAULT_NAMESPACE && isEngineOwned(id)) owner = 'the engine';
    else if (this.namespaceDeclared) owner = this.otherOwner(key);
    if (owner === undefined) return false;
    const message = `${id} is already served in namespace '${namespace}' by ${owner === 'the engine' ? 'the engine (engine-owned ids live in default)' : `worker ${owner}`}`;
    this.engine.logger.warn({ worker: this.id, functionId: id, namespace, owner }, `registration refused: ${message}`);
    this.connection.send({
      type: 'registrationrejected',
      code: 'FUNCTION_NAMESPACE_CONFLICT',
      namespace,
      function_id: id,
      owner_worker_id: owner,
      message,
    });
    return true;
  }

  /** A worker of another name that serves `key`, if any. */
  private otherOwner(key: string): string | undefined {
    const registry = this.engine.registry;
    const name = registry.worker(this.id)?.name;
    for (const entry of registry.pool(key)) {
      if (entry.workerId === this.id) continue;
      const owner = registry.worker(entry.workerId);
      if (owner?.kind === 'worker' && owner.name !== name) return entry.workerId;
    }
    return undefined;
  }

  /**
   * `engine::workers::register` named this connection's namespace. Within the grace period its
   * registrations move there (each checked as a new one); later, or after an earlier
   * declaration of another namespace, the worker is refused with `WORKER_NAMESPACE_CONFLICT`
   * and its connection closed, as the SDKs expect.
   */
  async declareNamespace(namespace: string): Promise<void> {
    const from = this.namespace;
    const wasDeclared = this.namespaceDeclared;
    this.namespaceDeclared = true;
    if (namespace === from) return;
    const graceMs = this.engine.config.namespaceGraceMs;
    if (wasDeclared || Date.now() - this.connectedAt > graceMs) {
      const name = this.engine.registry.worker(this.id)?.name ?? '';
      const message = wasDeclared
        ? `worker '${name}' declared namespace '${namespace}' after '${from}'; a connection has one namespace`
        : `worker '${name}' declared namespace '${namespace}' more than registration_namespace_grace_ms (${graceMs} ms) after connecting; its registrations are in '${from}'`;
      this.engine.logger.warn({ worker: this.id, namespace, from }, `worker refused: ${message}`);
      this.connection.send({
        type: 'registrationrejected',
        code: 'WORKER_NAMESPACE_CONFLICT',
        namespace,
        worker_name: name,
        owner_worker_id: this.id,
        message,
      });
      this.connection.close(CloseCode.policy, 'WORKER_NAMESPACE_CONFLICT');
      return;
    }
    this.namespace = namespace;
    const registry = this.engine.registry;
    for (const fn of registry.functionsOf(this.id)) {
      const { namespace: current, id } = splitKey(fn.id);
      if (current !== from) continue;
      registry.apply({ op: 'function.remove', id: fn.id, workerId: this.id });
      const key = namespacedKey(namespace, id);
      if (!this.namespaceRefusal(this.access.unprefixed(id), key))
        registry.apply({ op: 'function.put', fn: { ...fn, id: key } });
    }
    for (const type of [...registry.triggerTypes()].filter(
      (t) => t.workerId === this.id && splitKey(t.id).namespace === from,
    )) {
      this.engine.triggers.unregisterType(type.id, this.id);
      await this.engine.triggers.registerType({ ...type, id: namespacedKey(namespace, splitKey(type.id).id) });
    }
    for (const binding of [...registry.triggers()].filter(
      (t) => t.ownerWorkerId === this.id && splitKey(t.function_id).namespace === from,
    )) {
      const { id, trigger_type, config, metadata } = binding;
      const function_id = namespacedKey(namespace, splitKey(binding.function_id).id);
      await this.engine.triggers
        .register(
          metadata === undefined
            ? { id, trigger_type, function_id, config }
            : { id, trigger_type, function_id, config, metadata },
          this.id,
        )
        .catch((err: unknown) =>
          this.engine.logger.warn(
            { err, worker: this.id, trigger: id },
            'moving a binding to the declared namespace failed',
          ),
        );
    }
  }

  /** Starts a call unless this connection already waits on too many; answers it when `wantsReply`. */
  private call(message: InvokeFunction, wantsReply: boolean, start: () => Promise<CallOutcome>): void {
    const limit = this.engine.config.limits.maxPendingCallsPerWorker;
    if (wantsReply && this.callsOutstanding >= limit) {
      this.reply(message.invocation_id!, message.function_id, message.traceparent, message.baggage, {
        error: {
          code: ErrorCode.limitExceeded,
          message: `Worker has ${this.callsOutstanding} calls pending, the limit is ${limit}`,
        },
      });
      return;
    }
    const outcome = start();
    if (wantsReply) this.answer(outcome, message);
    else
      outcome.catch((err: unknown) =>
        this.engine.logger.debug({ err, functionId: message.function_id }, 'fire-and-forget call failed'),
      );
  }

  private answer(outcome: Promise<CallOutcome>, message: InvokeFunction): void {
    this.callsOutstanding++;
    outcome.then(
      (value) => {
        this.callsOutstanding--;
        this.reply(message.invocation_id!, message.function_id, message.traceparent, message.baggage, value);
      },
      (err: unknown) => {
        this.callsOutstanding--;
        const error = EngineError.from(err).toBody();
        this.reply(message.invocation_id!, message.function_id, message.traceparent, message.baggage, { error });
      },
    );
  }

  private reply(
    invocationId: string,
    functionId: string,
    traceparent: string | undefined,
    baggage: string | undefined,
    outcome: CallOutcome & { error?: ErrorBody },
  ): void {
    const message: InvocationResult = {
      type: 'invocationresult',
      invocation_id: invocationId,
      function_id: functionId,
    };
    if (outcome.error) message.error = outcome.error;
    // A result that came from another node as text goes to the caller as that text (protocol/json-text.ts).
    else copyJson(outcome, message, 'result');
    if (traceparent !== undefined) message.traceparent = traceparent;
    if (baggage !== undefined) message.baggage = baggage;
    this.connection.send(message);
  }

  private result(message: InvocationResult): void {
    const pending = this.engine.router.pending;
    // Only the worker a call was sent to may settle it (the original accepts a result from anyone).
    if (pending.workerOf(message.invocation_id) !== this.id) return;
    if (message.error) {
      pending.reject(
        message.invocation_id,
        new EngineError(message.error.code, message.error.message, message.error.stacktrace),
      );
    } else {
      // A null result travels as an absent one, as the original does.
      pending.resolve(
        message.invocation_id,
        message.result === null || message.result === undefined ? {} : { result: message.result },
      );
    }
  }

  /** Runs the disconnect cleanup once, however many times it is asked for. */
  cleanup(): Promise<void> {
    this.cleanedUp ??= this.engine.removeWorker(this);
    return this.cleanedUp;
  }
}
