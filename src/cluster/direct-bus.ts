import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { LogLimiter } from '../observability/log-limiter';
import type { Logger } from '../observability/logger';
import { TEXT_FRAME } from '../protocol/codec';
import { ErrorCode } from '../protocol/errors';
import { refuseUpgrade, rejectUpgrade } from '../transport/reject-upgrade';
import { sameSecret } from '../transport/secret';
import { rawDataToBuffer } from '../transport/raw-data';
import { TickCork } from '../transport/tick-cork';
import type { Bus, BusHandler } from './bus';
import { decodeSplitBusMessage, encodeBusMessage, readsSplit } from './bus-codec';
import type { BusMessage } from './messages';
import type { RedisBus } from './redis-bus';
import { LINK_PATH } from '../transport/worker-server';

/** How long a peer may take to accept a link, in milliseconds. */
const LINK_CONNECT_TIMEOUT_MS = 5000;
/** Wait before redialing a peer after a failed attempt: doubles per failure, from the first to the cap. */
const REDIAL_FIRST_MS = 100;
const REDIAL_MAX_MS = 5000;
/** Bytes a link may have unsent before messages take Redis instead (the peer reads slowly). */
const LINK_BACKLOG_BYTES = 8 * 1024 * 1024;
/** A link frame is a call or result: the payload (at most the worker frame limit) plus its envelope. */
const LINK_FRAME_SLACK_BYTES = 64 * 1024;
const RESOLVED = Promise.resolve();

/** Where and how another node is reached: its worker URL and the key its links accept. */
export interface LinkPeer {
  url?: string;
  linkKey?: string;
  /** The bus frames it reads (bus-codec.ts). */
  wire?: number;
}

export interface DirectBusOptions {
  nodeId: string;
  /** What another node must present to open a link to this one (published in its membership entry). */
  linkKey: string;
  /** The live peer `nodeId` as membership knows it; undefined until it has been seen alive. */
  peer(nodeId: string): LinkPeer | undefined;
  /** The worker frame limit: link frames carry at most that much payload. */
  maxMessageBytes: number;
  /** CA certificates (PEM, `III_TLS_CA_FILE`) trusted for wss:// peers instead of Node's defaults. */
  ca?: Buffer;
  logger: Logger;
}

/** Messages per path since start: over a link, or over Redis because no link could take them. */
export interface LinkCounts {
  link: number;
  redis: number;
}

interface Dial {
  connecting: boolean;
  failures: number;
  /** performance.now() before which no new attempt is made. */
  retryAt: number;
}

/**
 * `cluster.bus: direct`. Calls and results travel over persistent WebSocket links between nodes;
 * everything else (registry news, leaving, reattach hand-overs) stays on Redis pub/sub, so its
 * order is the one it always had. A link is opened the first time a node sends to a peer, on
 * the peer's advertised worker URL (`wss://` when it has TLS) at LINK_PATH, with the peer's link
 * key, which only nodes that can read the cluster's Redis know. A link carries messages both
 * ways: the node that accepted it answers over it too.
 *
 * A message no link can take now (none open yet, the peer unreachable, its backlog full, a frame
 * too large) goes over Redis instead: nothing waits for a link. A failed dial is retried on a
 * later send after a backoff (REDIAL_FIRST_MS doubling to REDIAL_MAX_MS). As with Redis pub/sub,
 * delivery is at most once: a call lost in a link that breaks is covered by the call's deadline,
 * and a node that dies by membership, which fails the calls pending on it.
 */
export class DirectBus implements Bus {
  private handler: BusHandler = () => undefined;
  /** The link used to send to each peer. */
  private readonly links = new Map<string, NodeLink>();
  /** Every socket of a link or a dial, for stop(). */
  private readonly sockets = new Set<WebSocket>();
  private readonly dials = new Map<string, Dial>();
  private readonly wss: WebSocketServer;
  private readonly maxFrameBytes: number;
  private stopped = false;
  /** Refused links are warned about once a minute per address: anyone can knock. */
  private readonly refusalLog = new LogLimiter();
  readonly counts: LinkCounts = { link: 0, redis: 0 };

