import { BUSES, startCluster, waitFor, type TestEngine } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';
import {
  currentOwner,
  expectCronTicks,
  expectHandled,
  handlersOf,
  liveBindings,
  makeEvents,
  REPLICA_TYPES,
  startReplicas,
} from '../support/replicas';

/**
 * Three replicas of one worker on three nodes of one cluster, one replica per node: every node
 * holds every binding (the registry mirror hands each to every node's providers), yet each cron
 * tick runs once cluster-wide and each message, state change and stream change, written through
 * any node, is handled once; `fan_out: true` gives every replica every event; a replica leaving
 * hands over to the others (docs/PROTOCOL.md, "Bindings of a pool").
 */

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

describe.each(BUSES)('events of a worker scaled to three replicas on three nodes (%s bus)', (bus) => {
  let nodes: TestEngine[] = [];
  beforeEach(async () => {
    ({ nodes } = await startCluster(3, redis.url, {}, bus));
  });
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    nodes = [];
  });

  it('each cron tick runs once cluster-wide, and each message, state change and stream change written on any node is handled once', async () => {
    const set = await startReplicas(nodes, 'replica-once', 3);
    const since = Date.now();
    const writers = nodes.map((n) => n.worker('writer'));
    const keys = await makeEvents(writers, set, 'once', 6);
    await expectHandled(set, keys, 1);
    await expectCronTicks(set, since, 3, 1);
  }, 40_000);

  it('with fan_out: true every replica, on its own node, handles every event', async () => {
    const set = await startReplicas(nodes, 'replica-fan', 3, { fan_out: true });
    const since = Date.now();
    const keys = await makeEvents(
      nodes.map((n) => n.worker('writer')),
      set,
      'fan',
      3,
    );
    await expectHandled(set, keys, 3);
    // Cron after its ticks are in: a replica's first tick may still be on its way here.
    await expectCronTicks(set, since, 3, 3);
    for (const type of REPLICA_TYPES)
      expect({ type, replicas: handlersOf(set, type) }).toEqual({ type, replicas: [0, 1, 2] });
  }, 40_000);

  it('when the replica holding the bindings shuts down, the replicas on the other nodes keep getting each event once', async () => {
    const set = await startReplicas(nodes, 'replica-leave', 3);
    const writers = nodes.map((n) => n.worker('writer'));
    await expectHandled(set, await makeEvents(writers, set, 'before', 3), 1);

    const leaving = currentOwner(nodes[0], set, 'cron');
    await set.clients[leaving].shutdown();
    for (const node of nodes) {
      await waitFor(
        () => REPLICA_TYPES.every((type) => liveBindings(node, set.functionIds[type]).length === 2),
        `the leaving replica's bindings gone on ${node.engine.nodeId}`,
        10_000,
      );
    }
    const since = Date.now();
    const from = Object.fromEntries(REPLICA_TYPES.map((type) => [type, set.handled[type].length]));

    await expectHandled(set, await makeEvents(writers, set, 'after', 6), 1);
    await expectCronTicks(set, since, 3, 1);
    for (const type of REPLICA_TYPES) expect(handlersOf(set, type, from[type])).not.toContain(leaving);
  }, 40_000);
});
