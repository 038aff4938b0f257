import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { Server, type ExtendedError } from 'socket.io';
import { EngineError, ErrorCode } from '../../protocol/errors';
import { authenticate } from './client-auth';
import { SOCKET_IO_PATH, type ClientServerDeps } from './client-server';
import { streamEvent, type StreamEvent } from './events';
import { subscriptionLimitRefusal } from './limits';
import { membershipEvent, type MembershipEvent } from './membership-triggers';
import {
  SocketIoClient,
  type StreamClientEvents,
  type StreamServerEvents,
  type StreamSocket,
  type StreamSocketData,
} from './socketio-client';
import { readJoin, readLeave, splitAck, type SocketIoAck } from './socketio-payload';
import type { SocketIoRedisLink } from './socketio-redis-adapter';
import { eventRooms } from './socketio-rooms';
import { initialSync } from './stream-service';

/** What the raw port gets (the same auth function, triggers, address count and limits), plus: */
export interface SocketIoServerDeps extends ClientServerDeps {
  /** The stream port's HTTP server; the raw port (ClientServer) owns it and closes it. */
  httpServer: http.Server;
  /** Cluster mode: the Redis link whose adapter spans the nodes; closed by `close`. */
  redis: SocketIoRedisLink | undefined;
}

/**
 * Stream subscribers over Socket.IO on the stream port (path /socket.io/): the raw protocol's
 * join/leave flow, auth function, `stream:join`/`stream:leave` triggers, limits and initial sync,
 * with an acknowledgement per `join`/`leave` and change events emitted as `stream` to the rooms
 * of the subscriptions (socketio-rooms.ts).
 */
export class SocketIoServer {
  private readonly io: Server<StreamClientEvents, StreamServerEvents, Record<string, never>, StreamSocketData>;
  private readonly clients = new Set<SocketIoClient>();
  /** TCP sockets of WebSocket transports, destroyed at close: a polite close could wait on a silent client. */
  private readonly upgraded = new Set<Duplex>();
  private stopping = false;

