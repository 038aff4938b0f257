import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { RawClient } from '../support/raw-client';
import { functionRegistered, startEngine, waitFor, type TestEngine } from '../support/engine';

describe('worker connection lifecycle', () => {
  let t: TestEngine;
  const children: ChildProcess[] = [];
  beforeEach(async () => {
    t = await startEngine();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    await t.close();
  });

  test('a worker killed -9 during a call fails the caller at once with invocation_stopped', async () => {
    const child = spawn(process.execPath, [path.join(__dirname, '../support/workers/hang-worker.js'), t.url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await functionRegistered(t.engine, 'hang::forever');
    const caller = t.worker('caller');
    const call = caller.trigger({ function_id: 'hang::forever', payload: {} }).catch((e: unknown) => e);
    await waitFor(() => out.includes('CALLED'), 'the call to reach the child worker');
    const killedAt = Date.now();
    child.kill('SIGKILL');
    const err = await call;
    expect(err).toMatchObject({ code: 'invocation_stopped' });
    expect(Date.now() - killedAt).toBeLessThan(2000);
    expect(t.engine.registry.pool('hang::forever')).toHaveLength(0);
    expect(t.engine.router.pending.size).toBe(0);
  });

  test('workerregistered is the first frame, with a worker id and a reattach token', async () => {
    const raw = await RawClient.connect(t.url);
    const first = await raw.next(() => true);
    expect(first).toEqual({
      type: 'workerregistered',
      worker_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      reattach_token: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    raw.close();
  });

  test('reattach with the right token retires the previous connection before the replay', async () => {
    const old = await RawClient.connect(t.url);
    const { worker_id, reattach_token } = await old.registered();
    old.send({ type: 'registerfunction', id: 'svc::f' });
    await functionRegistered(t.engine, 'svc::f');

    const fresh = await RawClient.connect(t.url);
    const freshId = (await fresh.registered()).worker_id;
    fresh.send({ type: 'reattach', previous_worker_id: worker_id, reattach_token });
    fresh.send({ type: 'registerfunction', id: 'svc::f' });
    await old.waitClosed();
    await waitFor(
      () => t.engine.registry.pool('svc::f').length === 1 && t.engine.registry.pool('svc::f')[0].workerId === freshId,
      'only the new connection to serve svc::f',
    );
    expect(t.engine.registry.worker(worker_id)).toBeUndefined();
    fresh.close();
  });

  test('reattach with a wrong token is ignored', async () => {
    const old = await RawClient.connect(t.url);
    const { worker_id } = await old.registered();
    old.send({ type: 'registerfunction', id: 'svc::g' });
    await functionRegistered(t.engine, 'svc::g');
    const intruder = await RawClient.connect(t.url);
    await intruder.registered();
    intruder.send({
      type: 'reattach',
      previous_worker_id: worker_id,
      reattach_token: '00000000-0000-4000-8000-000000000000',
    });
    intruder.send({ type: 'ping' });
    await intruder.next((m) => m.type === 'pong');
    expect(old.closed).toBeUndefined();
    expect(t.engine.registry.worker(worker_id)).toBeDefined();
    old.close();
    intruder.close();
  });

  test('an SDK worker whose socket drops reconnects, replays and is callable again', async () => {
    const server = t.worker('server', { reconnectionConfig: { initialDelayMs: 50, maxDelayMs: 200 } });
    server.registerFunction('echo::again', async (data: unknown) => data);
    await functionRegistered(t.engine, 'echo::again');
    const firstId = t.engine.registry.pool('echo::again')[0].workerId;
    t.engine.session(firstId)!.connection.socket.terminate();
    await waitFor(() => {
      const pool = t.engine.registry.pool('echo::again');
      return pool.length === 1 && pool[0].workerId !== firstId;
    }, 'the reconnected worker to register again');
    const caller = t.worker('caller');
    await expect(caller.trigger({ function_id: 'echo::again', payload: { v: 1 } })).resolves.toMatchObject({ v: 1 });
  });
});
