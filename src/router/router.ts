import { randomUUID } from 'node:crypto';
import { EngineError, ErrorCode, errors } from '../protocol/errors';
import type { InvokeFunction, Json } from '../protocol/messages';
import type { Registry } from '../registry/registry';
import type { FunctionEntry } from '../registry/types';
import { copyJson } from '../protocol/json-text';
import { PendingCalls, type CallOutcome } from './pending-calls';
import { bareId, DEFAULT_NAMESPACE, splitKey } from '../registry/namespaces';

export type { CallOutcome } from './pending-calls';

/** What travels with a call besides its payload. */
export interface CallContext {
  callerWorkerId?: string;
  metadata?: Json;
  traceparent?: string;
  baggage?: string;
}

export interface CallRequest extends CallContext {
  functionId: string;
  data: Json;
  /** Engine-side deadline in milliseconds; the router's default when absent. */
  timeoutMs?: number;
  /** The entry to call, already chosen (a call routed here by another node). */
  pinned?: FunctionEntry;
}

/** A call the router sends to the node of the worker (the bus's `invoke` message). */
export interface RemoteInvoke {
  type: 'invoke';
  id: string;
  functionId: string;
  /** A worker connected to the receiving node. */
  workerId: string;
  data: Json;
  metadata?: Json;
  traceparent?: string;
  baggage?: string;
  /** Milliseconds the caller still waits; the receiver uses it as its own deadline. */
  timeoutMs: number;
  /** No reply wanted (fire-and-forget). */
  void?: boolean;
}

/** Added to an HTTP-invoked function's own timeout before the router's backstop deadline fires. */
const HTTP_DEADLINE_SLACK_MS = 1000;

/** A function served in-process by a module. `undefined` and `null` mean "no result". */
export type LocalHandler = (data: Json, ctx: CallContext) => Promise<Json | undefined> | Json | undefined;

/** A connected worker as the router sees it. */
export interface WorkerTarget {
  /** Sends an invocation; false when the socket can no longer take it. */
  send(message: InvokeFunction): boolean;
}

export interface RouterDeps {
  registry: Registry;
  nodeId: string;
  defaultTimeoutMs: number;
  /** `max_pending_calls_per_node`: calls sent to workers (here or on other nodes) and not settled; unbounded when absent. */
  maxPendingCalls?: number;
  /** Told of each call refused because the node's pending calls are at `maxPendingCalls`. */
  onPendingLimit?(): void;
  worker(workerId: string): WorkerTarget | undefined;
  /** Executes an HTTP-invoked function (module http-functions). */
  httpInvoke(entry: FunctionEntry, request: CallRequest): Promise<CallOutcome>;
  /** Sends a call to another node (cluster mode); rejects when the bus cannot take it. */
  remote?: (nodeId: string, message: RemoteInvoke) => Promise<void>;
  /** Told of every settled call: `outcome` is `ok` or the error code; `startedAt` from performance.now(). */
  observe?: (functionId: string, outcome: string, startedAt: number) => void;
  /** Starts the span of a call (module iii-observability); undefined when tracing is off. */
  trace?(request: CallRequest): CallSpan | undefined;
}

/**
 * The engine's span of one call. Its `traceparent` replaces the caller's on the way to the
 * target, so the target's spans nest under the engine's; the caller's baggage passes unchanged.
 */
export interface CallSpan {
  readonly traceparent: string;
  /** The chosen target: the serving worker (or module) and, for a worker, the invocation id sent. */
  target(workerId: string, invocationId?: string): void;
  end(error?: EngineError): void;
}

/**
 * Chooses a target for each call and carries it there: an in-process handler, a worker socket,
 * or an HTTP endpoint. Pools (several workers serving one id) are balanced by least in-flight
 * calls, local workers first, ties broken round robin.
 */
export class Router {
  readonly pending: PendingCalls;
  /**
   * In-process handlers by module instance, then function id: looked up on every call, so by
   * the strings the registry already holds rather than a key concatenated (and hashed) per call.
   */
  private readonly handlers = new Map<string, Map<string, LocalHandler>>();
  private roundRobin = 0;

  constructor(private readonly deps: RouterDeps) {
    this.pending = new PendingCalls(deps.maxPendingCalls);
  }

  /** Serves `functionId` in-process for the module instance `workerId`. */
  setLocalHandler(workerId: string, functionId: string, handler: LocalHandler): void {
    let byFunction = this.handlers.get(workerId);
    if (!byFunction) this.handlers.set(workerId, (byFunction = new Map<string, LocalHandler>()));
    byFunction.set(functionId, handler);
  }

