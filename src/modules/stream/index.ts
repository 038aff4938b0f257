import { BindingGroups } from '../../engine/binding-groups';
import { isClusterMode, redisTarget } from '../../cluster/redis-target';
import { AddressLimit } from '../../transport/address-limit';
import type { EngineModule, ModuleHost } from '../../engine/module';
import { createStreamBackend, type StreamBackend } from './adapters';
import { ClientServer } from './client-server';
import { readStreamConfig, type StreamModuleConfig } from './config';
import type { StreamEvent } from './events';
import { registerStreamFunctions } from './functions';
import { StreamInterest } from './interest';
import { MembershipTriggers } from './membership-triggers';
import { SocketIoRedisLink } from './socketio-redis-adapter';
import { SocketIoServer } from './socketio-server';
import { StreamService } from './stream-service';
import { StreamTriggers } from './stream-triggers';

const MODULE = 'iii-stream';

/**
 * `iii-stream` (iii-modules.md §9): items in stream/group/item hierarchy behind the `stream::*`
 * functions, change events to `stream` triggers and to WebSocket and Socket.IO clients on its own port, and
 * the `stream:join`/`stream:leave` hooks that authorize and observe those clients.
 */
export class StreamModule implements EngineModule {
  readonly name = MODULE;
  private readonly settings: StreamModuleConfig;
  private backend: StreamBackend | undefined;
  private clients: ClientServer | undefined;
  private socketIo: SocketIoServer | undefined;
  private triggers: StreamTriggers | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(readonly config: Record<string, unknown>) {
    this.settings = readStreamConfig(config);
  }

  /** The bound client port (the config may ask for 0). */
  get port(): number {
    if (!this.clients) throw new Error('iii-stream is not started');
    return this.clients.port;
  }

  /** Connected clients (raw WebSocket and Socket.IO) and their subscriptions on this node. */
  get clientStats(): { clients: number; subscriptions: number } {
    return {
      clients: (this.clients?.clientCount ?? 0) + (this.socketIo?.clientCount ?? 0),
      subscriptions: (this.clients?.subscriptionCount ?? 0) + (this.socketIo?.subscriptionCount ?? 0),
    };
  }

  async start(host: ModuleHost): Promise<void> {
    const backend = await createStreamBackend(this.settings.adapter, {
      logger: host.logger,
      nodeId: host.nodeId,
      cluster: host.config.cluster,
    });
    this.backend = backend;
    // The streams this node's clients and bindings need: the bridge follows them on the other engine.
    const interest = new StreamInterest(backend.mirror);
    const triggers = new StreamTriggers(host, interest);
    this.triggers = triggers;
    const publish = (event: StreamEvent) =>
      backend.bus
        .publish(event)
        .catch((err: unknown) => host.logger.warn({ err }, 'stream event could not be published'));
    // Local triggers fire where the write happened; clients get the event through the bus,
    // which in a cluster reaches every node's clients. A mirrored adapter (the bridge) reports
    // its changes itself, made here or there: this node's bindings and clients get those.
    const emit = (event: StreamEvent) => {
      triggers.dispatch(event);
      void publish(event);
    };
    backend.mirror?.watch((event) => {
      triggers.mirror(event);
      void publish(event);
    });
    const service = new StreamService(host, backend.storage, emit, backend.mirror);
    const joins = new MembershipTriggers(host, 'stream:join');
    const leaves = new MembershipTriggers(host, 'stream:leave');
    const key = `${MODULE}.max_connections_per_address`;
    const addresses = new AddressLimit(this.settings.maxConnectionsPerAddress, key, () =>
      host.metrics.limitRefusals.inc({ limit: key }),
    );
    const limits = this.settings.limits;
    const clients = new ClientServer({
      host,
      service,
      joins,
      leaves,
      authFunction: this.settings.authFunction,
      addresses,
      limits,
      interest,
    });
    this.clients = clients;
    const socketIo = new SocketIoServer({
      host,
      service,
      joins,
      leaves,
      authFunction: this.settings.authFunction,
      addresses,
      limits,
      interest,
      httpServer: clients.httpServer,
      redis: await this.socketIoRedis(host),
    });
    this.socketIo = socketIo;
    this.unsubscribe = backend.bus.subscribe((event) => {
      clients.deliver(event);
      socketIo.deliver(event);
    });

    registerStreamFunctions(host, MODULE, service);
    await host.registerTriggerType(
      MODULE,
      {
        id: 'stream',
        description: backend.mirror
          ? "Fires on every change of the bridged engine's streams, made there or here"
          : 'Fires on stream::set/update/delete/send in this node',
        trigger_request_format: {
          type: 'object',
          required: ['stream_name'],
          properties: {
            stream_name: { type: 'string' },
            group_id: { type: 'string' },
            item_id: { type: 'string' },
            condition_function_id: { type: 'string' },
            fan_out: { type: 'boolean', description: 'fire on every binding of a pool, not once per binding group' },
          },
        },
      },
      new BindingGroups(triggers),
    );
    const membershipFormat = {
      type: 'object',
      properties: { stream_name: { type: 'string' }, condition_function_id: { type: 'string' } },
    };
    await host.registerTriggerType(
      MODULE,
      {
        id: 'stream:join',
        description: 'A client joins a subscription; {unauthorized: true} refuses it',
        trigger_request_format: membershipFormat,
      },
      joins,
    );
    await host.registerTriggerType(
      MODULE,
      {
        id: 'stream:leave',
        description: 'A client left a subscription or disconnected',
        trigger_request_format: membershipFormat,
      },
      leaves,
    );
    try {
      await clients.listen(this.settings.port, this.settings.host);
    } catch (err) {
      throw new Error(
        `iii-stream: cannot listen on ${this.settings.host}:${this.settings.port}: ${(err as Error).message}`,
      );
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.triggers?.clear();
    // Socket.IO first: the raw port's close waits for every connection of the shared HTTP server.
    await this.socketIo?.close();
    await this.clients?.close();
    await this.backend?.bus.close();
    await this.backend?.storage.close();
  }

  /**
   * In cluster mode Socket.IO gets the redis adapter, on the stream's own Redis when its adapter
   * names one (adapter.config.redis_url), else the cluster's; channels under the cluster prefix.
   */
  private async socketIoRedis(host: ModuleHost): Promise<SocketIoRedisLink | undefined> {
    const cluster = host.config.cluster;
    if (!isClusterMode(cluster)) return undefined;
    const target = redisTarget(
      MODULE,
      this.settings.adapter.name === 'redis' ? this.settings.adapter.config : undefined,
      cluster,
    );
    return SocketIoRedisLink.connect(target, target.keyPrefix, host.nodeId, host.logger);
  }
}
