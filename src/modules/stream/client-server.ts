import type http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { LogLimiter } from '../../observability/log-limiter';
import { EngineError, ErrorCode } from '../../protocol/errors';
import type { AddressLimit } from '../../transport/address-limit';
import { rawDataToBuffer } from '../../transport/raw-data';
import { refuseUpgrade, rejectUpgrade } from '../../transport/reject-upgrade';
import { createListenerServer } from '../../transport/tls';
import type { ModuleHost } from '../../engine/module';
import { authenticate } from './client-auth';
import { parseClientFrame, type ClientCommand } from './client-frames';
import { streamEvent, type StreamEvent } from './events';
import { subscriptionLimitRefusal, type StreamClientLimits } from './limits';
import { membershipEvent, type MembershipEvent, type MembershipTriggers } from './membership-triggers';
import { StreamClient } from './stream-client';
import type { StreamInterest } from './interest';
import { initialSync, type StreamService } from './stream-service';
import { SubscriptionIndex, type Subscription } from './subscriptions';

export interface ClientServerDeps {
  host: ModuleHost;
  service: StreamService;
  joins: MembershipTriggers;
  leaves: MembershipTriggers;
  /** `auth_function`: called at every upgrade when set. */
  authFunction: string | undefined;
  /** `max_connections_per_address`, shared with the Socket.IO clients of the port. */
  addresses: AddressLimit;
  /** `max_frame_bytes`, `max_subscriptions_per_connection`, `max_send_buffer_bytes`. */
  limits: StreamClientLimits;
  /** Held once per subscription, from before its sync until it ends (the bridge follows these streams). */
  interest: StreamInterest;
}

/** Where Socket.IO is served on the stream port; the raw protocol keeps `/`. */
export const SOCKET_IO_PATH = '/socket.io/';

/**
 * The stream client port (iii-modules.md §9.4): WebSocket clients on `/` join and leave
 * subscriptions and receive the events of what they joined.
 */
export class ClientServer {
  private readonly server: http.Server;
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<StreamClient>();
  private readonly index = new SubscriptionIndex<StreamClient>();
  /** Upgrades waiting for the auth function: cut at close, so closing never waits on them. */
  private readonly authenticating = new Set<Duplex>();
  private stopping = false;
  /** 429s are warned about once a minute per client address: a client can retry as fast as it likes. */
  private readonly refusalLog = new LogLimiter();

