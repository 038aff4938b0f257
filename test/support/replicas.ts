import type { IIIClient } from 'iii-sdk';
import type { Any } from './calls';
import { call } from './calls';
import { sleep, waitFor, type TestEngine } from './engine';

/**
 * Replicas of one worker (same worker name, same functions, same bindings, each binding with the
 * random id the SDK gives it) and the events their bindings fire: what the "once per event"
 * tests of binding groups (docs/PROTOCOL.md, "Bindings of a pool") count.
 */

/** The trigger types whose bindings a replica makes, one function each. */
export const REPLICA_TYPES = ['cron', 'subscribe', 'state', 'stream'] as const;
export type ReplicaType = (typeof REPLICA_TYPES)[number];

/** How long a duplicate would take at most to show up after the first delivery, in ms. */
export const DUPLICATE_WINDOW_MS = 600;

const EVERY_SECOND = '* * * * * *';

/** One handled event: which replica handled it, and the event's key (see `eventKey`). */
export interface Handled {
  replica: number;
  key: string;
}

export interface ReplicaSet {
  clients: IIIClient[];
  /** Registry worker id of each replica (its connection), by replica index. */
  workerIds: string[];
  /** Everything handled, per type, in arrival order. */
  handled: Record<ReplicaType, Handled[]>;
  /** Function id of each type. */
  functionIds: Record<ReplicaType, string>;
  /** The topic, state scope and stream name the bindings listen to. */
  topic: string;
}

/** The key an event is counted by: the tick, the message, the state key, the stream item. */
function eventKey(type: ReplicaType, payload: Any): string {
  switch (type) {
    case 'cron':
      return String(payload.scheduled_time);
    case 'subscribe':
      return String(payload.seq);
    case 'state':
      return String(payload.key);
    case 'stream':
      return String(payload.id);
  }
}

/** The config each replica binds a type with (`extra` added: `{fan_out: true}`). */
function configOf(type: ReplicaType, topic: string, extra: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case 'cron':
      return { expression: EVERY_SECOND, ...extra };
    case 'subscribe':
      return { topic, ...extra };
    case 'state':
      return { scope: topic, ...extra };
    case 'stream':
      return { stream_name: topic, ...extra };
  }
}

/**
 * Starts `count` replicas named `name`, replica i on `nodes[i % nodes.length]`, one after the
 * other (so that their worker ids are known by index), each registering one function per type
 * and binding it. Resolves once every binding is live on every node.
 */
export async function startReplicas(
  nodes: TestEngine[],
  name: string,
  count: number,
  extra: Record<string, unknown> = {},
): Promise<ReplicaSet> {
  const topic = `${name}-events`;
  const functionIds = Object.fromEntries(REPLICA_TYPES.map((type) => [type, `${name}::${type}`])) as Record<
    ReplicaType,
    string
  >;
  const handled = Object.fromEntries(REPLICA_TYPES.map((type) => [type, [] as Handled[]])) as Record<
    ReplicaType,
    Handled[]
  >;
  const clients: IIIClient[] = [];
  const workerIds: string[] = [];
  for (let replica = 0; replica < count; replica++) {
    const node = nodes[replica % nodes.length];
    const client = node.worker(name);
    clients.push(client);
    for (const type of REPLICA_TYPES) {
      client.registerFunction(functionIds[type], async (payload: Any) => {
        handled[type].push({ replica, key: eventKey(type, payload) });
        return null;
      });
    }
    const known = new Set(workerIds);
    const workerId = await waitFor(
      () =>
        node.engine.registry
          .pool(functionIds.stream)
          .find((fn) => fn.nodeId === node.engine.nodeId && !known.has(fn.workerId))?.workerId,
      `replica ${replica}'s functions`,
    );
    workerIds.push(workerId);
    for (const type of REPLICA_TYPES)
      client.registerTrigger({ type, function_id: functionIds[type], config: configOf(type, topic, extra) });
  }
  for (const node of nodes) {
    for (const type of REPLICA_TYPES)
      await waitFor(
        () => liveBindings(node, functionIds[type]).length === count,
        `${count} live ${type} bindings on ${node.engine.nodeId}`,
        10_000,
      );
  }
  return { clients, workerIds, handled, functionIds, topic };
}

