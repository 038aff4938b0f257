import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import type { ClusterBus } from '../config/types';
import type { Logger } from '../observability/logger';
import { EngineError, ErrorCode } from '../protocol/errors';
import type { ErrorBody, Json } from '../protocol/messages';
import type { Registry } from '../registry/registry';
import { copyJson } from '../protocol/json-text';
import type { CallOutcome, CallRequest, Router } from '../router/router';
import { channelPrefix } from './channel-relay';
import { Membership, type NodeInfo, type MembershipOptions, DEFAULT_MEMBERSHIP } from './membership';
import type { Bus } from './bus';
import { BUS_WIRE, readsSplit } from './bus-codec';
import { DirectBus, type LinkCounts } from './direct-bus';
import type { BusMessage } from './messages';
import { PeerQueries, type PeerAnswer, type Peers, type QueryHandler } from './peer-queries';
import { RedisBus } from './redis-bus';
import { openRedis, redisConnection, redisProblem } from './redis-connection';
import type { RedisEndpoint } from './redis-options';
import { RegistrySync } from './registry-sync';

export interface ClusterOptions {
  /** The cluster's Redis: URL, password and TLS (clusterRedis in redis-target.ts). */
  redis: RedisEndpoint;
  /** Prepended to every Redis key and channel, so several clusters can share one Redis. */
  keyPrefix: string;
  membership?: MembershipOptions;
  /** How calls and results travel between nodes (`cluster.bus`, default `redis`). */
  bus?: ClusterBus;
  /** The worker frame limit, which bounds a direct link's frames. */
  maxMessageBytes: number;
  /** CA certificates trusted when dialing another node's wss:// listener (direct links). */
  ca?: Buffer;
}

/**
 * Where the answers of trigger providers cross nodes (the engine's TriggerManager): a provider
 * here answering a binding made on another node, and answers coming back from other nodes.
 */
export interface RemoteTriggerResults {
  forwardResult: (nodeId: string, triggerId: string, error: ErrorBody | undefined) => void;
  resultFromPeer(triggerId: string, error: ErrorBody | undefined): void;
}

/**
 * This node's part in the cluster: it keeps the registry mirror in step with the other nodes
 * (RegistrySync), knows who is alive (Membership), carries calls to workers on other nodes and
 * answers the calls they send here (the bus).
 */