  constructor(private readonly deps: ClientServerDeps) {
    // `max_frame_bytes`: ws closes a socket that sends a larger frame with 1009 (message too big).
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: deps.limits.maxFrameBytes });
    // `iii-stream.tls` (read at config load): wss:// (and Socket.IO over https) only.
    this.server = createListenerServer(deps.host.config.tls?.stream, { logger: deps.host.logger }, (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket', connection: 'Upgrade' });
      res.end(`This port serves stream clients over WebSocket at / and over Socket.IO at ${SOCKET_IO_PATH}.`);
    });
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  async listen(port: number, host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The port's HTTP server, which Socket.IO shares (it serves /socket.io/); closed by `close`. */
  get httpServer(): http.Server {
    return this.server;
  }

  /** Connected clients, for tests and metrics. */
  get clientCount(): number {
    return this.clients.size;
  }

  get subscriptionCount(): number {
    return this.index.size;
  }

  /** Hands an event to every matching subscription (serialized once, whatever the fan-out). */
  deliver(event: StreamEvent): void {
    const targets = this.index.matching(event);
    if (targets.length === 0) return;
    const text = JSON.stringify(event);
    for (const subscription of targets) subscription.client.sendText(text);
  }

  /** Cuts every client (no leave handlers run: the node is going away) and closes the port. */
  async close(): Promise<void> {
    this.stopping = true;
    for (const client of this.clients) client.terminate();
    for (const socket of this.authenticating) socket.destroy();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Socket.IO's own upgrade listener on this server answers these.
    if ((req.url ?? '').startsWith(SOCKET_IO_PATH)) return;
    socket.on('error', (err) => this.deps.host.logger.debug({ err }, 'stream client socket error during upgrade'));
    if (this.stopping) return rejectUpgrade(socket, 503, 'The engine is shutting down.');
    const [path, query = ''] = splitUrl(req.url ?? '/');
    const pathJoin = path === '/' ? null : joinOfPath(path);
    if (pathJoin === undefined) {
      return rejectUpgrade(
        socket,
        404,
        `Not found: stream clients connect to "/" or "/stream/<stream_name>/<group_id>/", not "${path}".`,
      );
    }
    const address = req.socket.remoteAddress ?? '';
    if (!this.deps.addresses.acquire(address, socket)) {
      const message = this.deps.addresses.refusal(address);
      this.refusalLog.warn(this.deps.host.logger, `429 ${address}`, { peer: address, status: 429 }, message);
      return refuseUpgrade(socket, 429, ErrorCode.limitExceeded, message);
    }
    const authFunction = this.deps.authFunction;
    if (authFunction === undefined) {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, null, pathJoin));
      return;
    }
    this.authenticating.add(socket);
    authenticate(this.deps.host, authFunction, req, path, query)
      .then((outcome) => {
        this.authenticating.delete(socket);
        if (socket.destroyed) return;
        if (this.stopping) return rejectUpgrade(socket, 503, 'The engine is shutting down.');
        if (!outcome.ok) return rejectUpgrade(socket, 401, outcome.reason);
        this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, outcome.context, pathJoin));
      })
      .catch((err: unknown) => {
        this.authenticating.delete(socket);
        this.deps.host.logger.warn({ err }, 'stream client upgrade failed');
        socket.destroy();
      });
  }

  /** `pathJoin`: the subscription the connection's path names (`/stream/<s>/<g>/`), joined at once. */
  private accept(ws: WebSocket, context: StreamClient['context'], pathJoin: ClientCommand | null): void {
    if (this.stopping) {
      ws.terminate();
      return;
    }
    const client = new StreamClient(ws, context, this.deps.limits.maxSendBufferBytes, () =>
      this.deps.host.metrics.slowConsumers.inc(),
    );
    this.clients.add(client);
    ws.on('message', (data: RawData) =>
      client.serialize(
        () => this.onFrame(client, data),
        (err) => this.deps.host.logger.warn({ err }, 'stream client frame failed'),
      ),
    );
    ws.on('close', () => this.onClose(client));
    ws.on('error', (err) => this.deps.host.logger.debug({ err }, 'stream client socket error'));
    if (pathJoin) {
      client.serialize(
        () => this.join(client, pathJoin),
        (err) => this.deps.host.logger.warn({ err }, 'stream client path join failed'),
      );
    }
  }

  private async onFrame(client: StreamClient, data: RawData): Promise<void> {
    if (!client.open) return;
    const parsed = parseClientFrame(rawDataToBuffer(data).toString('utf8'));
    if (parsed.kind === 'blank') return;
    if (parsed.kind === 'invalid')
      return client.sendError(ErrorCode.invalidMessage, parsed.message, parsed.subscriptionId);
    if (parsed.command.type === 'join') await this.join(client, parsed.command);
    else await this.leave(client, parsed.command);
  }

  private async join(client: StreamClient, command: ClientCommand): Promise<void> {
    const { subscriptionId, streamName, groupId, id } = command;
    const previous = client.subscriptions.get(subscriptionId);
    const refusal = subscriptionLimitRefusal(client.subscriptions, subscriptionId, this.deps.limits);
    if (refusal) return client.sendError(ErrorCode.limitExceeded, refusal, subscriptionId);
    const event: MembershipEvent = {
      subscription_id: subscriptionId,
      stream_name: streamName,
      group_id: groupId,
      id,
      context: client.context,
    };
    const admitted = await this.deps.joins.admits(event);
    if (!client.open) return;
    if (!admitted) return client.sendEvent(streamEvent(streamName, groupId, id, { type: 'unauthorized' }));
    // Joining again under the same id replaces the earlier subscription.
    if (previous) this.index.remove(previous);
    const subscription: Subscription<StreamClient> = { client, subscriptionId, streamName, groupId, id };
    client.subscriptions.set(subscriptionId, subscription);
    this.index.add(subscription);
    // Held before the sync is read: with the bridge, the change reports start no later than it.
    this.deps.interest.hold(streamName);
    if (previous) this.deps.interest.release(previous.streamName);
    try {
      const data = await initialSync(this.deps.service, streamName, groupId, id);
      client.sendEvent(streamEvent(streamName, groupId, id, { type: 'sync', data }));
    } catch (err) {
      const cause = EngineError.from(err);
      client.sendError(cause.code, `Joined, but the initial sync failed: ${cause.message}`, subscriptionId);
    }
  }

  /** A leave for a subscription this connection does not hold is ignored. */
  private async leave(client: StreamClient, command: ClientCommand): Promise<void> {
    const subscription = client.subscriptions.get(command.subscriptionId);
    if (!subscription) return;
    client.subscriptions.delete(command.subscriptionId);
    this.index.remove(subscription);
    this.deps.interest.release(subscription.streamName);
    await this.deps.leaves.notify(membershipEvent(subscription));
  }

  private onClose(client: StreamClient): void {
    client.markClosed();
    this.clients.delete(client);
    const gone = [...client.subscriptions.values()];
    client.subscriptions.clear();
    for (const subscription of gone) {
      this.index.remove(subscription);
      this.deps.interest.release(subscription.streamName);
    }
    if (this.stopping || gone.length === 0) return;
    // Closing leaves every subscription, one after the other.
    void (async () => {
      for (const subscription of gone) await this.deps.leaves.notify(membershipEvent(subscription));
    })();
  }
}

/**
 * The subscription of a `/stream/<stream_name>/<group_id>/` path (the form iii's docs show;
 * trailing slash optional, segments percent-decoded), under the subscription id
 * `<stream_name>/<group_id>` so the client can leave it; undefined for any other path.
 */
function joinOfPath(path: string): ClientCommand | undefined {
  const match = /^\/stream\/([^/]+)\/([^/]+)\/?$/.exec(path);
  if (!match) return undefined;
  let streamName: string;
  let groupId: string;
  try {
    streamName = decodeURIComponent(match[1]);
    groupId = decodeURIComponent(match[2]);
  } catch {
    return undefined;
  }
  return { type: 'join', subscriptionId: `${streamName}/${groupId}`, streamName, groupId, id: null };
}

function splitUrl(url: string): [string, string?] {
  const at = url.indexOf('?');
  return at < 0 ? [url] : [url.slice(0, at), url.slice(at + 1)];
}
