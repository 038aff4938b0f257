/**
 * `concurrency_request_limit`: requests served at once by the whole server (not per route).
 * Excess requests wait in arrival order for a slot rather than being refused.
 */
export class Slots {
  private used = 0;
  private readonly waiting = new Set<() => void>();

  constructor(private readonly limit: number) {}

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
   * does nothing after the grant.
   */
  acquire(granted: () => void): () => void {
    if (this.tryTake()) {
      granted();
      return NOTHING;
    }
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
