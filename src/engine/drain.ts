import type { RawData } from 'ws';
import type WebSocket from 'ws';
import type { ClusterNode } from '../cluster/cluster-node';
import type { Logger } from '../observability/logger';
import type { EngineMetrics } from '../observability/metrics';
import { decodeFrame } from '../protocol/codec';
import { EngineError, ErrorCode } from '../protocol/errors';
import type { InvokeFunction } from '../protocol/messages';
import type { Registry } from '../registry/registry';
import type { FunctionEntry } from '../registry/types';
import type { CallRequest, Router, WorkerTarget } from '../router/router';
import { CloseCode } from '../transport/connection';
import { rawDataToBuffer } from '../transport/raw-data';
import { sameSecret } from '../transport/secret';
import type { WorkerSession } from './worker-session';

/** How often the drain looks for idle worker sockets and pending calls, in milliseconds. */
const DRAIN_POLL_MS = 5;
/**
 * How long a draining cluster node keeps the entries of a worker it disconnected, in
 * milliseconds: the SDK reconnects after 1 s (+-30 %), then 2 s if that attempt fails.
 */
export const DEPARTED_HOLD_MS = 5000;
/** Calls of one closed socket kept for its worker to claim from its next node (see `orphans`). */
export const MAX_ORPHAN_CALLS = 1000;
/** How often a drain that waits logs what it waits for, in milliseconds. */
const DRAIN_REPORT_MS = 1000;
/** How long the stop waits for workers to answer the close frames (1012) before cutting them, in milliseconds. */
export const CLOSE_HANDSHAKE_WAIT_MS = 1000;

/** What the drain needs from its node. */
export interface DrainHost {
  readonly nodeId: string;
  readonly registry: Registry;
  readonly router: Router;
  /** Present in cluster mode: calls are then diverted and handed over instead of failed. */
  readonly cluster: ClusterNode | undefined;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  /** The node's worker connections, by worker id. */
  readonly sessions: ReadonlyMap<string, WorkerSession>;
}

/** How a drain ended. */
export interface DrainOutcome {
  /** Everything settled before the grace ended. */
  settled: boolean;
  /** Calls still pending at the end of the grace, failed with `engine_shutting_down`. */
  failed: number;
}

/**
 * The drain and hand-over of one node (steps 2 and 3 of `Engine.stop`): closes each worker
 * socket once it is idle, and in cluster mode diverts new calls for this node's workers to
 * other nodes, keeps the entries of the workers it closed until they serve again elsewhere,
 * and hands the calls that crossed a close frame to the worker's next node.
 */
export class Drain {
  private active = false;
  /** Worker sockets the drain has closed, with when (performance.now()), until their close handshake is over. */
  private readonly drained = new Map<WebSocket, number>();
  /**
   * Calls for this node's workers that were not sent to them (so they can go idle and leave),
   * by invocation id: `parked` until another node serves the function, then `forwarded` there.
   * Their pending entries stay keyed by the original worker.
   */
  private readonly diverted = new Map<string, { workerId: string; message: InvokeFunction; forwarded: boolean }>();
  /**
   * Workers whose socket the drain closed, by id, with the time (performance.now()) until which
   * their registry entries are kept, so the cluster keeps routing their functions here (parked)
   * rather than failing them while they reconnect elsewhere.
   */
  private readonly departed = new Map<string, number>();
  /**
   * Calls a worker sent on a socket the drain had already closed (the frame crossed our close
   * frame; iii-sdk never re-sends it, but keeps waiting for its answer), by worker id, with that
   * socket's reattach token. When the worker reconnects to another node, that node broadcasts a
   * claim (`reattach`) and the calls are handed to it, to be made there as the new connection's
   * own. Kept at most DEPARTED_HOLD_MS.
   */
  private readonly orphans = new Map<string, { token: string; calls: InvokeFunction[]; until: number }>();

  constructor(private readonly host: DrainHost) {}

  /** The node began to drain: from now on its workers' new calls are diverted (cluster mode). */
  begin(): void {
    this.active = true;
  }