  constructor(
    private readonly redis: RedisBus,
    private readonly options: DirectBusOptions,
  ) {
    this.maxFrameBytes = options.maxMessageBytes + LINK_FRAME_SLACK_BYTES;
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: this.maxFrameBytes,
    });
  }

  start(handler: BusHandler): Promise<void> {
    this.handler = handler;
    return this.redis.start(handler);
  }

  send(nodeId: string, message: BusMessage): Promise<void> {
    if (message.type !== 'invoke' && message.type !== 'result') return this.redis.send(nodeId, message);
    const link = this.links.get(nodeId);
    // Asked per message: a link a peer opened may come before membership has seen that peer.
    if (link?.send(message, readsSplit(this.options.peer(nodeId)))) {
      this.counts.link++;
      return RESOLVED;
    }
    if (!link) this.dial(nodeId);
    this.counts.redis++;
    return this.redis.send(nodeId, message);
  }

  broadcast(message: BusMessage): Promise<void> {
    return this.redis.broadcast(message);
  }

  /** Open links, by peer. */
  get linkCount(): number {
    return this.links.size;
  }

  /** An upgrade on LINK_PATH: another node opening its link to this one. */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.stopped) return rejectUpgrade(socket, 503, 'Service Unavailable');
    const query = new URL(req.url ?? '/', 'http://link').searchParams;
    const peer = query.get('node') ?? '';
    const auth = req.headers.authorization ?? '';
    const key = auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : '';
    if (peer === '' || peer === this.options.nodeId || !sameSecret(key, this.options.linkKey)) {
      const address = req.socket.remoteAddress ?? '';
      this.refusalLog.warn(
        this.options.logger,
        address,
        { peer: peer || undefined, address },
        'cluster link refused: wrong or missing link key',
      );
      return refuseUpgrade(socket, 401, ErrorCode.unauthorized, 'Cluster link refused: wrong or missing link key');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.adopt(peer, ws));
  }

  /** The peer is gone (membership): its link closes, and a node coming back under its id dials afresh. */
  dropPeer(nodeId: string): void {
    this.links.get(nodeId)?.socket.close(1001, 'node left the cluster');
    this.links.delete(nodeId);
    this.dials.delete(nodeId);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const socket of this.sockets) {
      if (socket.readyState === WebSocket.OPEN) socket.close(1001, 'node stopping');
      else socket.terminate();
    }
    this.links.clear();
    this.wss.close();
    await this.redis.stop();
    // A peer that does not answer the close handshake is cut off (the process must be able to exit).
    for (const socket of this.sockets) socket.terminate();
    this.sockets.clear();
  }

  /** Starts opening a link to `nodeId` unless one is on its way or the last attempt failed too recently. */
  private dial(nodeId: string): void {
    const state = this.dials.get(nodeId) ?? { connecting: false, failures: 0, retryAt: 0 };
    if (this.stopped || state.connecting || performance.now() < state.retryAt) return;
    const peer = this.options.peer(nodeId);
    if (peer?.url === undefined || peer.linkKey === undefined) return;
    state.connecting = true;
    this.dials.set(nodeId, state);
    const socket = new WebSocket(`${peer.url}${LINK_PATH}?node=${encodeURIComponent(this.options.nodeId)}`, {
      headers: { authorization: `Bearer ${peer.linkKey}` },
      perMessageDeflate: false,
      maxPayload: this.maxFrameBytes,
      handshakeTimeout: LINK_CONNECT_TIMEOUT_MS,
      ...(this.options.ca ? { ca: this.options.ca } : {}),
    });
    this.sockets.add(socket);
    const failed = (reason: string) => {
      if (!state.connecting) return;
      state.connecting = false;
      state.failures++;
      state.retryAt = performance.now() + Math.min(REDIAL_FIRST_MS * 2 ** (state.failures - 1), REDIAL_MAX_MS);
      this.sockets.delete(socket);
      socket.terminate();
      const log = state.failures === 1 ? this.options.logger.warn : this.options.logger.debug;
      log.call(
        this.options.logger,
        { peer: nodeId, url: peer.url, failures: state.failures },
        `cluster link not opened (${reason}): calls to this node go over Redis meanwhile`,
      );
    };
    socket.once('unexpected-response', (_request, response) =>
      failed(`the peer answered HTTP ${response.statusCode ?? '?'}`),
    );
    socket.once('error', (err) => failed(err.message));
    socket.once('close', () => failed('closed during the handshake'));
    socket.once('open', () => {
      state.connecting = false;
      state.failures = 0;
      this.sockets.delete(socket);
      if (this.stopped) return socket.terminate();
      this.adopt(nodeId, socket);
    });
  }

  /**
   * A link is open (dialed or accepted): the newest sends to `peer` (an older one may lead to a
   * previous incarnation of it), and every open one receives.
   */
  private adopt(peer: string, socket: WebSocket): void {
    const link = new NodeLink(socket, peer, this.maxFrameBytes);
    this.sockets.add(socket);
    this.links.set(peer, link);
    socket.on('message', (data: RawData, isBinary: boolean) => this.receive(data, isBinary, peer));
    socket.on('error', (err) => this.options.logger.debug({ err, peer }, 'cluster link error'));
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (this.links.get(peer) === link) this.links.delete(peer);
    });
  }

  private receive(data: RawData, isBinary: boolean, peer: string): void {
    let message: BusMessage;
    try {
      if (isBinary) throw new Error('binary frame');
      const frame = rawDataToBuffer(data);
      message = decodeSplitBusMessage(frame)?.message ?? (JSON.parse(frame.toString('utf8')) as BusMessage);
      if (message.type !== 'invoke' && message.type !== 'result')
        throw new Error(`unexpected message type ${String(message.type)}`);
    } catch (err) {
      this.options.logger.warn({ err, peer }, 'undecodable cluster link message dropped');
      return;
    }
    this.handler(message, peer);
  }
}

/** One open link: JSON text frames, the frames of one event-loop turn in one write. */
class NodeLink {
  private readonly cork: TickCork;

  constructor(
    readonly socket: WebSocket,
    readonly peer: string,
    private readonly maxFrameBytes: number,
  ) {
    this.cork = new TickCork(socket);
  }

  /** False when the link cannot take the message now: closing, backlogged, or the frame is too large. */
  /** `split`: the peer reads split frames (bus-codec.ts). */
  send(message: BusMessage, split: boolean): boolean {
    const socket = this.socket;
    if (socket.readyState !== WebSocket.OPEN || socket.bufferedAmount > LINK_BACKLOG_BYTES) return false;
    const frame = encodeBusMessage(message, undefined, split);
    // Characters are at most 3 bytes of UTF-8: measure only the frames that might be too large.
    if (frame.length * 3 > this.maxFrameBytes && Buffer.byteLength(frame) > this.maxFrameBytes) return false;
    this.cork.hold();
    if (typeof frame === 'string') socket.send(frame);
    else socket.send(frame, TEXT_FRAME);
    return true;
  }
}