  deleteLocalHandler(workerId: string, functionId: string): void {
    const byFunction = this.handlers.get(workerId);
    if (!byFunction?.delete(functionId) || byFunction.size > 0) return;
    this.handlers.delete(workerId);
  }

  invoke(request: CallRequest): Promise<CallOutcome> {
    const observe = this.deps.observe;
    const span = this.deps.trace?.(request);
    if (!observe && !span) return this.route(request, undefined);
    const startedAt = performance.now();
    // The target sees the engine's span as its parent (see CallSpan).
    const outcome = this.route(span ? { ...request, traceparent: span.traceparent } : request, span);
    outcome.then(
      () => {
        span?.end();
        observe?.(request.functionId, 'ok', startedAt);
      },
      (err: EngineError) => {
        span?.end(err);
        observe?.(request.functionId, err.code, startedAt);
      },
    );
    return outcome;
  }

  /**
   * Routes a call without a span and without counting it: the web console's reads of the
   * engine's own figures (once a second per open page) must not show up in those figures.
   */
  invokeUnobserved(request: CallRequest): Promise<CallOutcome> {
    return this.route(request, undefined);
  }

  private route(request: CallRequest, span: CallSpan | undefined, pinned = request.pinned): Promise<CallOutcome> {
    let entry = pinned;
    if (!entry) {
      const pool = this.deps.registry.pool(request.functionId);
      if (pool.length === 0) return Promise.reject(this.notFound(request.functionId));
      entry = this.pick(pool);
    }
    const timeoutMs = request.timeoutMs ?? this.deps.defaultTimeoutMs;
    const onTimeout = () => errors.timeout(request.functionId, timeoutMs);

    if (entry.invocation) {
      // The function's own `timeout_ms` governs (the module enforces it); the deadline is a backstop.
      const httpMs = (entry.invocation.timeout_ms ?? timeoutMs) + HTTP_DEADLINE_SLACK_MS;
      span?.target(entry.workerId);
      return withDeadline(this.deps.httpInvoke(entry, request), httpMs, () =>
        errors.timeout(request.functionId, httpMs),
      );
    }

    const handler = this.handlers.get(entry.workerId)?.get(entry.id);
    if (handler) {
      span?.target(entry.workerId);
      return withDeadline(runLocal(handler, request), timeoutMs, onTimeout);
    }

    if (entry.nodeId !== this.deps.nodeId) {
      span?.target(entry.workerId);
      return this.routeRemote(entry, request, timeoutMs, onTimeout);
    }
    const worker = this.deps.worker(entry.workerId);
    if (!worker) return Promise.reject(errors.invocationStopped());
    if (this.pending.full) return Promise.reject(this.pendingLimit());

    const invocationId = randomUUID();
    span?.target(entry.workerId, invocationId);
    // The worker knows its functions by their bare ids (the namespace is its connection's).
    const message = {
      type: 'invokefunction',
      invocation_id: invocationId,
      function_id: bareId(entry.id),
    } as InvokeFunction;
    // Data that came from another node as text goes to the worker as that text (protocol/json-text.ts).
    copyJson(request, message, 'data');
    if (request.metadata !== undefined) message.metadata = request.metadata;
    if (request.traceparent !== undefined) message.traceparent = request.traceparent;
    if (request.baggage !== undefined) message.baggage = request.baggage;
    const outcome = this.pending.add(invocationId, entry.id, entry.workerId, timeoutMs, onTimeout);
    if (!worker.send(message)) {
      this.pending.reject(
        invocationId,
        new EngineError(
          ErrorCode.channelSendFailed,
          `Could not send the call to worker ${entry.workerId}: its connection is closing`,
        ),
      );
    }
    return outcome;
  }

  /**
   * `function_not_found` for a registry key: strict routing never falls back to another
   * namespace, so the message names the namespaces that do have the id.
   */
  private notFound(key: string): EngineError {
    const { namespace, id } = splitKey(key);
    const elsewhere = [...this.deps.registry.functionIds()]
      .filter((k) => k !== key && bareId(k) === id)
      .map((k) => splitKey(k).namespace);
    if (namespace === DEFAULT_NAMESPACE && elsewhere.length === 0) return errors.functionNotFound(id);
    const hint =
      elsewhere.length === 0
        ? ''
        : `; it is registered in namespace${elsewhere.length > 1 ? 's' : ''} ${elsewhere
            .sort()
            .map((n) => `'${n}'`)
            .join(', ')}`;
    return new EngineError(ErrorCode.functionNotFound, `Function ${id} not found in namespace '${namespace}'${hint}`);
  }

