import type { IIIClient } from 'iii-sdk';
import { BUSES, functionRegistered, sleep, startCluster, waitFor, type TestEngine } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';
import { call, failure, type Any } from '../support/calls';

/**
 * `configuration` on a cluster (its default store there is Redis): a value registered through
 * one node is read and set through every node, and each change fires its bindings once in the
 * whole cluster, wherever the bound worker is.
 */

/** How long a duplicate delivery would take at most to show up, in ms. */
const DUPLICATE_WINDOW_MS = 300;

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

async function bound(
  owner: TestEngine,
  others: TestEngine[],
  worker: IIIClient,
  functionId: string,
  config: unknown,
): Promise<Any[]> {
  const seen: Any[] = [];
  worker.registerFunction(functionId, async (payload: Any) => void seen.push(payload));
  await functionRegistered(owner.engine, functionId);
  worker.registerTrigger({ type: 'configuration', function_id: functionId, config });
  await waitFor(
    () =>
      [owner, ...others].every((t) =>
        t.engine.registry.triggersOfType('configuration', 'live').some((b) => b.function_id === functionId),
      ),
    `a live configuration binding for ${functionId} on every node`,
  );
  return seen;
}

describe.each(BUSES)('configuration in a cluster (%s bus)', (bus) => {
  test('registered on node 1, read and set on node 2; a change fires once cluster-wide', async () => {
    const { nodes } = await startCluster(3, redis.url, {}, bus);
    engines.push(...nodes);
    const [a, b, c] = nodes as [TestEngine, TestEngine, TestEngine];
    const owner = a.worker('owner');
    const reader = b.worker('reader');
    const watcher = c.worker('watcher');
    const seen = await bound(c, [a, b], watcher, 'cfg::watch', { configuration_id: 'shared' });

    await call(owner, 'configuration::register', {
      id: 'shared',
      name: 'Shared',
      schema: { type: 'integer', minimum: 0 },
      initial_value: 1,
    });
    expect(await call(reader, 'configuration::get', { id: 'shared' })).toEqual({ id: 'shared', value: 1 });
    expect(await call(reader, 'configuration::schema', { id: 'shared' })).toEqual({
      id: 'shared',
      name: 'Shared',
      description: '',
      schema: { type: 'integer', minimum: 0 },
    });
    expect((await failure(reader, 'configuration::set', { id: 'shared', value: -1 })).code).toBe('SCHEMA_INVALID');
    expect(await call(reader, 'configuration::set', { id: 'shared', value: 2 })).toEqual({
      old_value: 1,
      new_value: 2,
    });
    const ids = (await call(watcher, 'configuration::list', {})).configurations.map((e: Any) => e.id);
    expect(ids.filter((id: string) => !id.startsWith('iii-'))).toEqual(['shared']);

    await waitFor(() => seen.length >= 2, 'both change events');
    await sleep(DUPLICATE_WINDOW_MS);
    expect(seen.map((e) => [e.event_type, e.old_value, e.new_value])).toEqual([
      ['configuration:registered', null, 1],
      ['configuration:updated', 1, 2],
    ]);
  });
});
