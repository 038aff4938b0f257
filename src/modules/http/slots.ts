/**
 * `concurrency_request_limit`: requests served at once by the whole server (not per route).
 * Excess requests wait in arrival order for a slot rather than being refused.
 */
export class Slots {
  private used = 0;
  private readonly waiting = new Set<() => void>();

  constructor(private readonly limit: number) {}

  /**
   * Calls `granted` with a release function once a slot is free (at once when one is). Returns a
   * function that withdraws a request still waiting (the client left); it does nothing after the
   * grant.
   */
  acquire(granted: (release: () => void) => void): () => void {
    const grant = () => {
      this.waiting.delete(grant);
      this.used++;
      let released = false;
      granted(() => {
        if (released) return;
        released = true;
        this.used--;
        const next = this.waiting.values().next();
        if (!next.done) next.value();
      });
    };
    if (this.used < this.limit) grant();
    else this.waiting.add(grant);
    return () => this.waiting.delete(grant);
  }
}
