import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger';
import type { Bus, BusHandler } from './bus';
import type { BusMessage, Envelope } from './messages';
import { openRedis, redisConnection } from './redis-connection';
import type { RedisEndpoint } from './redis-options';

/**
 * The bus over Redis pub/sub: each node subscribes to its inbox channel and to the broadcast
 * channel. One PUBLISH per message; a cross-node call costs one PUBLISH there and one back.
 */
export class RedisBus implements Bus {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private handler: BusHandler = () => undefined;
  /** A PUBLISH was written this event-loop turn: the next ones are corked until the turn ends. */
  private publishedThisTurn = false;
  private corkedStream: Redis['stream'] | undefined;

  constructor(
    redis: RedisEndpoint,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly logger: Logger,
  ) {
    this.pub = redisConnection(redis, `iii:${nodeId}:bus-pub`, logger);
    // A subscriber connection re-subscribes by itself after a reconnect; it must queue that.
    this.sub = redisConnection(redis, `iii:${nodeId}:bus-sub`, logger, { enableOfflineQueue: true, maxRetriesPerRequest: null });
  }

  inbox(nodeId: string): string {
    return `${this.prefix}inbox:${nodeId}`;
  }

  get broadcastChannel(): string {
    return `${this.prefix}broadcast`;
  }

  async start(handler: BusHandler): Promise<void> {
    this.handler = handler;
    this.sub.on('messageBuffer', (_channel: Buffer, payload: Buffer) => this.receive(payload));
    await Promise.all([openRedis(this.pub, 'cluster bus'), openRedis(this.sub, 'cluster bus')]);
    await this.sub.subscribe(this.inbox(this.nodeId), this.broadcastChannel);
  }

  send(nodeId: string, message: BusMessage): Promise<void> {
    return this.publish(this.inbox(nodeId), message);
  }

  broadcast(message: BusMessage): Promise<void> {
    return this.publish(this.broadcastChannel, message);
  }

  async stop(): Promise<void> {
    this.sub.disconnect();
    await this.pub.quit().catch(() => this.pub.disconnect());
  }

  private async publish(channel: string, message: BusMessage): Promise<void> {
    const envelope: Envelope = { from: this.nodeId, message };
    this.corkTurn();
    await this.pub.publish(channel, JSON.stringify(envelope));
  }

  /**
   * The first PUBLISH of an event-loop turn is written at once (one call at a time waits for
   * nothing); the ones after it are corked and leave together when the turn ends. At K=64 the
   * socket write per PUBLISH was the largest cost of a node on the call path.
   */
  private corkTurn(): void {
    if (!this.publishedThisTurn) {
      this.publishedThisTurn = true;
      setImmediate(this.endTurn);
      return;
    }
    const stream = this.pub.stream;
    if (this.corkedStream !== undefined || this.pub.status !== 'ready' || stream === undefined) return;
    this.corkedStream = stream;
    stream.cork();
  }

  private readonly endTurn = (): void => {
    this.publishedThisTurn = false;
    this.corkedStream?.uncork();
    this.corkedStream = undefined;
  };

  private receive(payload: Buffer): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload.toString('utf8')) as Envelope;
    } catch (err) {
      this.logger.warn({ err }, 'undecodable bus message dropped');
      return;
    }
    if (envelope.from === this.nodeId) return;
    this.handler(envelope.message, envelope.from);
  }
}
