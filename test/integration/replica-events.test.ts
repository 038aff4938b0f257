import { failure } from '../support/calls';
import { startEngine, waitFor, type TestEngine } from '../support/engine';
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
 * Three replicas of one worker on one engine (a pool of three): their `cron`, `subscribe`,
 * `state` and `stream` bindings, alike but for the random ids the SDK gives them, fire once per
 * event, on any member; `fan_out: true` fires every replica's binding; a replica leaving hands
 * its bindings' events over to the others, still once (docs/PROTOCOL.md, "Bindings of a pool").
 */

describe('events of a worker scaled to three replicas on one engine', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine();
  });
  afterEach(async () => {
    await t.close();
  });

  it('each cron tick, message, state change and stream change is handled once across the three', async () => {
    const set = await startReplicas([t], 'replica-once', 3);
    const since = Date.now();
    const writer = t.worker('writer');
    const keys = await makeEvents([writer], set, 'once', 6);
    await expectHandled(set, keys, 1);
    await expectCronTicks(set, since, 3, 1);
  }, 30_000);

  it('with fan_out: true every replica handles every event', async () => {
    const set = await startReplicas([t], 'replica-fan', 3, { fan_out: true });
    const since = Date.now();
    const keys = await makeEvents([t.worker('writer')], set, 'fan', 4);
    await expectHandled(set, keys, 3);
    for (const type of REPLICA_TYPES)
      expect({ type, replicas: handlersOf(set, type) }).toEqual({ type, replicas: [0, 1, 2] });
    await expectCronTicks(set, since, 3, 3);
  }, 30_000);

  it('when the replica holding the bindings shuts down, the other two keep getting each event once', async () => {
    const set = await startReplicas([t], 'replica-leave', 3);
    const writer = t.worker('writer');
    await expectHandled(set, await makeEvents([writer], set, 'before', 3), 1);

    const leaving = currentOwner(t, set, 'cron');
    await set.clients[leaving].shutdown();
    await waitFor(
      () => REPLICA_TYPES.every((type) => liveBindings(t, set.functionIds[type]).length === 2),
      "the leaving replica's bindings gone",
    );
    const since = Date.now();
    const from = Object.fromEntries(REPLICA_TYPES.map((type) => [type, set.handled[type].length]));

    await expectHandled(set, await makeEvents([writer], set, 'after', 6), 1);
    await expectCronTicks(set, since, 3, 1);
    for (const type of REPLICA_TYPES) expect(handlersOf(set, type, from[type])).not.toContain(leaving);
  }, 30_000);

  it.each(REPLICA_TYPES)('a %s binding whose fan_out is not a boolean is refused', async (type) => {
    const err = await failure(t.worker('binder'), 'engine::register_trigger', {
      trigger_type: type,
      function_id: 'any::fn',
      config: { fan_out: 'yes' },
    });
    expect(err.code).toBe('trigger_registration_failed');
    expect(err.message).toMatch(/`fan_out` in a trigger config must be true/);
  });
});
