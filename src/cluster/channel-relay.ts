import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import type { ChannelTarget } from '../transport/channels';
import { rejectUpgrade } from '../transport/reject-upgrade';
import type { Logger } from '../observability/logger';

/** Bytes a relayed socket may have unsent before the other side is paused. */
const HIGH_WATER_BYTES = 1024 * 1024;
/** How long the owner node may take to accept the relayed end, in milliseconds. */
const OWNER_CONNECT_TIMEOUT_MS = 5000;

/**
 * The channel id prefix of a node: channels made on a node start with it, so any node can tell
 * where a worker's end must go. Eight hex characters of the node id's hash, then a dot.
 */
export function channelPrefix(nodeId: string): string {
  return `${createHash('sha256').update(nodeId).digest('hex').slice(0, 8)}.`;
}

/**
 * Data channels across nodes. A worker connects its end to the node it is connected to; when
 * the channel was made on another node (a request served there, a channel created by a worker
 * there), this node opens the same end on the owner node and relays frames both ways, with
 * back-pressure and close codes passed through. The owner's answer to the upgrade (404 for an
 * unknown channel or key) reaches the worker unchanged.
 */
export class ChannelRelay {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  private readonly sockets = new Set<WebSocket>();

  constructor(
    /** This node's channel id prefix (`channelPrefix(nodeId)`). */
    private readonly ownPrefix: string,
    /** The worker URL (`ws://host:port`, `wss://` when it has TLS) of the node whose channels start with `prefix`, if alive. */
    private readonly ownerUrl: (prefix: string) => Promise<string | undefined>,
    private readonly maxMessageBytes: number,
    private readonly logger: Logger,
    /** CA certificates (PEM, `III_TLS_CA_FILE`) trusted for wss:// owners instead of Node's defaults. */
    private readonly ca?: Buffer,
  ) {}

  /**
   * A ChannelManager forwarder: takes the upgrade when the channel id names another node (false
   * for this node's own ids, which the manager answers 404). The owner is looked up, then the
   * same end is opened there and relayed.
   */
  readonly forward = (target: ChannelTarget, req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const dot = target.channelId.indexOf('.');
    const prefix = dot > 0 ? target.channelId.slice(0, dot + 1) : undefined;
    if (prefix === undefined || prefix === this.ownPrefix) return false;
    socket.on('error', () => undefined);
    this.ownerUrl(prefix).then(
      (base) => {
        if (base === undefined) rejectUpgrade(socket, 404, 'Channel not found');
        else this.relay(base, target, req, socket, head);
      },
      (err: unknown) => {
        this.logger.debug({ err, channel_id: target.channelId }, 'channel owner lookup failed');
        rejectUpgrade(socket, 503, 'Cannot look up the node that owns this channel');
      },
    );
    return true;
  };

  private relay(base: string, target: ChannelTarget, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const query = `key=${encodeURIComponent(target.key)}&dir=${target.direction}`;
    const upstream = new WebSocket(`${base}/ws/channels/${encodeURIComponent(target.channelId)}?${query}`, {
      perMessageDeflate: false,
      maxPayload: this.maxMessageBytes,
      handshakeTimeout: OWNER_CONNECT_TIMEOUT_MS,
      ...(this.ca ? { ca: this.ca } : {}),
    });
    this.track(upstream);
    upstream.once('unexpected-response', (_request, response) => {
      rejectUpgrade(
        socket,
        response.statusCode ?? 502,
        response.statusCode === 404 ? 'Channel not found' : 'Channel owner refused the connection',
      );
      upstream.terminate();
    });
    upstream.once('error', (err) => {
      this.logger.debug({ err, channel_id: target.channelId }, 'channel owner unreachable');
      rejectUpgrade(socket, 502, 'The node that owns this channel is unreachable');
    });
    upstream.once('open', () => {
      this.wss.handleUpgrade(req, socket, head, (client) => {
        this.track(client);
        pipe(client, upstream);
        pipe(upstream, client);
      });
    });
  }

  close(): void {
    for (const socket of this.sockets) socket.terminate();
    this.sockets.clear();
    this.wss.close();
  }

  private track(socket: WebSocket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
  }
}

/** Frames from `from` go to `to`; `from` is paused while `to` has too much unsent; closes follow. */
function pipe(from: WebSocket, to: WebSocket): void {
  from.on('message', (data: RawData, isBinary: boolean) => {
    if (to.readyState !== WebSocket.OPEN) return;
    to.send(data as Buffer, { binary: isBinary }, () => {
      if (from.isPaused && to.bufferedAmount < HIGH_WATER_BYTES / 2) from.resume();
    });
    if (to.bufferedAmount > HIGH_WATER_BYTES && !from.isPaused) from.pause();
  });
  from.on('close', (code: number, reason: Buffer) => {
    if (to.readyState !== WebSocket.OPEN && to.readyState !== WebSocket.CONNECTING) return;
    // 1005 (no code) and 1006 (no close frame) cannot be sent; they mean "ended" and "gone".
    if (code === 1005) to.close(1000, reason);
    else if (code === 1006) to.terminate();
    else {
      try {
        to.close(code, reason);
      } catch {
        to.terminate(); // a code ws may receive but not send (1015, ...)
      }
    }
  });
}
