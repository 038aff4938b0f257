import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { ApiError, call, callTraced } from '../api';
import { duration, ErrorNote, json, num, parseJson, useLoad, useSession } from '../common';

interface PoolMember {
  worker_id: string;
  worker_name: string;
  node_id: string;
}
interface Fn {
  function_id: string;
  worker_name: string;
  description?: string;
  pool?: PoolMember[];
}
interface Figures {
  total: number;
  error: number;
  rate_per_second: number;
  p50_ms: number | null;
  p99_ms: number | null;
}
/** A function's cluster-wide figures (engine::functions::stats) and each node's share. */
interface FnStats extends Figures {
  function_id: string;
  nodes: Array<Figures & { node_id: string }>;
}
interface Worker {
  id: string;
  name: string | null;
  runtime: string;
  status: string;
  function_count: number;
  connected_at_ms: number;
  active_invocations: number;
  node_id?: string | null;
}

/** Functions (with their pools and the cluster's figures), workers, and a form to call a function. */
export function FunctionsPage() {
  const { data, error, reload } = useLoad(async () => {
    const [fns, metrics, workers] = await Promise.all([
      call<{ functions: Fn[] }>('engine::functions::list', { include_pool: true }),
      call<{ functions: FnStats[] }>('engine::functions::stats', { scope: 'cluster' }),
      call<{ workers: Worker[] }>('engine::workers::list', { include_node: true }),
    ]);
    const byFunction = new Map(metrics.functions.map((m) => [m.function_id, m]));
    return { functions: fns.functions, byFunction, workers: workers.workers.filter((w) => w.runtime !== 'engine') };
  });
  return html`
    <section>
      <${InvokeForm} functions=${data?.functions.map((f) => f.function_id) ?? []} onDone=${reload} />
      <h2>Functions <button class="small" onClick=${reload}>Refresh</button></h2>
      <${ErrorNote} error=${error} />
      <table data-testid="functions">
        <thead>
          <tr>
            <th>Function</th>
            <th>Pool (worker @ node)</th>
            <th>Calls</th>
            <th>Calls/s</th>
            <th>Errors</th>
            <th>p50 ms</th>
            <th>p99 ms</th>
            <th>By node (calls)</th>
          </tr>
        </thead>
        <tbody>
          ${(data?.functions ?? []).map((f) => {
            const m = data!.byFunction.get(f.function_id);
            return html`<tr key=${f.function_id} data-function=${f.function_id}>
              <td>
                <code>${f.function_id}</code>${f.description ? html`<br /><small>${f.description}</small>` : null}
              </td>
              <td>
                ${(f.pool ?? []).map((p) => html`<span class="chip" title=${p.worker_id}>${p.worker_name} @ ${p.node_id}</span>`)}
              </td>
              <td data-testid="calls">${m?.total ?? 0}</td>
              <td>${num(m?.rate_per_second ?? 0)}</td>
              <td class=${m && m.error > 0 ? 'bad' : ''}>
                ${m ? `${m.error}${m.total > 0 ? ` (${num((m.error / m.total) * 100)}%)` : ''}` : 0}
              </td>
              <td>${num(m?.p50_ms)}</td>
              <td>${num(m?.p99_ms)}</td>
              <td data-testid="per-node">
                ${(m?.nodes ?? []).map(
                  (n) =>
                    html`<span class="chip" title=${`p50 ${num(n.p50_ms)} ms, p99 ${num(n.p99_ms)} ms`}
                      >${n.node_id}: ${n.total}${n.error > 0 ? ` (${n.error} err)` : ''}</span
                    >`,
                )}
              </td>
            </tr>`;
          })}
        </tbody>
      </table>
      <p class="note">
        Calls, errors and latencies of the whole cluster: every node's figures merged (published every 2 s), with each
        node's share.
      </p>
      <h2>Workers</h2>
      <table data-testid="workers">
        <thead>
          <tr>
            <th>Worker</th>
            <th>Node</th>
            <th>Runtime</th>
            <th>Functions</th>
            <th>In flight</th>
            <th>Connected for</th>
          </tr>
        </thead>
        <tbody>
          ${(data?.workers ?? []).map(
            (w) =>
              html`<tr key=${w.id}>
                <td>
                  ${w.name ?? w.id}<br /><small><code>${w.id}</code></small>
                </td>
                <td>${w.node_id ?? '–'}</td>
                <td>${w.runtime}</td>
                <td>${w.function_count}</td>
                <td>${w.active_invocations}</td>
                <td>${duration(Date.now() - w.connected_at_ms)}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </section>
  `;
}

function InvokeForm({ functions, onDone }: { functions: string[]; onDone: () => void }) {
  const { read_only } = useSession();
  const [functionId, setFunctionId] = useState('');
  const [payload, setPayload] = useState('{}');
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string; traceId?: string } | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  if (read_only) return null;
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    try {
      const { result, traceId } = await callTraced(functionId.trim(), parseJson(payload, 'The payload'));
      setOutcome({ ok: true, text: json(result), ...(traceId ? { traceId } : {}) });
    } catch (err) {
      const traceId = err instanceof ApiError ? err.traceId : undefined;
      setOutcome({ ok: false, text: (err as Error).message, ...(traceId ? { traceId } : {}) });
    } finally {
      setBusy(false);
      onDone();
    }
  };
  return html`
    <form class="invoke" onSubmit=${submit} data-testid="invoke-form">
      <h2>Invoke a function</h2>
      <label
        >Function
        <input
          name="function_id"
          list="function-ids"
          value=${functionId}
          onInput=${(e: Event) => setFunctionId((e.target as HTMLInputElement).value)}
          required
      /></label>
      <datalist id="function-ids">${functions.map((id) => html`<option value=${id} />`)}</datalist>
      <label
        >Payload (JSON)
        <textarea
          name="payload"
          rows="4"
          value=${payload}
          onInput=${(e: Event) => setPayload((e.target as HTMLTextAreaElement).value)}
        ></textarea>
      </label>
      <button type="submit" disabled=${busy}>Invoke</button>
      ${outcome ? html`<pre class=${outcome.ok ? 'result' : 'result error'} data-testid="invoke-result">${outcome.text}</pre>` : null}
      ${outcome?.traceId ? html`<p><a data-testid="invoke-trace" href=${`#/traces?trace_id=${outcome.traceId}`}>Its trace: ${outcome.traceId}</a></p>` : null}
    </form>
  `;
}
