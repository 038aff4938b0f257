/**
 * `concurrency_request_limit`: requests served at once by the whole server (not per route).
 * Excess requests wait in arrival order for a slot, at most `max_queued_requests` of them: a
 * flood cannot grow the waiting line (and the sockets and requests it holds) without bound.
 */
export class Slots {
  private used = 0;
  private readonly waiting = new Set<() => void>();

  constructor(
    /** Requests served at once (>= 1). */
    private readonly limit: number,
    /** Requests that may wait for a slot (0 = none: refused at once when every slot is busy). */
    readonly maxWaiting: number,
  ) {}

  /** Requests waiting for a slot now. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /**
   * Takes a slot if one is free now; the caller then owes one `release`. The common case, a
   * server below its limit, costs no closure (`acquire` is for a request that must wait).
   */
  tryTake(): boolean {
    if (this.used >= this.limit || this.waiting.size > 0) return false;
    this.used++;
    return true;
  }

  /** Gives back a slot taken by `tryTake` (or granted by `acquire`): the longest waiter gets it. */
  release(): void {
    this.used--;
    const next = this.waiting.values().next();
    if (!next.done) next.value();
  }

  /**
   * Calls `granted` once a slot is free (at once when one is); the granted request then owes one
   * `release`. Returns a function that withdraws a request still waiting (the client left); it
   * does nothing after the grant. Returns undefined, and never calls `granted`, when the request
   * would have to wait and `maxWaiting` requests already do: the caller refuses it.
   */
  acquire(granted: () => void): (() => void) | undefined {
    if (this.tryTake()) {
      granted();
      return NOTHING;
    }
    if (this.waiting.size >= this.maxWaiting) return undefined;
    const grant = () => {
      this.waiting.delete(grant);
      this.used++;
      granted();
    };
    this.waiting.add(grant);
    return () => this.waiting.delete(grant);
  }
}

const NOTHING = (): void => undefined;
