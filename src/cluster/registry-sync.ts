import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger';
import type { Registry } from '../registry/registry';
import type { RegistryDelta, RegistryEntry } from '../registry/types';
import type { Bus } from './bus';
import type { NodeInfo } from './membership';
import type { BusMessage } from './messages';
import { hashChange, snapshotDeltas } from './snapshot';

/** The hash field holding `{incarnation, version}` next to a node's entries. */
const META_FIELD = 'meta';
/**
 * A peer's hash is not written yet (it is starting, or Redis just restarted and it has not
 * rewritten it): its snapshot notice should come, but a notice sent while this node was
 * resubscribing is lost, so the hash is read again this often, at most RELOAD_RETRIES times.
 */
const RELOAD_RETRY_MS = 500;
const RELOAD_RETRIES = 20;

interface Peer {
  incarnation: string;
  version: number;
  /** Deltas that arrived while the snapshot was loading, replayed after it. */
  buffered?: Extract<BusMessage, { type: 'delta' }>[];
}

type DeltaMessage = Extract<BusMessage, { type: 'delta' }>;

/**
 * Keeps every node's registry mirror complete. Each node is the only writer of its own entries:
 * it keeps them in the Redis hash `registry:<node>` (a snapshot) and broadcasts each change as a
 * delta numbered per incarnation. A receiver applies deltas in order; on a gap, an unknown
 * incarnation or a `snapshot` notice it reloads that node's hash. After Redis lost its data (a
 * restart), each node rewrites its own hash from memory and says so.
 *
 * Module entries (functions and trigger types of in-process modules) are not shared: every node
 * runs the same modules itself.
 */
