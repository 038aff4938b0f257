import { SentinelConnector, type SentinelConnectionOptions } from 'ioredis';

/** The part of ioredis's SentinelConnector this class reaches into (private in its types). */
interface DetectorHolder {
  failoverDetector: { cleanup(): void } | null;
}

/**
 * ioredis's Sentinel connector, with its failover detector tied to the connection it watches.
 *
 * ioredis subscribes to the sentinels' `+switch-master` once a connection is up and, when a new
 * primary is announced, disconnects the connector so the connection moves to it. But the detector
 * outlives its connection: when the primary dies, the connection starts reconnecting while the
 * old detector still listens. If the announcement arrives while a reconnect attempt is asking the
 * sentinels where the primary is, the detector aborts that attempt, and ioredis ends the
 * connection for good (status `end`, no more retries): a node's bus or registry connection was
 * seen dead after a Sentinel failover, every cross-node call failing until a restart.
 *
 * Here the detector is dropped as soon as its connection closes. A closed connection has nothing
 * to move; the reconnect asks the sentinels anyway, and the next connection gets a detector of
 * its own when it is up.
 */
export class FailoverSafeSentinelConnector extends SentinelConnector {
  /** ioredis hands a custom connector the connection's whole options, typed unknown. */
  constructor(options: unknown) {
    super(options as SentinelConnectionOptions);
  }

  override async connect(...args: Parameters<SentinelConnector['connect']>): ReturnType<SentinelConnector['connect']> {
    const stream = await super.connect(...args);
    stream.once('close', () => {
      const self = this as unknown as DetectorHolder;
      self.failoverDetector?.cleanup();
      self.failoverDetector = null;
    });
    return stream;
  }
}