  /**
   * Sends the call to the node of `entry` and waits for its answer like for a local worker's:
   * the pending entry is keyed by the remote worker, so the loss of that worker or of its node
   * settles it at once.
   */
  private routeRemote(
    entry: FunctionEntry,
    request: CallRequest,
    timeoutMs: number,
    onTimeout: () => EngineError,
  ): Promise<CallOutcome> {
    const remote = this.deps.remote;
    if (!remote) {
      return Promise.reject(
        new EngineError(
          ErrorCode.functionNotFound,
          `Function ${request.functionId} is served by node ${entry.nodeId}, which this node cannot reach`,
        ),
      );
    }
    if (this.pending.full) return Promise.reject(this.pendingLimit());
    const id = randomUUID();
    const outcome = this.pending.add(id, entry.id, entry.workerId, timeoutMs, onTimeout);
    const message = { type: 'invoke', id, functionId: entry.id, workerId: entry.workerId, timeoutMs } as RemoteInvoke;
    copyJson(request, message, 'data');
    if (request.metadata !== undefined) message.metadata = request.metadata;
    if (request.traceparent !== undefined) message.traceparent = request.traceparent;
    if (request.baggage !== undefined) message.baggage = request.baggage;
    remote(entry.nodeId, message).catch((err: unknown) => {
      this.pending.reject(
        id,
        new EngineError(
          ErrorCode.channelSendFailed,
          `Could not reach node ${entry.nodeId} serving ${entry.id}: ${EngineError.from(err).message}`,
        ),
      );
    });
    return outcome;
  }

  /**
   * Runs a call node `fromNodeId` routed here to one of this node's workers. The worker was
   * chosen by the caller's node; if it has left meanwhile, another local member of the pool
   * serves, else a member on a third node (the worker may have moved there while the caller's
   * mirror still pointed here, e.g. during a drain). Never back to the sender: no ping-pong.
   *
   * The calling node traces and counts the call (its span is the `traceparent` the call
   * carries); this node does neither, so a cross-node call is one span and one observation in
   * the cluster, as a same-node call is.
   */
  invokeLocal(workerId: string, request: CallRequest, fromNodeId: string): Promise<CallOutcome> {
    let chosen: FunctionEntry | undefined;
    let otherLocal: FunctionEntry | undefined;
    let thirdNode: FunctionEntry | undefined;
    for (const entry of this.deps.registry.pool(request.functionId)) {
      if (entry.nodeId !== this.deps.nodeId) thirdNode ??= entry.nodeId === fromNodeId ? undefined : entry;
      else if (entry.workerId === workerId) chosen = entry;
      else otherLocal ??= entry;
    }
    const entry = chosen ?? otherLocal ?? thirdNode;
    if (!entry) return Promise.reject(this.notFound(request.functionId));
    // Not a spread copy of the request: that would parse data held as text (protocol/json-text.ts).
    return this.route(request, undefined, entry);
  }

  /**
   * The refusal of a call that would take the node past `max_pending_calls_per_node`: every
   * caller (worker, HTTP trigger, queue, cron, another node) gets it, and nothing is sent.
   */
  private pendingLimit(): EngineError {
    this.deps.onPendingLimit?.();
    return new EngineError(
      ErrorCode.limitExceeded,
      `This node has ${this.pending.size} calls pending, the limit is ${this.pending.maxCalls} (max_pending_calls_per_node); retry when some have finished`,
    );
  }

  /** Local candidates first, least in-flight among them; otherwise round robin over the pool. */
  private pick(pool: readonly FunctionEntry[]): FunctionEntry {
    if (pool.length === 1) return pool[0];
    const start = this.roundRobin++ % pool.length;
    let best: FunctionEntry | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < pool.length; i++) {
      const entry = pool[(start + i) % pool.length];
      if (entry.nodeId !== this.deps.nodeId) continue;
      const load = this.pending.inFlight(entry.workerId);
      if (load < bestLoad) {
        best = entry;
        bestLoad = load;
      }
    }
    return best ?? pool[start];
  }
}

/**
 * Errors a handler throws become EngineErrors in `withDeadline`. A null value is no result, as a
 * worker's `result: null` is: the original's built-ins omit the field (state::get of a missing key
 * resolves `undefined` in the SDK).
 */
async function runLocal(handler: LocalHandler, request: CallRequest): Promise<CallOutcome> {
  const value = await handler(request.data, request);
  return value === undefined || value === null ? {} : { result: value };
}

/** Settles with `work` or with the deadline's error, whichever comes first. */
function withDeadline(
  work: Promise<CallOutcome>,
  timeoutMs: number,
  onTimeout: () => EngineError,
): Promise<CallOutcome> {
  return new Promise<CallOutcome>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), timeoutMs);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(EngineError.from(err));
      },
    );
  });
}
