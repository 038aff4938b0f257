import { connect, type Channel, type ChannelModel, type ConfirmChannel, type RecoveringChannelModel } from 'amqplib';
import type { Logger } from '../../../observability/logger';
import { redactUrl } from '../../../observability/redact-url';

/** How long the first connection may take before operations fail, by default, in ms. */
export const FIRST_CONNECT_TIMEOUT_MS = 10_000;
/** Reconnect delays after a lost connection: from the first to the cap, doubling, in ms. */
const RECONNECT_FIRST_MS = 200;
const RECONNECT_MAX_MS = 2000;
/** AMQP heartbeat, in seconds: a dead broker or a cut link is noticed within about twice this. */
const HEARTBEAT_S = 5;

/** The channels of one live connection. */
interface Live {
  model: ChannelModel;
  /** Publishes with confirms: a message counts as enqueued only once the broker has it. */
  publisher: ConfirmChannel;
}

/**
 * One AMQP connection that reconnects forever (amqplib's recovery). Operations fail at once
 * while it is down (`unavailable`), as the cluster's Redis connections do; `onConnect` runs on
 * every new connection before it is used (declares queues, restarts consumers), and a failure
 * there drops the connection and tries again.
 */
export class RabbitmqLink {
  private live: Live | undefined;
  private admin: Promise<Channel> | undefined;
  private readonly recovering: Promise<RecoveringChannelModel>;
  private closed = false;

  constructor(
    private readonly url: string,
    connectionName: string,
    private readonly logger: Logger,
    onConnect: (model: ChannelModel) => Promise<void>,
    private readonly connectTimeoutMs = FIRST_CONNECT_TIMEOUT_MS,
  ) {
    this.recovering = connect(withHeartbeat(url), {
      clientProperties: { connection_name: connectionName },
      recovery: {
        waitForConnect: false,
        calculateDelay: (attempt) => Math.min(RECONNECT_FIRST_MS * 2 ** (attempt - 1), RECONNECT_MAX_MS),
        setup: async (model: ChannelModel) => {
          const publisher = await model.createConfirmChannel();
          publisher.on('error', (err: Error) => this.logger.debug({ err }, 'queue rabbitmq: publisher channel error'));
          this.live = { model, publisher };
          this.admin = undefined;
          try {
            await onConnect(model);
          } catch (err) {
            this.live = undefined;
            throw err;
          }
        },
      },
    });
    void this.recovering.then((model) => {
      model.on('disconnect', (err: Error) => {
        this.live = undefined;
        this.admin = undefined;
        this.logger.warn({ err: err.message }, 'queue rabbitmq: connection lost, reconnecting');
      });
      model.on('connect-failed', (err: Error) =>
        this.logger.debug({ err: err.message }, 'queue rabbitmq: connect failed'),
      );
      model.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'queue rabbitmq: connection error'));
    });
  }

  /** Waits for the first connection, bounded by `connectTimeoutMs`. */
  async ready(): Promise<void> {
    if (this.live) return;
    const model = await this.recovering;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        model.waitForConnect(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no connection to ${redactUrl(this.url)} within ${this.connectTimeoutMs} ms`)),
            this.connectTimeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    if (!this.live) throw this.unavailable();
  }

  get connected(): boolean {
    return this.live !== undefined;
  }

  /** The confirm channel of the live connection; throws at once while disconnected. */
  publisher(): ConfirmChannel {
    if (!this.live) throw this.unavailable();
    return this.live.publisher;
  }

  /** The live connection, to open a channel of one's own. */
  model(): ChannelModel {
    if (!this.live) throw this.unavailable();
    return this.live.model;
  }

  /**
   * A channel for declarations, counts and browsing. A failed passive check (404) closes a
   * channel, so a closed one is replaced on the next call.
   */
  adminChannel(): Promise<Channel> {
    const model = this.model();
    if (!this.admin) {
      const opening = model.createChannel().then((channel) => {
        channel.on('error', (err: Error) =>
          this.logger.debug({ err: err.message }, 'queue rabbitmq: admin channel error'),
        );
        channel.on('close', () => {
          if (this.admin === opening) this.admin = undefined;
        });
        return channel;
      });
      opening.catch(() => {
        if (this.admin === opening) this.admin = undefined;
      });
      this.admin = opening;
    }
    return this.admin;
  }

  /** Closes the connection and stops reconnecting; unacknowledged deliveries go back to their queues. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.live = undefined;
    await (await this.recovering).close().catch(() => undefined);
  }

  private unavailable(): Error {
    return new Error(`RabbitMQ at ${redactUrl(this.url)} is unreachable (reconnecting)`);
  }
}

/** The URL with our heartbeat unless it names one (amqplib reads it from the query). */
function withHeartbeat(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(
      `iii-queue: adapter.config.amqp_url ${JSON.stringify(redactUrl(url))} is not a URL; expected amqp://user:password@host:5672/vhost`,
    );
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    throw new Error(
      `iii-queue: adapter.config.amqp_url must start with amqp:// or amqps://, got ${JSON.stringify(redactUrl(url))}`,
    );
  }
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(HEARTBEAT_S));
  return parsed.toString();
}