/** Live bindings of `functionId`, whatever their type, in `node`'s registry. */
export function liveBindings(node: TestEngine, functionId: string) {
  return [...node.engine.registry.triggers()].filter((t) => t.function_id === functionId && t.state === 'live');
}

/** The replica owning the group's current member: the binding with the smallest id. */
export function currentOwner(node: TestEngine, set: ReplicaSet, type: ReplicaType): number {
  const ids = liveBindings(node, set.functionIds[type]).sort((a, b) => (a.id < b.id ? -1 : 1));
  return set.workerIds.indexOf(ids[0].ownerWorkerId!);
}

/**
 * Makes `count` events of each of subscribe, state and stream, keyed `${label}-<n>`, one write
 * each through `writers[n % writers.length]`.
 */
export async function makeEvents(
  writers: IIIClient[],
  set: ReplicaSet,
  label: string,
  count: number,
): Promise<string[]> {
  const keys = Array.from({ length: count }, (_, n) => `${label}-${n}`);
  for (const [n, key] of keys.entries()) {
    const writer = writers[n % writers.length];
    await call(writer, 'publish', { topic: set.topic, data: { seq: key } });
    await call(writer, 'state::set', { scope: set.topic, key, value: n });
    await call(writer, 'stream::set', { stream_name: set.topic, group_id: 'g', item_id: key, data: n });
  }
  return keys;
}

/** How many times each key was handled (only the keys asked for). */
export function countsOf(handled: Handled[], keys: string[]): Record<string, number> {
  return Object.fromEntries(keys.map((key) => [key, handled.filter((h) => h.key === key).length]));
}

/** Waits until every key was handled `times` times, then a duplicate window, then expects exactly `times`. */
export async function expectHandled(set: ReplicaSet, keys: string[], times: number): Promise<void> {
  for (const type of ['subscribe', 'state', 'stream'] as const) {
    await waitFor(
      () => keys.every((key) => set.handled[type].filter((h) => h.key === key).length >= times),
      `${type} events handled x${times}`,
      10_000,
    );
  }
  await sleep(DUPLICATE_WINDOW_MS);
  const want = Object.fromEntries(keys.map((key) => [key, times]));
  for (const type of ['subscribe', 'state', 'stream'] as const)
    expect({ type, counts: countsOf(set.handled[type], keys) }).toEqual({ type, counts: want });
}

/** Cron ticks handled after `sinceMs` (scheduled time), by scheduled time: how many times each. */
export function cronCounts(set: ReplicaSet, sinceMs: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { key } of set.handled.cron) if (Date.parse(key) > sinceMs) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

/**
 * Waits for `ticks` cron ticks scheduled after `sinceMs`, then the duplicate window, and expects
 * each of them (every second from the first to the last) handled `times` times.
 */
export async function expectCronTicks(set: ReplicaSet, sinceMs: number, ticks: number, times: number): Promise<void> {
  await waitFor(() => Object.keys(cronCounts(set, sinceMs)).length >= ticks, `${ticks} cron ticks`, (ticks + 5) * 1000);
  const last = Date.now();
  await sleep(DUPLICATE_WINDOW_MS);
  const counts = Object.fromEntries(
    Object.entries(cronCounts(set, sinceMs)).filter(([key]) => Date.parse(key) <= last - 1000),
  );
  const seconds = Object.keys(counts)
    .map((key) => Date.parse(key))
    .sort((a, b) => a - b);
  const expected: Record<string, number> = {};
  for (let t = seconds[0]; t <= seconds[seconds.length - 1]; t += 1000) expected[new Date(t).toISOString()] = times;
  expect(counts).toEqual(expected);
}

/** Which replicas handled anything of `type` after `from` (an index into `handled[type]`). */
export function handlersOf(set: ReplicaSet, type: ReplicaType, from = 0): number[] {
  return [...new Set(set.handled[type].slice(from).map((h) => h.replica))].sort();
}
