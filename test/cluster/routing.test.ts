import WebSocket from 'ws';
import { BUS_WIRE, SPLIT_MIN_CHARS } from '../../src/cluster/bus-codec';
import type { ClusterBus } from '../../src/config/types';
import type { HttpModule } from '../../src/modules/http';
import { BUSES, startCluster, waitFor, type TestEngine } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';

let redis: TestRedis;
const engines: TestEngine[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

/** Nodes of one cluster: same Redis, a key prefix of its own per test. */
async function cluster(count: number, bus: ClusterBus): Promise<TestEngine[]> {
  const { nodes } = await startCluster(count, redis.url, {}, bus);
  engines.push(...nodes);
  return nodes;
}

describe.each(BUSES)('calls across nodes (%s bus)', (bus) => {
  it('reaches a worker connected to another node', async () => {
    const [a, b] = await cluster(2, bus);
    const worker = b.worker('adder');
    worker.registerFunction('math::add', async (input: { a: number; b: number }) => ({ sum: input.a + input.b }));
    await waitFor(() => a.engine.registry.pool('math::add').length === 1, 'math::add mirrored on node 1');
    const caller = a.worker('caller');
    await expect(caller.trigger({ function_id: 'math::add', payload: { a: 2, b: 3 } })).resolves.toEqual({ sum: 5 });
  });

  it("counts and traces a cross-node call once, on the caller's node", async () => {
    const [a, b] = await cluster(2, bus);
    b.worker('adder').registerFunction('math::add', async (input: { a: number; b: number }) => ({
      sum: input.a + input.b,
    }));
    await waitFor(() => a.engine.registry.pool('math::add').length === 1, 'math::add mirrored on node 1');
    const caller = a.worker('caller');
    await expect(caller.trigger({ function_id: 'math::add', payload: { a: 2, b: 3 } })).resolves.toEqual({ sum: 5 });
    const calls = async (node: TestEngine) =>
      (await node.engine.metrics.invocations.get()).values
        .filter((v) => v.labels.function === 'math::add')
        .reduce((sum, v) => sum + v.value, 0);
    expect(await calls(a)).toBe(1);
    expect(await calls(b)).toBe(0);
    // engine::traces::list is served by each node for its own spans (local members are picked first).
    const spans = (client: typeof caller) =>
      client.trigger({ function_id: 'engine::traces::list', payload: { name: 'math::add' } });
    await expect(spans(caller)).resolves.toMatchObject({ total: 1 });
    await expect(spans(b.worker('tracer'))).resolves.toMatchObject({ total: 0 });
  });

  it('carries large payloads and results (sent as text, bus-codec.ts) unchanged, to workers, callers and HTTP', async () => {
    const [a, b] = await cluster(2, bus);
    const rows = Array.from({ length: 500 }, (_, i) => ({ id: i, name: `ünïcödé ${i} "quoted"\n`, tags: ['a', 'b'] }));
    const seen: unknown[] = [];
    const worker = b.worker('reports');
    worker.registerFunction('reports::total', async (input: { rows: typeof rows }) => {
      seen.push(input);
      return { count: input.rows.length, rows: input.rows.map((r) => ({ ...r, total: r.id * 2 })) };
    });
    worker.registerFunction('reports::http', async (req: { body: { rows: typeof rows } }) => ({
      status_code: 200,
      body: { count: req.body.rows.length, first: req.body.rows[0], echo: req.body.rows },
    }));
    worker.registerTrigger({
      type: 'http',
      function_id: 'reports::http',
      config: { api_path: '/reports', http_method: 'POST' },
    });
    await waitFor(() => a.engine.registry.pool('reports::http').length === 1, 'reports mirrored on node 1');
    // Node b reads split frames, so these payloads (over SPLIT_MIN_CHARS) go to it as text.
    // (Until membership has seen node b alive, node a sends it plain JSON, which works as well.)
    const wires = await waitFor(async () => {
      const members = await a.engine.cluster!.members();
      return members.length === 2 ? members.map((n) => n.wire) : undefined;
    }, 'node a sees node b alive');
    expect(wires).toEqual([BUS_WIRE, BUS_WIRE]);
    expect(JSON.stringify({ rows }).length).toBeGreaterThan(SPLIT_MIN_CHARS);
    const result = await a.worker('caller').trigger({ function_id: 'reports::total', payload: { rows } });
    expect(seen).toHaveLength(1);
    // The engine adds `_caller_worker_id` beside the caller's fields, as the original does.
    expect(seen[0]).toEqual({ rows, _caller_worker_id: expect.any(String) });
    expect(result).toEqual({ count: 500, rows: rows.map((r) => ({ ...r, total: r.id * 2 })) });

    const port = a.engine.module<HttpModule>('iii-http')!.port;
    const body = await waitFor(async () => {
      const response = await fetch(`http://127.0.0.1:${port}/reports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rows }),
      });
      return response.status === 200 ? await response.json() : undefined;
    }, 'the route on node a');
    expect(body).toEqual({ count: 500, first: rows[0], echo: rows });
  });

  it("returns the remote worker's error to the caller", async () => {
    const [a, b] = await cluster(2, bus);
    b.worker('failing').registerFunction('boom', async () => {
      throw new Error('kaput');
    });
    await waitFor(() => a.engine.registry.pool('boom').length === 1, 'boom mirrored');
    await expect(a.worker('caller').trigger({ function_id: 'boom', payload: {} })).rejects.toThrow(/kaput/);
  });

  it('fails a call pending on a node that stops, at once', async () => {
    const [a, b] = await cluster(2, bus);
    b.worker('slow').registerFunction('slow', () => new Promise(() => undefined));
    await waitFor(() => a.engine.registry.pool('slow').length === 1, 'slow mirrored');
    const call = a
      .worker('caller')
      .trigger({ function_id: 'slow', payload: {} })
      .then(
        () => new Error('the call should have failed'),
        (err: Error) => err,
      );
    await waitFor(() => a.engine.router.pending.size === 1, 'call pending on node 1');
    const started = Date.now();
    await b.close();
    engines.splice(engines.indexOf(b), 1);
    expect((await call).message).toMatch(/left the cluster|stopped/i);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(a.engine.registry.pool('slow')).toHaveLength(0);
  });

  it('lists the workers of the whole cluster', async () => {
    const [a, b] = await cluster(2, bus);
    b.worker('far-away').registerFunction('x', async () => 1);
    await waitFor(() => a.engine.registry.pool('x').length === 1, 'x mirrored');
    // The name arrives with the SDK's engine::workers::register call, after the registration.
    await waitFor(
      () => [...a.engine.registry.workers()].some((w) => w.name === 'far-away'),
      'far-away metadata mirrored',
    );
    const list = (await a.worker('lister').trigger({ function_id: 'engine::workers::list', payload: {} })) as {
      workers: { name?: string }[];
    };
    expect(list.workers.map((w) => w.name)).toContain('far-away');
  });

  it('hands a binding registered on one node to a trigger-type provider on another', async () => {
    const [a, b] = await cluster(2, bus);
    const active = new Map<string, { function_id: string; config: unknown }>();
    const removed: string[] = [];
    b.worker('provider').registerTriggerType(
      { id: 'webhook', description: 'Fires on webhooks' },
      {
        async registerTrigger(binding: { id: string; function_id: string; config: unknown }) {
          active.set(binding.id, binding);
        },
        async unregisterTrigger(binding: { id: string }) {
          removed.push(binding.id);
        },
      },
    );
    await waitFor(() => a.engine.registry.triggerType('webhook'), 'webhook type mirrored on node 1');
    const consumer = a.worker('consumer');
    const got: unknown[] = [];
    consumer.registerFunction('hooks::on', async (data: unknown) => void got.push(data));
    const trigger = consumer.registerTrigger({ type: 'webhook', function_id: 'hooks::on', config: { path: '/a' } });
    const binding = await waitFor(() => [...active.values()][0], 'the provider on node 2 to receive the binding');
    expect(binding).toMatchObject({ function_id: 'hooks::on', config: { path: '/a' } });
    expect(a.engine.registry.trigger([...active.keys()][0])?.state).toBe('live');
    trigger.unregister();
    await waitFor(() => removed.length === 1, 'the provider to be told of the removal');
  });

  it('delivers a publish on one node to subscribers on every node, once each', async () => {
    const [a, b, c] = await cluster(3, bus);
    const got: string[] = [];
    for (const [node, name] of [
      [b, 'sub-b'],
      [c, 'sub-c'],
    ] as const) {
      const worker = node.worker(name);
      worker.registerFunction(`${name}::on`, async (data: { n: number }) => void got.push(`${name}:${data.n}`));
      worker.registerTrigger({ type: 'subscribe', function_id: `${name}::on`, config: { topic: 'orders' } });
    }
    await waitFor(() => a.engine.registry.triggersOfType('subscribe').length === 2, 'both bindings mirrored on node 1');
    await a.worker('publisher').trigger({ function_id: 'publish', payload: { topic: 'orders', data: { n: 1 } } });
    await waitFor(() => got.length === 2, 'both subscribers called');
    await new Promise((r) => setTimeout(r, 200));
    expect(got.sort()).toEqual(['sub-b:1', 'sub-c:1']);
  });

  it('serves an HTTP route on every node, whichever node its worker is connected to', async () => {
    const [a, b] = await cluster(2, bus);
    const worker = b.worker('api');
    worker.registerFunction('users::get', async (req: { path_params: { id: string } }) => ({
      status_code: 200,
      body: { id: req.path_params.id },
    }));
    worker.registerTrigger({
      type: 'http',
      function_id: 'users::get',
      config: { api_path: '/users/:id', http_method: 'GET' },
    });
    for (const node of [a, b]) {
      const port = node.engine.module<HttpModule>('iii-http')!.port;
      const body = await waitFor(async () => {
        const response = await fetch(`http://127.0.0.1:${port}/users/42`);
        return response.status === 200 ? await response.json() : undefined;
      }, `the route on ${node.engine.nodeId}`);
      expect(body).toEqual({ id: '42' });
    }
  });

  it('relays data channels whose reader and writer sit on different nodes (an HTTP body and a streamed response)', async () => {
    const [a, b] = await cluster(2, bus);
    const worker = b.worker('echo-stream');
    worker.registerFunction(
      'echo::stream',
      async (req: {
        request_body: { readAll(): Promise<Buffer> };
        response: { sendMessage(m: string): void; stream: NodeJS.WritableStream };
      }) => {
        const body = await req.request_body.readAll();
        req.response.sendMessage(JSON.stringify({ type: 'set_headers', headers: { 'content-type': 'text/plain' } }));
        req.response.stream.write(Buffer.from('echo: '));
        req.response.stream.end(body);
        return null;
      },
    );
    worker.registerTrigger({
      type: 'http',
      function_id: 'echo::stream',
      config: { api_path: '/echo', http_method: 'POST' },
    });
    const port = a.engine.module<HttpModule>('iii-http')!.port;
    await waitFor(() => a.engine.registry.triggersOfType('http').length === 1, 'the route mirrored on node 1');
    // The request arrives at node 1, which makes the channels; the worker on node 2 reaches them through node 2.
    const response = await fetch(`http://127.0.0.1:${port}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'across nodes',
    });
    const text = await response.text();
    expect({ status: response.status, text }).toEqual({ status: 200, text: 'echo: across nodes' });
  });

  it('answers 404 for a relayed channel the owner does not know', async () => {
    const [a, b] = await cluster(2, bus);
    const ref = b.engine.channels.create();
    const status = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${a.url}/ws/channels/${ref.writer.channel_id}?key=wrong&dir=write`);
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('open', () => resolve(101));
      socket.on('error', () => undefined);
    });
    expect(status).toBe(404);
  });

  it('keeps a durable binding (engine::register_trigger) alive when the node it was made on leaves', async () => {
    const [a, b] = await cluster(2, bus);
    const api = a.worker('api');
    api.registerFunction('hello::get', async () => ({ status_code: 200, body: 'hello' }));
    await waitFor(() => b.engine.registry.pool('hello::get').length === 1, 'hello::get mirrored on node 2');
    const admin = b.worker('admin');
    await admin.trigger({
      function_id: 'engine::register_trigger',
      payload: { trigger_type: 'http', function_id: 'hello::get', config: { api_path: '/hello' } },
    });
    await b.close();
    engines.splice(engines.indexOf(b), 1);
    await waitFor(
      () => [...a.engine.registry.triggers()].find((t) => t.function_id === 'hello::get')?.nodeId === a.engine.nodeId,
      'node 1 adopted the binding',
    );
    const port = a.engine.module<HttpModule>('iii-http')!.port;
    const response = await fetch(`http://127.0.0.1:${port}/hello`);
    expect(await response.json()).toBe('hello');
  });
});
