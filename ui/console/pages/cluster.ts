import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { duration, num } from '../common';

interface Node {
  node_id: string;
  state: string;
  self: boolean;
  url: string | null;
  uptime_ms: number;
  worker_count: number;
}

interface Snapshot {
  node_id: string;
  at_ms: number;
  readiness: { ready: boolean; draining?: boolean; checks: Record<string, string | boolean> };
  nodes: Node[];
  invocations: {
    total: number;
    success: number;
    error: number;
    rate_per_second: number | null;
    error_rate: number | null;
  } | null;
  workers: { connected: number; on_this_node: number } | null;
  performance: { p50_ms: number | null; p99_ms: number | null; pending_calls: number } | null;
  bus: Record<string, number> | null;
}

/**
 * Cluster: every node the answering node knows (live over the server's SSE feed), with this
 * node's own figures; a node that left is kept on screen as `gone`.
 */
export function ClusterPage() {
  const [snap, setSnap] = useState<Snapshot | undefined>(undefined);
  const [gone, setGone] = useState<Map<string, Node>>(new Map());
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    const source = new EventSource('/api/events');
    let known = new Map<string, Node>();
    source.addEventListener('snapshot', (event) => {
      const next = JSON.parse((event as MessageEvent<string>).data) as Snapshot;
      const ids = new Set(next.nodes.map((n) => n.node_id));
      // Membership forgets a node once it is gone: remember it here so the operator sees it leave.
      setGone((before) => {
        const after = new Map(before);
        for (const [id, node] of known) if (!ids.has(id)) after.set(id, { ...node, state: 'gone' });
        for (const id of ids) after.delete(id);
        return after;
      });
      known = new Map(next.nodes.map((n) => [n.node_id, n]));
      setSnap(next);
      setConnected(true);
    });
    source.onerror = () => setConnected(false);
    return () => source.close();
  }, []);

  if (!snap) return html`<p>Waiting for the live feed…</p>`;
  const inv = snap.invocations;
  const redis = snap.readiness.checks['redis'];
  const rows = [...snap.nodes, ...gone.values()];
  const cross = snap.bus ? Object.entries(snap.bus) : [];
  return html`
    <section>
      <p class="live ${connected ? 'on' : 'off'}" data-testid="live">
        ${connected ? 'live' : 'reconnecting…'} · as seen by ${snap.node_id}
      </p>
      <div class="cards">
        <div class="card">
          <h3>Nodes</h3>
          <b data-testid="node-count">${snap.nodes.length}</b>
        </div>
        <div class="card">
          <h3>Calls on ${snap.node_id}</h3>
          <b data-testid="calls-total">${inv?.total ?? 0}</b>
        </div>
        <div class="card">
          <h3>Calls/s</h3>
          <b data-testid="calls-rate">${num(inv?.rate_per_second)}</b>
        </div>
        <div class="card">
          <h3>Errors</h3>
          <b data-testid="calls-errors">${inv?.error ?? 0}</b>
          <small>${inv?.error_rate == null ? '' : `${num(inv.error_rate * 100)}%`}</small>
        </div>
        <div class="card">
          <h3>p50 / p99</h3>
          <b>${num(snap.performance?.p50_ms)} / ${num(snap.performance?.p99_ms)} ms</b>
        </div>
        <div class="card">
          <h3>Redis</h3>
          <b data-testid="redis" class=${redis === undefined ? '' : redis === 'ok' ? 'ok' : 'bad'}
            >${redis === undefined ? 'single node (no Redis)' : String(redis)}</b
          >
        </div>
        ${
          cross.length > 0
            ? html`<div class="card">
                <h3>Sent to other nodes</h3>
                <b>${cross.map(([via, n]) => `${via} ${n}`).join(' · ')}</b>
              </div>`
            : null
        }
      </div>
      <table data-testid="nodes">
        <thead>
          <tr>
            <th>Node</th>
            <th>State</th>
            <th>Uptime</th>
            <th>Workers</th>
            <th>Worker URL</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            (n) =>
              html`<tr key=${n.node_id} data-node=${n.node_id}>
                <td>${n.node_id}${n.self ? html` <small>(this node)</small>` : null}</td>
                <td><span class="state ${n.state}">${n.state}</span></td>
                <td>${n.state === 'gone' ? '–' : duration(n.uptime_ms)}</td>
                <td>${n.state === 'gone' ? '–' : n.worker_count}</td>
                <td><code>${n.url ?? '–'}</code></td>
              </tr>`,
          )}
        </tbody>
      </table>
      <p class="note">
        Calls, rates and latencies are the figures of ${snap.node_id}, the node serving this console; each node's
        console shows its own.
      </p>
    </section>
  `;
}
