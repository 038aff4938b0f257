import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ClusterBus } from '../../src/config/types';
import { BUSES, sleep, startCluster, waitFor, type TestEngine } from '../support/engine';
import { RawClient } from '../support/raw-client';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * A call frame that crosses the drain's close frame: the draining node keeps it, and when the
 * worker reconnects to another node (reattach with its previous id and token), the call is handed
 * over and made there, so the caller, still waiting on it as iii-sdk does, gets its answer.
 */

let redis: TestRedis;
const engines: TestEngine[] = [];
const clients: RawClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

async function cluster(bus: ClusterBus): Promise<[TestEngine, TestEngine]> {
  const { nodes } = await startCluster(2, redis.url, { drainGraceMs: 10_000 }, bus);
  engines.push(...nodes);
  return [nodes[0], nodes[1]];
}

async function rawClient(url: string): Promise<RawClient> {
  const client = await RawClient.connect(url);
  clients.push(client);
  return client;
}

/** The TCP socket under a ws client: paused, it reads nothing (the close frame waits in the kernel). */
function tcp(client: RawClient): Socket {
  return (client.socket as unknown as { _socket: Socket })._socket;
}

describe.each(BUSES)('a call sent as the draining node closes the socket (%s bus)', (bus) => {
  it('is kept, handed to the node the worker reattaches to, and answered there under its own id', async () => {
    const [a, b] = await cluster(bus);
    const worker = b.worker('doubler');
    worker.registerFunction('math::double', async (input: { n: number }) => ({ doubled: input.n * 2 }));
    await waitFor(() => a.engine.registry.pool('math::double').length === 1, 'math::double mirrored on node a');

    const before = await rawClient(a.url);
    const { worker_id: previousId, reattach_token: token } = await before.registered();
    // The caller stops reading, the node starts draining and closes the idle socket; the caller,
    // not having seen the close yet, sends a call that crosses it.
    tcp(before).pause();
    const draining = a.engine.stop();
    await waitFor(() => a.engine.state === 'draining', 'node a draining');
    await sleep(50);
    const invocationId = randomUUID();
    before.send({ type: 'invokefunction', invocation_id: invocationId, function_id: 'math::double', data: { n: 21 } });
    tcp(before).resume();
    await before.waitClosed();

    // The SDK reconnects through the balancer to another node and reattaches first thing.
    const after = await rawClient(b.url);
    await after.registered();
    after.send({ type: 'reattach', previous_worker_id: previousId, reattach_token: token });
    const answer = await after.next((m) => m.type === 'invocationresult', 5000);
    expect(answer).toMatchObject({ invocation_id: invocationId, function_id: 'math::double', result: { doubled: 42 } });
    // Handed over, the drain has nothing left to wait for.
    await draining;
  });

  it('is not handed to a connection that presents the wrong reattach token', async () => {
    const [a, b] = await cluster(bus);
    b.worker('doubler').registerFunction('math::double', async (input: { n: number }) => ({ doubled: input.n * 2 }));
    await waitFor(() => a.engine.registry.pool('math::double').length === 1, 'math::double mirrored on node a');
    const before = await rawClient(a.url);
    const { worker_id: previousId } = await before.registered();
    tcp(before).pause();
    void a.engine.stop();
    await waitFor(() => a.engine.state === 'draining', 'node a draining');
    await sleep(50);
    before.send({ type: 'invokefunction', invocation_id: randomUUID(), function_id: 'math::double', data: { n: 1 } });
    tcp(before).resume();
    await before.waitClosed();

    const stranger = await rawClient(b.url);
    await stranger.registered();
    stranger.send({ type: 'reattach', previous_worker_id: previousId, reattach_token: 'not-the-token' });
    await expect(stranger.next((m) => m.type === 'invocationresult', 1500)).rejects.toThrow();
  });
});