  /**
   * Drains until everything settled or `deadline` (a performance.now() time) passed, fails
   * what is left, closes the remaining sockets and waits for their close handshakes.
   */
  async run(deadline: number, graceMs: number): Promise<DrainOutcome> {
    const { router, metrics, logger } = this.host;
    this.begin();
    const settled = await this.closeIdleSessions(deadline);
    for (const workerId of [...this.departed.keys()]) this.forgetDeparted(workerId);
    for (const [workerId, held] of this.orphans) {
      logger.warn(
        { worker: workerId, calls: held.calls.length },
        'calls sent on a socket the drain closed were not claimed before the grace ended: lost',
      );
      metrics.drainFailedCalls.inc({ reason: 'unclaimed' }, held.calls.length);
    }
    this.orphans.clear();
    const failed = router.pending.size;
    if (failed > 0) metrics.drainFailedCalls.inc({ reason: 'grace_expired' }, failed);
    router.pending.rejectAll(
      () =>
        new EngineError(
          ErrorCode.shuttingDown,
          `The engine is shutting down: the call did not finish within the drain grace (${graceMs} ms)`,
        ),
    );
    // The rejections above answer their callers from promise callbacks: let them go out first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const sessions = [...this.host.sessions.values()];
    for (const session of sessions) this.close(session);
    await Promise.all(sessions.map((session) => session.cleanup()));
    // The answers and close frames are still in the sockets' buffers: closing the listeners now
    // would cut them (the worker would see 1006 and lose its answers).
    await this.closeHandshakes(CLOSE_HANDSHAKE_WAIT_MS);
    return { settled, failed };
  }

  /**
   * The router's view of a worker while the node drains in a cluster: no new calls reach it;
   * each is forwarded to another node serving the function, or parked until one does (the
   * worker itself reconnects to another node within about a second, SDK backoff), so the worker
   * goes idle, its socket closes and nothing it was asked fails. Outside a cluster drain: the
   * session itself.
   */
  target(workerId: string): WorkerTarget | undefined {
    const session = this.host.sessions.get(workerId);
    if (!this.active || !this.host.cluster) return session;
    if (!session && !this.departed.has(workerId)) return undefined;
    return {
      send: (message) => {
        this.diverted.set(message.invocation_id!, { workerId, message, forwarded: false });
        this.moveDiverted();
        return true;
      },
    };
  }

  /**
   * A connection is gone: true when the drain keeps its entries (it closed it in a cluster), so
   * calls for it keep coming here and are parked until it serves again elsewhere.
   */
  keepsDeparted(session: WorkerSession): boolean {
    if (!this.active || !this.host.cluster || !this.drained.has(session.connection.socket)) return false;
    this.departed.set(session.id, performance.now() + DEPARTED_HOLD_MS);
    return true;
  }

