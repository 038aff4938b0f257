import { randomUUID } from 'node:crypto';
import { Membership, type NodeInfo } from '../../src/cluster/membership';
import { RedisBus } from '../../src/cluster/redis-bus';
import { redisConnection } from '../../src/cluster/redis-connection';
import { RegistrySync } from '../../src/cluster/registry-sync';
import { silentLogger } from '../../src/observability/logger';
import { Registry } from '../../src/registry/registry';
import type { WorkerEntry } from '../../src/registry/types';
import { startRedis, type TestRedis } from '../support/redis';
import { waitFor } from '../support/engine';

interface Node {
  info: NodeInfo;
  registry: Registry;
  sync: RegistrySync;
  bus: RedisBus;
  stop(): Promise<void>;
}

let redis: TestRedis;
let prefix: string;
const nodes: Node[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(() => {
  prefix = `t${randomUUID().slice(0, 8)}:`;
});
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

async function node(nodeId: string): Promise<Node> {
  const info: NodeInfo = { nodeId, incarnation: randomUUID(), startedAtMs: Date.now() };
  const registry = new Registry();
  const bus = new RedisBus({ url: redis.url }, prefix, nodeId, silentLogger);
  const conn = redisConnection({ url: redis.url }, `test:${nodeId}`, silentLogger);
  await conn.connect();
  const sync = new RegistrySync(conn, prefix, registry, info, bus, silentLogger);
  await bus.start((message, from) => sync.onMessage(message, from));
  await sync.start();
  const n: Node = {
    info,
    registry,
    sync,
    bus,
    async stop() {
      await sync.stop();
      await bus.stop();
      conn.disconnect();
    },
  };
  nodes.push(n);
  return n;
}

function worker(id: string, nodeId: string): WorkerEntry {
  return { id, nodeId, kind: 'worker', runtime: 'node', connectedAtMs: 1 };
}

describe('registry sync over Redis', () => {
  it("mirrors a node's workers, functions and bindings on another node", async () => {
    const a = await node('a');
    const b = await node('b');
    a.registry.apply({ op: 'worker.put', worker: worker('w1', 'a') });
    a.registry.apply({ op: 'function.put', fn: { id: 'math::add', workerId: 'w1', nodeId: 'a' } });
    a.registry.apply({
      op: 'trigger.put',
      trigger: { id: 't1', trigger_type: 'http', function_id: 'math::add', config: {}, nodeId: 'a', state: 'live' },
    });
    await waitFor(() => b.registry.trigger('t1'), 'binding mirrored on b');
    expect(b.registry.pool('math::add').map((f) => f.workerId)).toEqual(['w1']);
    expect(b.registry.worker('w1')?.nodeId).toBe('a');

    a.registry.apply({ op: 'function.remove', id: 'math::add', workerId: 'w1' });
    await waitFor(() => b.registry.pool('math::add').length === 0, 'removal mirrored on b');
  });

  it('gives a node that starts later the full picture from the snapshot', async () => {
    const a = await node('a');
    a.registry.apply({ op: 'worker.put', worker: worker('w1', 'a') });
    a.registry.apply({ op: 'function.put', fn: { id: 'f', workerId: 'w1', nodeId: 'a' } });
    const b = await node('b');
    // b learns of a by a's next message or by an explicit reload (membership does this on `up`).
    await b.sync.reload('a');
    expect(b.registry.pool('f')).toHaveLength(1);
  });

  it('does not share entries of in-process modules', async () => {
    const a = await node('a');
    const b = await node('b');
    a.registry.apply({ op: 'worker.put', worker: { ...worker('iii-state@a', 'a'), kind: 'module' } });
    a.registry.apply({ op: 'function.put', fn: { id: 'state::get', workerId: 'iii-state@a', nodeId: 'a' } });
    a.registry.apply({ op: 'worker.put', worker: worker('w2', 'a') });
    await waitFor(() => b.registry.worker('w2'), 'w2 mirrored');
    expect(b.registry.worker('iii-state@a')).toBeUndefined();
    expect(b.registry.pool('state::get')).toHaveLength(0);
  });

  it('reloads the snapshot when it sees a version gap', async () => {
    const a = await node('a');
    const b = await node('b');
    a.registry.apply({ op: 'worker.put', worker: worker('w1', 'a') });
    await waitFor(() => b.registry.worker('w1'), 'w1 mirrored');
    // Lose one delta on the way: b stops listening while a changes, then hears the next one.
    b.bus['handler'] = () => undefined;
    a.registry.apply({ op: 'worker.put', worker: worker('w2', 'a') });
    await new Promise((r) => setTimeout(r, 100));
    b.bus['handler'] = (message, from) => b.sync.onMessage(message, from);
    a.registry.apply({ op: 'worker.put', worker: worker('w3', 'a') });
    await waitFor(() => b.registry.worker('w3') && b.registry.worker('w2'), 'gap repaired from the snapshot');
  });

  it("reads a peer's hash again when it was missing and the snapshot notice that followed was lost", async () => {
    const a = await node('a');
    const b = await node('b');
    a.registry.apply({ op: 'worker.put', worker: worker('w1', 'a') });
    await waitFor(() => b.registry.worker('w1'), 'w1 mirrored');
    // Redis restarted empty; b reloads a before a has rewritten its hash, and b is still
    // resubscribing when a's snapshot notice goes out.
    b.bus['handler'] = () => undefined;
    const admin = redisConnection({ url: redis.url }, 'test:admin', silentLogger);
    try {
      await admin.connect();
      await admin.del(`${prefix}registry:a`);
      await b.sync.reload('a');
      a.sync['dirty'] = true;
      a.registry.apply({ op: 'worker.put', worker: worker('w2', 'a') });
      await waitFor(async () => (await admin.hexists(`${prefix}registry:a`, 'meta')) === 1, 'a rewrote its hash');
    } finally {
      admin.disconnect();
    }
    b.bus['handler'] = (message, from) => b.sync.onMessage(message, from);
    await waitFor(() => b.registry.worker('w2'), 'the registration made meanwhile, from the hash read again', 3000);
  });

  it('removes every entry of a node that is gone', async () => {
    const a = await node('a');
    const b = await node('b');
    a.registry.apply({ op: 'worker.put', worker: worker('w1', 'a') });
    a.registry.apply({ op: 'function.put', fn: { id: 'f', workerId: 'w1', nodeId: 'a' } });
    await waitFor(() => b.registry.pool('f').length === 1, 'mirrored');
    b.sync.removeNode('a', false);
    expect(b.registry.pool('f')).toHaveLength(0);
    expect(b.registry.worker('w1')).toBeUndefined();
  });
});

describe('durable bindings of a lost node', () => {
  it('are adopted by one survivor, kept by the others, and the lost snapshot is deleted', async () => {
    const a = await node('a');
    const b = await node('b');
    const c = await node('c');
    a.registry.apply({ op: 'worker.put', worker: worker('w1', 'a') });
    a.registry.apply({
      op: 'trigger.put',
      trigger: {
        id: 'owned',
        trigger_type: 'http',
        function_id: 'f',
        config: {},
        ownerWorkerId: 'w1',
        nodeId: 'a',
        state: 'live',
      },
    });
    a.registry.apply({
      op: 'trigger.put',
      trigger: { id: 'durable', trigger_type: 'http', function_id: 'f', config: {}, nodeId: 'a', state: 'live' },
    });
    await waitFor(() => b.registry.trigger('durable') && c.registry.trigger('durable'), 'bindings mirrored');
    await a.stop();
    nodes.splice(nodes.indexOf(a), 1);
    b.sync.removeNode('a', true);
    c.sync.removeNode('a', false);
    expect(b.registry.trigger('owned')).toBeUndefined();
    expect(b.registry.trigger('durable')?.nodeId).toBe('b');
    await waitFor(() => c.registry.trigger('durable')?.nodeId === 'b', 'the adoption reaches the other survivor');
    expect(c.registry.trigger('owned')).toBeUndefined();
    const probe = redisConnection({ url: redis.url }, 'probe', silentLogger);
    await probe.connect();
    await waitFor(async () => (await probe.exists(`${prefix}registry:a`)) === 0, 'the lost snapshot deleted');
    probe.disconnect();
  });
});

describe('membership', () => {
  it('reports a node down once its heartbeat key expires, and up when it returns', async () => {
    const options = { heartbeatMs: 100, ttlMs: 300 };
    const self = (id: string): NodeInfo => ({ nodeId: id, incarnation: randomUUID(), startedAtMs: Date.now() });
    const a = new Membership({ url: redis.url }, prefix, self('a'), silentLogger, options);
    const b = new Membership({ url: redis.url }, prefix, self('b'), silentLogger, options);
    const events: string[] = [];
    a.on('up', (info: NodeInfo) => events.push(`up:${info.nodeId}`));
    a.on('down', (id: string) => events.push(`down:${id}`));
    await a.start();
    await b.start();
    await waitFor(() => events.includes('up:b'), 'b seen up');
    // A crash: b stops beating without leaving.
    clearInterval(b['timer']);
    b['redis'].disconnect();
    await waitFor(() => events.includes('down:b'), 'b seen down', 3000);
    const b2 = new Membership({ url: redis.url }, prefix, self('b'), silentLogger, options);
    await b2.start();
    await waitFor(() => events.filter((e) => e === 'up:b').length === 2, 'b seen up again');
    await Promise.all([a.stop(), b2.stop()]);
  });
});