  constructor(private readonly deps: SocketIoServerDeps) {
    this.io = new Server(deps.httpServer, {
      path: SOCKET_IO_PATH,
      serveClient: false,
      // Other upgrades belong to the raw port, some answered only after the auth function:
      // engine.io must not end them after its default 1 s.
      destroyUpgrade: false,
      // `max_frame_bytes`: a larger message closes the connection, as a larger frame does on the raw port.
      maxHttpBufferSize: deps.limits.maxFrameBytes,
      // As open as the raw port, which takes any Origin: auth_function decides who gets in.
      // Without it a browser on another origin could not use the polling transport.
      cors: { origin: true },
      ...(deps.redis ? { adapter: deps.redis.adapter } : {}),
    });
    const authFunction = deps.authFunction;
    if (authFunction !== undefined) this.io.use((socket, next) => this.authenticate(authFunction, socket, next));
    // Last middleware: only a client about to connect is counted (until its connection closes).
    this.io.use((socket, next) => this.countAddress(socket, next));
    this.io.on('connection', (socket) => this.accept(socket));
    deps.httpServer.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
      if (!(req.url ?? '').startsWith(SOCKET_IO_PATH)) return;
      if (this.stopping) return void socket.destroy();
      this.upgraded.add(socket);
      socket.once('close', () => this.upgraded.delete(socket));
    });
  }

  /** Connected Socket.IO clients on this node, for tests and metrics. */
  get clientCount(): number {
    return this.clients.size;
  }

  get subscriptionCount(): number {
    let n = 0;
    for (const client of this.clients) n += client.subscriptions.size;
    return n;
  }

  /**
   * Emits an event to this node's subscribers of it, once per socket. Exactly once cluster-wide
   * because the stream event bus already brings every event to every node once (the redis bus
   * delivers this node's own events in-process and drops their echo): each node emits LOCALLY
   * (`io.local`). Letting the redis adapter fan out from the writing node instead would publish
   * every change to Redis a second time, on a second path with its own ordering and failure
   * modes, while raw-port clients would still need the bus.
   */
  deliver(event: StreamEvent): void {
    const rooms = eventRooms(event).filter((room) => this.io.sockets.adapter.rooms.has(room));
    if (rooms.length > 0) this.io.local.to(rooms).emit('stream', event);
  }

  /** Cuts every client (no leave handlers run: the node is going away) and closes the adapter. */
  async close(): Promise<void> {
    this.stopping = true;
    // Not io.close(): that would also close the HTTP server, which the raw port closes after this.
    // engine.close() discards unsent packets and disconnects every socket at once.
    this.io.engine.close();
    for (const socket of this.upgraded) socket.destroy();
    await this.io.sockets.adapter.close();
    await this.deps.redis?.close();
  }

  /** Socket.IO middleware: a refusal reaches the client as `connect_error` with `data: {code, message}`. */
  private authenticate(functionId: string, socket: StreamSocket, next: (err?: ExtendedError) => void): void {
    const url = socket.request.url ?? SOCKET_IO_PATH;
    const at = url.indexOf('?');
    const [path, query] = at < 0 ? [url, ''] : [url.slice(0, at), url.slice(at + 1)];
    authenticate(this.deps.host, functionId, socket.request, path, query)
      .then((outcome) => {
        if (this.stopping) return next(refusal(ErrorCode.shuttingDown, 'The engine is shutting down.'));
        if (!outcome.ok) return next(refusal(ErrorCode.authError, outcome.reason));
        socket.data.context = outcome.context;
        next();
      })
      .catch((err: unknown) => {
        this.deps.host.logger.warn({ err }, 'stream Socket.IO handshake failed');
        next(refusal(ErrorCode.authError, `The stream auth function ${functionId} could not be called.`));
      });
  }

  /** `max_connections_per_address`: a client over it gets `connect_error` with `data: {code: "limit_exceeded", message}`. */
  private countAddress(socket: StreamSocket, next: (err?: ExtendedError) => void): void {
    const address = socket.conn.remoteAddress;
    const { addresses } = this.deps;
    // A client gone during the handshake would never emit 'close' to release its count.
    if (socket.conn.readyState === 'closed') return next(new Error('The connection closed during the handshake.'));
    if (!addresses.acquire(address, socket.conn))
      return next(refusal(ErrorCode.limitExceeded, addresses.refusal(address)));
    next();
  }

  private accept(socket: StreamSocket): void {
    if (this.stopping) {
      socket.disconnect(true);
      return;
    }
    socket.data.context ??= null;
    const client = new SocketIoClient(socket, this.deps.limits.maxSendBufferBytes, () =>
      this.deps.host.metrics.slowConsumers.inc(),
    );
    this.clients.add(client);
    const onError = (err: unknown) => this.deps.host.logger.warn({ err }, 'stream Socket.IO event failed');
    socket.on('join', (...args: unknown[]) => client.serialize(() => this.join(client, args), onError));
    socket.on('leave', (...args: unknown[]) => client.serialize(() => this.leave(client, args), onError));
    socket.on('disconnect', () => this.onDisconnect(client));
  }

  private async join(client: SocketIoClient, args: unknown[]): Promise<void> {
    const { payload, ack } = splitAck(args);
    const read = readJoin(payload);
    if (!read.ok) return ack(read.ack);
    const { subscriptionId, streamName, groupId, id } = read.value;
    const refusal = subscriptionLimitRefusal(client.subscriptions, subscriptionId, this.deps.limits);
    if (refusal) return ack(failure(ErrorCode.limitExceeded, refusal));
    const event: MembershipEvent = {
      subscription_id: subscriptionId,
      stream_name: streamName,
      group_id: groupId,
      id,
      context: client.context,
    };
    const admitted = await this.deps.joins.admits(event);
    if (!client.open) return;
    if (!admitted) {
      // The event as the raw port sends it, for clients that route on stream messages alone.
      client.sendEvent(streamEvent(streamName, groupId, id, { type: 'unauthorized' }));
      return ack(
        failure(
          ErrorCode.forbidden,
          `A stream:join handler refused subscription ${subscriptionId} to ${streamName}/${groupId}.`,
        ),
      );
    }
    // Joining again under the same id replaces the earlier subscription.
    const previous = client.subscriptions.get(subscriptionId);
    client.subscribe({ client, subscriptionId, streamName, groupId, id });
    // Held before the sync is read: with the bridge, the change reports start no later than it.
    this.deps.interest.hold(streamName);
    if (previous) this.deps.interest.release(previous.streamName);
    try {
      const data = await initialSync(this.deps.service, streamName, groupId, id);
      client.sendEvent(streamEvent(streamName, groupId, id, { type: 'sync', data }));
      ack({ ok: true });
    } catch (err) {
      const cause = EngineError.from(err);
      ack(failure(cause.code, `Joined, but the initial sync failed: ${cause.message}`));
    }
  }

  /** A leave for a subscription this connection does not hold is acknowledged and ignored. */
  private async leave(client: SocketIoClient, args: unknown[]): Promise<void> {
    const { payload, ack } = splitAck(args);
    const read = readLeave(payload);
    if (!read.ok) return ack(read.ack);
    const subscription = client.unsubscribe(read.value);
    ack({ ok: true });
    if (!subscription) return;
    this.deps.interest.release(subscription.streamName);
    await this.deps.leaves.notify(membershipEvent(subscription));
  }

  private onDisconnect(client: SocketIoClient): void {
    this.clients.delete(client);
    const gone = client.close();
    for (const subscription of gone) this.deps.interest.release(subscription.streamName);
    if (this.stopping || gone.length === 0) return;
    // Disconnecting leaves every subscription, one after the other.
    void (async () => {
      for (const subscription of gone) await this.deps.leaves.notify(membershipEvent(subscription));
    })();
  }
}

function failure(code: string, message: string): SocketIoAck {
  return { ok: false, error: { code, message } };
}

function refusal(code: string, message: string): ExtendedError {
  return Object.assign(new Error(message), { data: { code, message } });
}