  /**
   * A frame that arrived on a socket already closing. A call on a socket the drain closed (cluster
   * mode) is kept in `orphans` for the worker to claim from its next node; anything else is dropped.
   */
  lateFrame(session: WorkerSession, data: RawData, isBinary: boolean): void {
    if (!this.active || !this.host.cluster || !this.drained.has(session.connection.socket)) return;
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
  handOverOrphans(previousWorkerId: string, token: string, to: string, workerId: string): void {
    const held = this.orphans.get(previousWorkerId);
    if (!held || !sameSecret(token, held.token)) return;
    this.orphans.delete(previousWorkerId);
    this.host
      .cluster!.send(to, { type: 'reattach.calls', workerId, calls: held.calls })
      .catch((err: unknown) =>
        this.host.logger.warn(
          { err, worker: previousWorkerId, calls: held.calls.length, peer: to },
          "calls of a closed socket not handed over to the worker's new node: lost",
        ),
      );
  }

  /** Calls another node held for a worker now connected here: made as this connection's own. */
  takeOverCalls(workerId: string, calls: InvokeFunction[]): void {
    const session = this.host.sessions.get(workerId);
    if (!session) {
      this.host.logger.warn(
        { worker: workerId, calls: calls.length },
        'calls handed over for a connection that is gone: lost',
      );
      return;
    }
    for (const call of calls) session.acceptCall(call);
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
    const { router, registry, metrics, logger } = this.host;
    for (const [id, call] of this.diverted) {
      if (router.pending.workerOf(id) === undefined) {
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
      router.invoke(request).then(
        (outcome) => router.pending.resolve(id, outcome),
        (err: unknown) => router.pending.reject(id, EngineError.from(err)),
      );
    }
    const now = performance.now();
    for (const [workerId, held] of this.orphans) {
      if (now < held.until) continue;
      this.orphans.delete(workerId);
      logger.warn(
        { worker: workerId, calls: held.calls.length },
        'calls sent on a socket the drain closed were not claimed by the worker from another node: lost',
      );
      metrics.drainFailedCalls.inc({ reason: 'unclaimed' }, held.calls.length);
    }
    for (const [workerId, holdUntil] of this.departed) {
      const waiting = this.divertedOf(workerId) > 0;
      const replaced = registry.functionsOf(workerId).every((fn) => this.servedElsewhere(fn.id) !== undefined);
      if ((replaced && !waiting) || now >= holdUntil) this.forgetDeparted(workerId);
    }
  }

  /** A function entry on another node (the workers of a draining node take no new calls). */
  private servedElsewhere(functionId: string): FunctionEntry | undefined {
    return this.host.registry.pool(functionId).find((entry) => entry.nodeId !== this.host.nodeId);
  }

  /** Removes a departed worker's entries; calls still parked for it fail. */
  private forgetDeparted(workerId: string): void {
    const { registry, router, metrics, nodeId } = this.host;
    this.departed.delete(workerId);
    for (const [id, call] of this.diverted) {
      if (call.workerId !== workerId || call.forwarded) continue;
      this.diverted.delete(id);
      metrics.drainFailedCalls.inc({ reason: 'no_target' });
      router.pending.reject(
        id,
        new EngineError(
          ErrorCode.invocationStopped,
          `Worker ${workerId} left draining node ${nodeId} and its function is served nowhere else`,
        ),
      );
    }
    for (const fn of registry.functionsOf(workerId)) registry.apply({ op: 'function.remove', id: fn.id, workerId });
    registry.apply({ op: 'worker.remove', workerId });
  }

  private close(session: WorkerSession): void {
    this.drained.set(session.connection.socket, performance.now());
    session.connection.close(CloseCode.serviceRestart, 'engine shutting down');
  }

  /**
   * Whether a socket the drain closed may still deliver frames: until the worker answers our close
   * frame (at most CLOSE_HANDSHAKE_WAIT_MS), a call it sent before seeing it can still arrive
   * (cluster mode keeps such calls in `orphans`). A single node has nowhere to hand them.
   */
  private closingHandshakes(): boolean {
    if (!this.host.cluster) return false;
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
  private async closeIdleSessions(deadline: number): Promise<boolean> {
    const { sessions, router, logger } = this.host;
    let nextReportAt = performance.now() + DRAIN_REPORT_MS;
    for (;;) {
      this.moveDiverted();
      for (const session of sessions.values()) {
        if (session.activeInvocations - this.divertedOf(session.id) === 0 && !session.connection.closing) {
          this.close(session);
          void session.cleanup();
        }
      }
      const idle = sessions.size === 0 && this.departed.size === 0 && router.pending.size === 0;
      if (idle && this.orphans.size === 0 && !this.closingHandshakes()) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      if (performance.now() >= nextReportAt) {
        nextReportAt += DRAIN_REPORT_MS;
        const busy = [...sessions.values()].map((session) => ({
          worker: session.id,
          active: session.activeInvocations,
        }));
        logger.info(
          { pendingCalls: router.pending.size, workers: busy, graceLeftMs: Math.round(left) },
          'draining: waiting for calls in flight',
        );
      }
      await new Promise<void>((resolve) => setTimeout(resolve, Math.min(DRAIN_POLL_MS, left)));
    }
  }
}