export class ClusterNode implements Peers {
  readonly self: NodeInfo;
  private readonly redis: Redis;
  private readonly bus: Bus;
  /** Set with `cluster.bus: direct`. */
  private readonly direct: DirectBus | undefined;
  private readonly membership: Membership;
  private readonly sync: RegistrySync;
  private readonly queries: PeerQueries;
  private started = false;
  /** A `reattach.claim` from `from` (set by the engine: it holds calls of closed sockets). */
  onReattachClaim: ((claim: Extract<BusMessage, { type: 'reattach.claim' }>, from: string) => void) | undefined;
  /** Told of each call another node routes here (set by the engine, for metrics). */
  onServe: ((from: string) => void) | undefined;
  /** Calls handed over by another node for a connection of this node (set by the engine). */
  onReattachCalls:
    ((workerId: string, calls: Extract<BusMessage, { type: 'reattach.calls' }>['calls']) => void) | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly router: Router,
    private readonly triggers: RemoteTriggerResults,
    nodeId: string,
    private readonly logger: Logger,
    options: ClusterOptions,
  ) {
    this.self = { nodeId, incarnation: randomUUID(), startedAtMs: Date.now(), wire: BUS_WIRE };
    this.redis = redisConnection(options.redis, `iii:${nodeId}:registry`, logger);
    const redisBus = new RedisBus(options.redis, options.keyPrefix, nodeId, logger, (peer) =>
      readsSplit(this.membership.node(peer)),
    );
    this.membership = new Membership(
      options.redis,
      options.keyPrefix,
      this.self,
      logger,
      options.membership ?? DEFAULT_MEMBERSHIP,
    );
    if (options.bus === 'direct') {
      this.self.linkKey = randomBytes(32).toString('hex');
      this.direct = new DirectBus(redisBus, {
        nodeId,
        linkKey: this.self.linkKey,
        peer: (peer) => this.membership.node(peer),
        maxMessageBytes: options.maxMessageBytes,
        logger,
        ...(options.ca ? { ca: options.ca } : {}),
      });
    }
    this.bus = this.direct ?? redisBus;
    // Registry news is broadcast: it always goes over Redis, in the order it was published.
    this.sync = new RegistrySync(this.redis, options.keyPrefix, registry, this.self, redisBus, logger);
    triggers.forwardResult = (node, triggerId, error) => {
      const message: BusMessage = error
        ? { type: 'trigger.result', triggerId, error }
        : { type: 'trigger.result', triggerId };
      this.bus
        .send(node, message)
        .catch((err: unknown) => logger.debug({ err, peer: node, trigger: triggerId }, 'trigger result not forwarded'));
    };
    this.queries = new PeerQueries({
      nodeId,
      send: (peer, message) => this.bus.send(peer, message),
      peers: () => this.membership.nodes().map((node) => node.nodeId),
      maxAnswerBytes: options.maxMessageBytes,
      logger,
    });
    this.membership.on('up', (info: NodeInfo) => void this.sync.reload(info.nodeId));
    this.membership.on('down', (nodeId: string) => this.nodeLost(nodeId));
    this.membership.on('judged', (alive: Set<string>) => this.sweepUnknownNodes(alive));
    // After a reconnect Redis may have lost everything (a restart): rewrite ours, reload theirs.
    this.redis.on('ready', () => {
      if (!this.started) return;
      void this.sync.publishSnapshot();
      for (const node of this.membership.nodes()) void this.sync.reload(node.nodeId);
    });
  }

  /**
   * The worker URL of the live node whose channel ids start with `prefix` (channel-relay.ts).
   * A node that joined after this node last looked is found in Redis's membership list.
   */
  async ownerUrl(prefix: string): Promise<string | undefined> {
    const owns = (node: NodeInfo) => channelPrefix(node.nodeId) === prefix;
    return (this.membership.nodes().find(owns) ?? (await this.membership.listed()).find(owns))?.url;
  }

  /**
   * An upgrade on the direct bus's link path: another node opening its link to this one. False
   * when this node's bus is `redis` (the listener answers 404).
   */
  acceptLink(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (!this.direct) return false;
    this.direct.accept(req, socket, head);
    return true;
  }

  /** With `cluster.bus: direct`: open links and the calls and results sent over links and over Redis. */
  get links(): (LinkCounts & { open: number }) | undefined {
    return this.direct ? { ...this.direct.counts, open: this.direct.linkCount } : undefined;
  }

  /**
   * This node, then every other node believed alive as it last described itself in Redis (its
   * drain state is written there on each heartbeat); what membership knew when Redis does not answer.
   */
  async members(): Promise<NodeInfo[]> {
    const alive = this.membership.nodes();
    const listed = await this.membership.listed().catch(() => [] as NodeInfo[]);
    const fresh = new Map(listed.map((info) => [info.nodeId, info]));
    return [
      this.self,
      ...alive.map((info) =>
        fresh.get(info.nodeId)?.incarnation === info.incarnation ? fresh.get(info.nodeId)! : info,
      ),
    ];
  }

  /** From the start of the drain: the other nodes read `state: draining` at the next heartbeat. */
  markDraining(): void {
    this.self.state = 'draining';
  }

  /** Sends a call to another node's inbox. */
  send(nodeId: string, message: BusMessage): Promise<void> {
    return this.bus.send(nodeId, message);
  }

  /** Sends a message to every other node. */
  broadcast(message: BusMessage): Promise<void> {
    return this.bus.broadcast(message);
  }

  /** Serves query `name` for the other nodes (peer-queries.ts). */
  answer(name: string, handler: QueryHandler): void {
    this.queries.answer(name, handler);
  }

  /** Asks every live peer: one entry per peer, its result or why there is none (never a hang). */
  askAll(name: string, input: Json, timeoutMs?: number): Promise<PeerAnswer[]> {
    return this.queries.askAll(name, input, timeoutMs);
  }

  /** `askAll`s waiting for answers now. */
  get pendingQueries(): number {
    return this.queries.pendingCount;
  }

  /** Redis answers and this node's heartbeat gets through. */
  get ready(): boolean {
    return this.membership.reachable && this.redis.status === 'ready';
  }

  /** The nodes membership sees alive, this one included. */
  get nodeCount(): number {
    return this.membership.nodes().filter((n) => n.nodeId !== this.self.nodeId).length + 1;
  }

  /** Why Redis is not answering, in words (a refused password, an untrusted certificate...), if known. */
  get redisProblem(): string | undefined {
    return redisProblem(this.redis) ?? this.membership.redisProblem;
  }

  /** Starts taking part; `url` is where the other nodes reach this node's worker port. */
  async start(url: string): Promise<void> {
    this.self.url = url;
    await openRedis(this.redis, 'cluster');
    await this.bus.start((message, from) => this.receive(message, from));
    // Alive before anything is published: a node whose entries others see is never judged gone.
    await this.membership.start();
    await this.sync.start();
    this.started = true;
  }

  /** Tells the others this node is leaving, so they need not wait for its heartbeat to expire. */
  async stop(): Promise<void> {
    this.started = false;
    this.queries.stop();
    // Changes still on their way go first, so the others adopt this node's latest bindings.
    await this.sync.stop();
    await this.bus.broadcast({ type: 'leaving' }).catch(() => undefined);
    await this.membership.stop();
    await this.bus.stop();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private receive(message: BusMessage, from: string): void {
    switch (message.type) {
      case 'invoke':
        this.serve(message, from);
        return;
      case 'result': {
        if (message.error) {
          this.router.pending.reject(
            message.id,
            new EngineError(message.error.code, message.error.message, message.error.stacktrace),
          );
          return;
        }
        // The result stays the text it came as, for the caller's frame (protocol/json-text.ts).
        const outcome: CallOutcome = {};
        copyJson(message, outcome, 'result');
        this.router.pending.resolve(message.id, outcome);
        return;
      }
      case 'delta':
      case 'snapshot':
      case 'snapshot.request':
        this.sync.onMessage(message, from);
        return;
      case 'leaving':
        // A node not yet seen alive by membership has no `down` coming: forget it directly.
        if (!this.membership.lose(from, 'drained')) this.nodeLost(from);
        return;
      case 'trigger.result':
        this.triggers.resultFromPeer(message.triggerId, message.error);
        return;
      case 'reattach.claim':
        this.onReattachClaim?.(message, from);
        return;
      case 'reattach.calls':
        this.onReattachCalls?.(message.workerId, message.calls);
        return;
      case 'query':
      case 'query.result':
        this.queries.receive(message, from);
        return;
    }
  }

  private serve(message: Extract<BusMessage, { type: 'invoke' }>, from: string): void {
    this.onServe?.(from);
    // The data stays the text it came as, for the worker's frame (protocol/json-text.ts).
    const request = {
      functionId: message.functionId,
      timeoutMs: message.timeoutMs,
      ...optional(message),
    } as CallRequest;
    copyJson(message, request, 'data');
    const reply = (answer: BusMessage) =>
      this.bus
        .send(from, answer)
        .catch((err: unknown) =>
          this.logger.warn({ err, peer: from, invocation: message.id }, 'could not return a result to its node'),
        );
    this.router.invokeLocal(message.workerId, request, from).then(
      (outcome) => (message.void ? undefined : reply(resultMessage(message.id, outcome))),
      (err: unknown) =>
        message.void ? undefined : reply({ type: 'result', id: message.id, error: EngineError.from(err).toBody() }),
    );
  }

  /**
   * Entries of a node that is not alive (it died before membership ever saw it, or its `down`
   * was missed during an outage) leave the mirror too.
   */
  private sweepUnknownNodes(alive: Set<string>): void {
    const owners = new Set<string>();
    for (const worker of this.registry.workers()) owners.add(worker.nodeId);
    for (const trigger of this.registry.triggers()) owners.add(trigger.nodeId);
    for (const nodeId of owners) if (nodeId !== this.self.nodeId && !alive.has(nodeId)) this.nodeLost(nodeId);
  }

  /** A node is gone: the calls waiting on its workers fail now, its entries leave the mirror. */
  private nodeLost(nodeId: string): void {
    this.direct?.dropPeer(nodeId);
    this.queries.nodeLost(nodeId);
    const lost = () =>
      new EngineError(ErrorCode.invocationStopped, `Node ${nodeId} left the cluster while the call was running`);
    for (const worker of this.registry.entriesOfNode(nodeId).workers) this.router.pending.rejectWorker(worker.id, lost);
    // The alive node with the smallest id adopts the lost node's durable bindings.
    const alive = [this.self.nodeId, ...this.membership.nodes().map((node) => node.nodeId)].sort();
    this.sync.removeNode(nodeId, alive[0] === this.self.nodeId);
  }
}

/** The answer to a call served here; a result held as text stays text. */
function resultMessage(id: string, outcome: CallOutcome): BusMessage {
  const message: BusMessage = { type: 'result', id };
  copyJson(outcome, message, 'result');
  return message;
}

/** The optional parts of a call, copied only when present (exactOptionalPropertyTypes-safe). */
function optional(
  message: Extract<BusMessage, { type: 'invoke' }>,
): Pick<CallRequest, 'metadata' | 'traceparent' | 'baggage'> {
  const out: Pick<CallRequest, 'metadata' | 'traceparent' | 'baggage'> = {};
  if (message.metadata !== undefined) out.metadata = message.metadata;
  if (message.traceparent !== undefined) out.traceparent = message.traceparent;
  if (message.baggage !== undefined) out.baggage = message.baggage;
  return out;
}
