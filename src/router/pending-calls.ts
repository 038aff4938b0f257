import { EngineError } from '../protocol/errors';
import type { Json } from '../protocol/messages';

export interface CallOutcome {
  result?: Json;
}

interface Pending {
  id: string;
  functionId: string;
  workerId: string;
  timer: NodeJS.Timeout;
  resolve(outcome: CallOutcome): void;
  reject(error: EngineError): void;
}

/**
 * The calls this node has sent to workers and not yet settled. Each is settled exactly once: by
 * its result, by its deadline, or by the loss of the worker executing it, whichever comes first
 * (the entry is deleted before its promise is settled, so a second settlement finds nothing).
 */
export class PendingCalls {
  private readonly calls = new Map<string, Pending>();
  private readonly byWorker = new Map<string, Set<string>>();

  constructor(
    /** Calls that may be pending at once (`max_pending_calls_per_node`); Infinity = unbounded. */
    readonly maxCalls = Infinity,
  ) {}

  get size(): number {
    return this.calls.size;
  }

  /** True when no further call may be added: the router refuses it with `limit_exceeded`. */
  get full(): boolean {
    return this.calls.size >= this.maxCalls;
  }

  /** Calls currently executing on `workerId`: the load figure used for balancing. */
  inFlight(workerId: string): number {
    return this.byWorker.get(workerId)?.size ?? 0;
  }

  /**
   * Registers a call and returns its promise; `onTimeout` builds the error the deadline raises.
   */
  add(
    id: string,
    functionId: string,
    workerId: string,
    timeoutMs: number,
    onTimeout: () => EngineError,
  ): Promise<CallOutcome> {
    return new Promise<CallOutcome>((resolve, reject) => {
      const timer = setTimeout(() => this.reject(id, onTimeout()), timeoutMs);
      this.calls.set(id, { id, functionId, workerId, timer, resolve, reject });
      let set = this.byWorker.get(workerId);
      if (!set) this.byWorker.set(workerId, (set = new Set()));
      set.add(id);
    });
  }

  /** The worker a pending call was sent to, to check that a result comes from it. */
  workerOf(id: string): string | undefined {
    return this.calls.get(id)?.workerId;
  }

  resolve(id: string, outcome: CallOutcome): boolean {
    const call = this.take(id);
    if (!call) return false;
    call.resolve(outcome);
    return true;
  }

  reject(id: string, error: EngineError): boolean {
    const call = this.take(id);
    if (!call) return false;
    call.reject(error);
    return true;
  }

  /** Fails every call executing on `workerId` (it disconnected) and returns how many. */
  rejectWorker(workerId: string, error: () => EngineError): number {
    const ids = this.byWorker.get(workerId);
    if (!ids) return 0;
    let count = 0;
    for (const id of [...ids]) if (this.reject(id, error())) count++;
    return count;
  }

  rejectAll(error: () => EngineError): void {
    for (const id of [...this.calls.keys()]) this.reject(id, error());
  }

  private take(id: string): Pending | undefined {
    const call = this.calls.get(id);
    if (!call) return undefined;
    this.calls.delete(id);
    clearTimeout(call.timer);
    const set = this.byWorker.get(call.workerId);
    if (set) {
      set.delete(id);
      if (set.size === 0) this.byWorker.delete(call.workerId);
    }
    return call;
  }
}