export class RegistrySync {
  private version = 0;
  /** A write failed: the next one rewrites the whole hash. */
  private dirty = false;
  private readonly peers = new Map<string, Peer>();
  /** Writes of this node's hash, in version order. */
  private writes: Promise<void> = Promise.resolve();
  /** Peers whose hash was missing, with the retry timer and the attempts made. */
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; attempts: number }>();
  private stopped = false;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly registry: Registry,
    private readonly self: NodeInfo,
    private readonly bus: Bus,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.registry.on('delta', this.onLocalDelta);
    await this.publishSnapshot();
  }

  /** Stops publishing, after the changes already made have reached Redis and the others. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.registry.off('delta', this.onLocalDelta);
    for (const nodeId of [...this.retries.keys()]) this.cancelRetry(nodeId);
    await this.writes;
  }

  /** Rewrites this node's whole hash (at start, after a Redis restart) and tells the others. */
  publishSnapshot(): Promise<void> {
    this.writes = this.writes.then(() => this.writeSnapshot()).catch((err: unknown) => this.failed(err));
    return this.writes;
  }

  private async writeSnapshot(): Promise<void> {
    const fields: Record<string, string> = { [META_FIELD]: this.meta(this.version) };
    const own = this.registry.entriesOfNode(this.self.nodeId);
    const puts: [RegistryDelta, RegistryEntry][] = [
      ...own.workers.map((worker) => [{ op: 'worker.put', worker }, worker] as [RegistryDelta, RegistryEntry]),
      ...own.functions.map((fn) => [{ op: 'function.put', fn }, fn] as [RegistryDelta, RegistryEntry]),
      ...own.triggerTypes.map((type) => [{ op: 'triggertype.put', type }, type] as [RegistryDelta, RegistryEntry]),
      ...own.triggers.map((trigger) => [{ op: 'trigger.put', trigger }, trigger] as [RegistryDelta, RegistryEntry]),
    ];
    for (const [delta, entry] of puts) {
      if (!this.isShared(entry)) continue;
      const change = hashChange(delta, entry);
      fields[change.field] = change.value!;
    }
    await this.redis.multi().del(this.hashKey(this.self.nodeId)).hset(this.hashKey(this.self.nodeId), fields).exec();
    this.dirty = false;
    await this.bus.broadcast({ type: 'snapshot', incarnation: this.self.incarnation, version: this.version });
  }

  /**
   * Redis did not take a write: the peers will miss a version, see the gap and reload, so the
   * hash must be rewritten whole before the next delta counts.
   */
  private failed(err: unknown): void {
    this.dirty = true;
    this.logger.debug({ err }, 'registry change not written to Redis; the snapshot will be rewritten');
  }

  /** A registry message from another node. */
  onMessage(message: BusMessage, from: string): void {
    if (message.type === 'snapshot') {
      void this.reload(from);
      return;
    }
    if (message.type === 'snapshot.request') {
      void this.publishSnapshot();
      return;
    }
    if (message.type !== 'delta') return;
    const peer = this.peers.get(from);
    if (peer?.buffered) {
      peer.buffered.push(message);
      return;
    }
    if (!peer || peer.incarnation !== message.incarnation || message.version > peer.version + 1) {
      void this.reload(from, message);
      return;
    }
    if (message.version === peer.version + 1) {
      peer.version = message.version;
      this.registry.apply(message.delta);
    }
  }

  /**
   * A node is gone: its entries leave the mirror (calls pending on it are failed elsewhere).
   * Its durable bindings (no owning worker: `engine::register_trigger`) are not lost: the
   * adopting node takes them over as its own, and the others keep them until its delta arrives.
   */
  removeNode(nodeId: string, adopter: boolean): void {
    this.peers.delete(nodeId);
    this.cancelRetry(nodeId);
    const entries = this.registry.entriesOfNode(nodeId);
    for (const t of entries.triggers) {
      if (t.ownerWorkerId !== undefined) this.registry.apply({ op: 'trigger.remove', id: t.id });
      else if (adopter) this.registry.apply({ op: 'trigger.put', trigger: { ...t, nodeId: this.self.nodeId } });
    }
    // The adopter also drops the lost node's snapshot, so retired node ids leave nothing behind.
    if (adopter)
      this.redis
        .del(this.hashKey(nodeId))
        .catch((err: unknown) => this.logger.debug({ err, peer: nodeId }, 'could not delete a lost node snapshot'));
    for (const t of entries.triggerTypes)
      this.registry.apply({ op: 'triggertype.remove', id: t.id, workerId: t.workerId });
    for (const f of entries.functions) this.registry.apply({ op: 'function.remove', id: f.id, workerId: f.workerId });
    for (const w of entries.workers) this.registry.apply({ op: 'worker.remove', workerId: w.id });
  }

  /** Loads a node's hash into the mirror, changing only what differs, then replays what arrived meanwhile. */
  async reload(nodeId: string, first?: DeltaMessage): Promise<void> {
    const existing = this.peers.get(nodeId);
    if (existing?.buffered) {
      if (first) existing.buffered.push(first);
      return;
    }
    const peer: Peer = {
      incarnation: existing?.incarnation ?? '',
      version: existing?.version ?? 0,
      buffered: first ? [first] : [],
    };
    this.peers.set(nodeId, peer);
    let hash: Record<string, string>;
    try {
      hash = await this.redis.hgetall(this.hashKey(nodeId));
    } catch (err) {
      // Redis mid-failover: retry shortly (and on the peer's next message); the peer may have
      // nothing more to say for a long time.
      this.logger.warn({ err, peer: nodeId }, 'could not load a node registry snapshot; retrying');
      this.peers.delete(nodeId);
      this.retryLater(nodeId);
      return;
    }
    const metaText = hash[META_FIELD];
    delete hash[META_FIELD];
    const buffered = peer.buffered ?? [];
    delete peer.buffered;
    if (metaText === undefined) {
      this.peers.delete(nodeId);
      // The peer may not know its hash is gone: when Redis was out long enough for this node to
      // judge it lost (a failover takes seconds), this node deleted it as the adopter, after the
      // peer had rewritten it on reconnecting. Ask for it; the retry reads it when written.
      if (!this.stopped) {
        this.bus
          .send(nodeId, { type: 'snapshot.request' })
          .catch((err: unknown) =>
            this.logger.debug({ err, peer: nodeId }, 'could not ask a node for its registry snapshot'),
          );
      }
      this.retryLater(nodeId);
      return;
    }
    this.cancelRetry(nodeId);
    const meta = JSON.parse(metaText) as { incarnation: string; version: number };
    peer.incarnation = meta.incarnation;
    peer.version = meta.version;
    this.replace(nodeId, snapshotDeltas(hash));
    for (const message of buffered) this.onMessage(message, nodeId);
  }

  private retryLater(nodeId: string): void {
    const attempts = (this.retries.get(nodeId)?.attempts ?? 0) + 1;
    this.cancelRetry(nodeId);
    if (this.stopped || attempts > RELOAD_RETRIES) return;
    const timer = setTimeout(() => {
      if (!this.peers.has(nodeId)) void this.reload(nodeId);
    }, RELOAD_RETRY_MS);
    timer.unref();
    this.retries.set(nodeId, { timer, attempts });
  }

  private cancelRetry(nodeId: string): void {
    const retry = this.retries.get(nodeId);
    if (!retry) return;
    clearTimeout(retry.timer);
    this.retries.delete(nodeId);
  }

  private replace(nodeId: string, deltas: RegistryDelta[]): void {
    const wanted = new Map<string, string>();
    for (const delta of deltas) {
      const entry = putEntry(delta);
      wanted.set(hashChange(delta, entry).field, JSON.stringify(entry));
    }
    const current = this.registry.entriesOfNode(nodeId);
    const removals: RegistryDelta[] = [
      ...current.triggers.map((t): RegistryDelta => ({ op: 'trigger.remove', id: t.id })),
      ...current.triggerTypes.map((t): RegistryDelta => ({ op: 'triggertype.remove', id: t.id, workerId: t.workerId })),
      ...current.functions.map((f): RegistryDelta => ({ op: 'function.remove', id: f.id, workerId: f.workerId })),
      ...current.workers.map((w): RegistryDelta => ({ op: 'worker.remove', workerId: w.id })),
    ];
    const existing = new Map<string, string>();
    for (const removal of removals) {
      const entry = this.entryOf(removal);
      if (!entry) continue;
      const field = hashChange(removal, entry).field;
      existing.set(field, JSON.stringify(entry));
      if (!wanted.has(field)) this.registry.apply(removal);
    }
    for (const delta of deltas) {
      const entry = putEntry(delta);
      const field = hashChange(delta, entry).field;
      if (existing.get(field) !== wanted.get(field)) this.registry.apply(delta);
    }
  }

  private entryOf(removal: RegistryDelta): RegistryEntry | undefined {
    switch (removal.op) {
      case 'trigger.remove':
        return this.registry.trigger(removal.id);
      case 'triggertype.remove':
        return this.registry.triggerType(removal.id);
      case 'function.remove':
        return this.registry.pool(removal.id).find((f) => f.workerId === removal.workerId);
      case 'worker.remove':
        return this.registry.worker(removal.workerId);
      default:
        return undefined;
    }
  }

  private readonly onLocalDelta = (delta: RegistryDelta, entry: RegistryEntry): void => {
    if (entry.nodeId !== this.self.nodeId || !this.isShared(entry)) return;
    const version = ++this.version;
    const change = hashChange(delta, entry);
    this.writes = this.writes
      .then(async () => {
        if (this.dirty) return this.writeSnapshot();
        const key = this.hashKey(this.self.nodeId);
        const tx = this.redis.multi();
        if (change.value === undefined) tx.hdel(key, change.field);
        else tx.hset(key, change.field, change.value);
        await tx.hset(key, META_FIELD, this.meta(version)).exec();
        await this.bus.broadcast({ type: 'delta', incarnation: this.self.incarnation, version, delta });
      })
      .catch((err: unknown) => this.failed(err));
  };

  /** Entries of in-process modules stay on their node; everything else is the cluster's. */
  private isShared(entry: RegistryEntry): boolean {
    if ('kind' in entry) return entry.kind === 'worker';
    if ('trigger_type' in entry) return true;
    return this.registry.worker(entry.workerId)?.kind !== 'module';
  }

  private meta(version: number): string {
    return JSON.stringify({ incarnation: this.self.incarnation, version });
  }

  private hashKey(nodeId: string): string {
    return `${this.prefix}registry:${nodeId}`;
  }
}

function putEntry(delta: RegistryDelta): RegistryEntry {
  switch (delta.op) {
    case 'worker.put':
      return delta.worker;
    case 'function.put':
      return delta.fn;
    case 'triggertype.put':
      return delta.type;
    case 'trigger.put':
      return delta.trigger;
    default:
      throw new Error(`not a put: ${delta.op}`);
  }
}
