import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { call } from '../api';
import { ErrorNote, json, num, useLoad } from '../common';

interface Span {
  trace_id: string;
  span_id: string;
  name: string;
  status: string;
  start_time_unix_nano: number;
  duration_ms: number;
  attributes: Record<string, unknown>;
  resource?: Record<string, unknown>;
  /** The node that recorded the span (answers with scope 'cluster'). */
  node?: string;
  children?: Span[];
}
interface MissingNode {
  node: string;
  message: string;
}
interface Log {
  timestamp_unix_nano?: number;
  severity_text?: string;
  body?: unknown;
  service_name?: string;
  trace_id?: string;
}

/**
 * Root spans every node keeps (scope 'cluster'; on a single node, its own), filtered by function
 * name and trace id; one trace as a waterfall over every node, each span with its node, and its logs.
 */
export function TracesPage() {
  // `#/traces?trace_id=<id>` (the invoke form's link) opens that trace.
  const linked = new URLSearchParams(location.hash.split('?')[1] ?? '').get('trace_id') ?? '';
  const [filter, setFilter] = useState({ name: '', trace_id: linked });
  const [form, setForm] = useState(filter);
  const [traceId, setTraceId] = useState<string | undefined>(linked || undefined);
  const list = useLoad(() => {
    const query: Record<string, unknown> = { limit: 50, scope: 'cluster' };
    if (filter.name.trim()) query.name = filter.name.trim();
    if (filter.trace_id.trim()) query.trace_id = filter.trace_id.trim();
    return call<{ spans: Span[]; total: number }>('engine::traces::list', query);
  }, [filter.name, filter.trace_id]);
  const logs = useLoad(
    () => call<{ logs: Log[] }>('engine::logs::list', traceId ? { trace_id: traceId, limit: 100 } : { limit: 50 }),
    [traceId],
  );
  return html`
    <section>
      <form class="filters" onSubmit=${(e: Event) => (e.preventDefault(), setFilter(form))} data-testid="trace-filter">
        <label
          >Function
          <input
            name="name"
            value=${form.name}
            placeholder="demo::hello"
            onInput=${(e: Event) => setForm({ ...form, name: (e.target as HTMLInputElement).value })}
        /></label>
        <label
          >Trace id
          <input
            name="trace_id"
            value=${form.trace_id}
            onInput=${(e: Event) => setForm({ ...form, trace_id: (e.target as HTMLInputElement).value })}
        /></label>
        <button type="submit">Filter</button>
      </form>
      <${ErrorNote} error=${list.error} />
      <h2>Traces <small>(${list.data?.total ?? 0})</small></h2>
      <table data-testid="traces">
        <thead>
          <tr>
            <th>Function</th>
            <th>Status</th>
            <th>Duration ms</th>
            <th>Started</th>
            <th>Node</th>
            <th>Trace</th>
          </tr>
        </thead>
        <tbody>
          ${(list.data?.spans ?? []).map(
            (s) =>
              html`<tr key=${s.span_id} data-trace=${s.trace_id} class=${traceId === s.trace_id ? 'selected' : ''}>
                <td><code>${s.name}</code></td>
                <td class=${s.status === 'error' ? 'bad' : ''}>${s.status}</td>
                <td>${num(s.duration_ms, 2)}</td>
                <td>${new Date(s.start_time_unix_nano / 1e6).toISOString().slice(11, 23)}</td>
                <td>${s.node ?? ''}</td>
                <td>
                  <button class="small" onClick=${() => setTraceId(s.trace_id)}>${s.trace_id.slice(0, 12)}…</button>
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${traceId ? html`<${Waterfall} key=${traceId} traceId=${traceId} />` : null}
      <h2>Logs ${traceId ? html`<small>of trace ${traceId.slice(0, 12)}…</small>` : null}</h2>
      <${ErrorNote} error=${logs.error} />
      <table data-testid="logs">
        <thead>
          <tr>
            <th>Time</th>
            <th>Level</th>
            <th>Service</th>
            <th>Message</th>
          </tr>
        </thead>
        <tbody>
          ${(logs.data?.logs ?? []).map(
            (l, i) =>
              html`<tr key=${i}>
                <td>
                  ${l.timestamp_unix_nano ? new Date(l.timestamp_unix_nano / 1e6).toISOString().slice(11, 23) : '–'}
                </td>
                <td>${l.severity_text ?? ''}</td>
                <td>${l.service_name ?? ''}</td>
                <td>${typeof l.body === 'string' ? l.body : json(l.body)}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </section>
  `;
}

/** Every span of one trace as a bar on a shared time axis, nested by parent. */
function Waterfall({ traceId }: { traceId: string }) {
  const { data, error } = useLoad(
    () =>
      call<{ roots: Span[]; missing_nodes?: MissingNode[] }>('engine::traces::tree', {
        trace_id: traceId,
        scope: 'cluster',
      }),
    [traceId],
  );
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!data) return null;
  const rows: Array<{ span: Span; depth: number }> = [];
  const walk = (span: Span, depth: number) => {
    rows.push({ span, depth });
    for (const child of span.children ?? []) walk(child, depth + 1);
  };
  data.roots.forEach((r) => walk(r, 0));
  const missing = data.missing_nodes ?? [];
  const missingNote =
    missing.length === 0
      ? null
      : html`<p class="bad" data-testid="missing-nodes">
          Not shown: the spans of ${missing.map((m) => m.node).join(', ')} (${missing.map((m) => m.message).join('; ')})
        </p>`;
  if (rows.length === 0)
    return html`<p>No spans of this trace are kept on any node.</p>
      ${missingNote}`;
  const start = Math.min(...rows.map((r) => r.span.start_time_unix_nano));
  const end = Math.max(...rows.map((r) => r.span.start_time_unix_nano + r.span.duration_ms * 1e6));
  const total = Math.max(end - start, 1);
  return html`
    <div class="panel" data-testid="waterfall">
      <h3>Trace <code>${traceId}</code> · ${num(total / 1e6, 2)} ms</h3>
      ${missingNote}
      ${rows.map(({ span, depth }) => {
        const left = ((span.start_time_unix_nano - start) / total) * 100;
        const width = Math.max(((span.duration_ms * 1e6) / total) * 100, 0.5);
        const node = String(
          span.node ?? span.resource?.['service.instance.id'] ?? span.attributes['iii.worker.id'] ?? '',
        );
        return html`<div class="span-row" key=${span.span_id}>
          <div class="span-label" style=${{ paddingLeft: `${depth * 14}px` }} title=${span.span_id}>
            <code>${span.name}</code> <small data-testid="span-node">${node}</small>
          </div>
          <div class="span-track">
            <div class="span-bar ${span.status}" style=${{ left: `${left}%`, width: `${width}%` }}>
              ${num(span.duration_ms, 2)} ms
            </div>
          </div>
        </div>`;
      })}
    </div>
  `;
}
