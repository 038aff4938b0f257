/** Told when a stream gains its first holder on this node and when it loses its last. */
export interface StreamFollower {
  follow(streamName: string): void;
  unfollow(streamName: string): void;
}

/**
 * Which streams this node cares about, counted per stream name: one hold per client
 * subscription (raw WebSocket and Socket.IO) and per `stream` binding of this node. The
 * bridge adapter follows exactly these streams on the other engine (its `stream` trigger
 * needs a stream name); without a follower the counts are kept and nothing else happens.
 */
export class StreamInterest {
  private readonly holders = new Map<string, number>();

  constructor(private readonly follower: StreamFollower | undefined) {}

  hold(streamName: string): void {
    const count = this.holders.get(streamName) ?? 0;
    this.holders.set(streamName, count + 1);
    if (count === 0) this.follower?.follow(streamName);
  }

  /** Undoes one `hold`; a release without a hold is ignored. */
  release(streamName: string): void {
    const count = this.holders.get(streamName);
    if (count === undefined) return;
    if (count > 1) {
      this.holders.set(streamName, count - 1);
      return;
    }
    this.holders.delete(streamName);
    this.follower?.unfollow(streamName);
  }

  /** Streams held at least once, for tests and metrics. */
  get streams(): string[] {
    return [...this.holders.keys()];
  }
}
