/** Deliveries in flight across an adapter's queues, and a wait for them to finish (at close). */
export class InFlight {
  private count = 0;
  private idleWaiters: (() => void)[] = [];

  add(delta: 1 | -1): void {
    this.count += delta;
    if (this.count === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Resolves when no delivery is in flight, or after `graceMs`, whichever comes first. */
  async settled(graceMs: number): Promise<void> {
    if (this.count === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
  }
}
