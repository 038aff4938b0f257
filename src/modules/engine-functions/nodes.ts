import type { Json } from '../../protocol/messages';
import type { Engine } from '../../engine/engine';

/**
 * `engine::cluster::nodes` (ours; iii has one engine, so no such function): the nodes of the
 * cluster as the answering node sees them, itself first. A single node (no Redis) lists itself.
 *
 * Each entry: `node_id`, `state` (`ready` or `draining`), `self` (the node that answered),
 * `url` (where the other nodes reach its worker port; null for a single node), `started_at_ms`
 * and `uptime_ms` (ms), `worker_count` (connected workers, in-process modules not counted, nor
 * the calling connection: an operator's CLI does not count itself).
 */
export async function clusterNodes(engine: Engine, callerWorkerId: string | undefined): Promise<Json> {
  const workers = new Map<string, number>();
  for (const w of engine.registry.workers()) {
    if (w.kind !== 'worker' || w.id === callerWorkerId) continue;
    workers.set(w.nodeId, (workers.get(w.nodeId) ?? 0) + 1);
  }
  const now = Date.now();
  const row = (nodeId: string, state: string, self: boolean, url: string | undefined, startedAtMs: number): Json => ({
    node_id: nodeId,
    state,
    self,
    url: url ?? null,
    started_at_ms: startedAtMs,
    uptime_ms: Math.max(0, now - startedAtMs),
    worker_count: workers.get(nodeId) ?? 0,
  });
  const ownState = engine.state === 'draining' ? 'draining' : 'ready';
  if (!engine.cluster) return { nodes: [row(engine.nodeId, ownState, true, undefined, engine.createdAtMs)] };
  const [self, ...others] = await engine.cluster.members();
  return {
    nodes: [
      row(self.nodeId, ownState, true, self.url, self.startedAtMs),
      // The linkKey of a node is a secret between nodes: never copied here.
      ...others
        .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
        .map((n) => row(n.nodeId, n.state ?? 'ready', false, n.url, n.startedAtMs)),
    ],
  };
}
