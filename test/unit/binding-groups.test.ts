import { bindingCall, bindingGroupKey, BindingGroups } from '../../src/engine/binding-groups';
import type { TriggerProvider } from '../../src/engine/triggers';
import { Registry } from '../../src/registry/registry';
import type { TriggerEntry } from '../../src/registry/types';

/** Binding groups (docs/PROTOCOL.md, "Bindings of a pool"): which binding a provider holds. */

function binding(id: string, overrides: Partial<TriggerEntry> = {}): TriggerEntry {
  return {
    id,
    trigger_type: 'cron',
    function_id: 'jobs::tick',
    config: { expression: '* * * * * *' },
    nodeId: 'n1',
    state: 'live',
    ...overrides,
  };
}

/** A provider recording what it holds; it refuses configs with `refuse: true`. */
function recordingProvider(): TriggerProvider & { held: string[]; calls: string[] } {
  const held: string[] = [];
  const calls: string[] = [];
  return {
    held,
    calls,
    registerTrigger(trigger) {
      if ((trigger.config as { refuse?: boolean }).refuse) throw new Error('refused');
      calls.push(`+${trigger.id}`);
      held.push(trigger.id);
    },
    unregisterTrigger(trigger) {
      calls.push(`-${trigger.id}`);
      held.splice(held.indexOf(trigger.id), 1);
    },
  };
}

describe('bindingGroupKey', () => {
  test('equal for bindings that differ only in id, config key order and fan_out: false', () => {
    const a = bindingGroupKey(
      binding('a', {
        config: { expression: '* * * * * *', condition_function_id: 'c' },
        metadata: { x: 1, y: [1, { z: 2 }] },
      }),
    );
    const b = bindingGroupKey(
      binding('b', {
        config: { condition_function_id: 'c', fan_out: false, expression: '* * * * * *' },
        metadata: { y: [1, { z: 2 }], x: 1 },
      }),
    );
    expect(a).toBe(b);
    expect(a).toMatch(/^group-[0-9a-f]{32}$/);
  });

  test('differs by trigger type, function, config and metadata', () => {
    const base = bindingGroupKey(binding('a'));
    expect(bindingGroupKey(binding('a', { trigger_type: 'other' }))).not.toBe(base);
    expect(bindingGroupKey(binding('a', { function_id: 'jobs::other' }))).not.toBe(base);
    expect(bindingGroupKey(binding('a', { config: { expression: '0 * * * * *' } }))).not.toBe(base);
    expect(bindingGroupKey(binding('a', { metadata: { team: 'ops' } }))).not.toBe(base);
  });

  test('a fan-out binding is a group of its own, keyed by its id', () => {
    expect(bindingGroupKey(binding('a', { config: { expression: '* * * * * *', fan_out: true } }))).toBe('a');
  });

  test('a fan_out that is not a boolean is refused', () => {
    expect(() => bindingGroupKey(binding('a', { config: { fan_out: 'yes' } }))).toThrow(
      /`fan_out` in a trigger config must be true .* or false, got "yes"/,
    );
  });
});

describe('BindingGroups', () => {
  test('the provider holds one binding per group: the smallest id, whatever the arrival order', async () => {
    const provider = recordingProvider();
    const groups = new BindingGroups(provider);
    await groups.registerTrigger(binding('m'));
    await groups.registerTrigger(binding('z'));
    await groups.registerTrigger(binding('c'));
    expect(provider.held).toEqual(['c']);
    expect(provider.calls).toEqual(['+m', '-m', '+c']);
    expect(groups.membersOf('z')).toEqual(['c', 'm', 'z']);
  });

  test('when the held binding leaves, the next smallest takes over; the last one leaving empties the provider', async () => {
    const provider = recordingProvider();
    const groups = new BindingGroups(provider);
    for (const id of ['a', 'b', 'c']) await groups.registerTrigger(binding(id));
    await groups.unregisterTrigger(binding('b'));
    expect(provider.held).toEqual(['a']);
    await groups.unregisterTrigger(binding('a'));
    expect(provider.held).toEqual(['c']);
    await groups.unregisterTrigger(binding('c'));
    expect(provider.held).toEqual([]);
    expect(groups.membersOf('c')).toEqual([]);
  });

  test('fan-out bindings and bindings of other groups pass through one each', async () => {
    const provider = recordingProvider();
    const groups = new BindingGroups(provider);
    const fanOut = { expression: '* * * * * *', fan_out: true };
    await groups.registerTrigger(binding('a', { config: fanOut }));
    await groups.registerTrigger(binding('b', { config: fanOut }));
    await groups.registerTrigger(binding('c', { function_id: 'jobs::other' }));
    await groups.registerTrigger(binding('d'));
    expect(provider.held.sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  test('a refused first binding leaves nothing; registrations and removals made at once end in one consistent group', async () => {
    const provider = recordingProvider();
    const groups = new BindingGroups(provider);
    await expect(groups.registerTrigger(binding('a', { config: { refuse: true } }))).rejects.toThrow('refused');
    expect(groups.membersOf('a')).toEqual([]);
    await Promise.all([
      groups.registerTrigger(binding('c')),
      groups.registerTrigger(binding('b')),
      groups.registerTrigger(binding('a')),
      groups.unregisterTrigger(binding('a')),
    ]);
    expect(provider.held).toEqual(['b']);
    expect(groups.membersOf('c')).toEqual(['b', 'c']);
  });
});

describe('bindingCall', () => {
  test('calls the function id, except a fan-out binding, which calls the member that made it', () => {
    const registry = new Registry();
    for (const workerId of ['w1', 'w2'])
      registry.apply({ op: 'function.put', fn: { id: 'jobs::tick', workerId, nodeId: 'n1' } });
    expect(bindingCall(registry, binding('a', { ownerWorkerId: 'w2' }), 1, { m: 1 })).toEqual({
      functionId: 'jobs::tick',
      data: 1,
      metadata: { m: 1 },
    });
    const pinned = bindingCall(registry, binding('a', { ownerWorkerId: 'w2', config: { fan_out: true } }), 1);
    expect(pinned).toEqual({
      functionId: 'jobs::tick',
      data: 1,
      pinned: { id: 'jobs::tick', workerId: 'w2', nodeId: 'n1' },
    });
    expect(bindingCall(registry, binding('a', { ownerWorkerId: 'gone', config: { fan_out: true } }), 1)).toEqual({
      functionId: 'jobs::tick',
      data: 1,
    });
  });
});
