import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { call } from '../api';
import { ErrorNote, useLoad, useSession } from '../common';

interface Binding {
  id: string;
  trigger_type: string;
  function_id: string;
  worker_name: string;
  config: unknown;
  config_summary: string;
}
interface CronJob {
  trigger_id: string;
  next_fire_at: string | null;
  last_fired_here_at: string | null;
  /** Cluster-wide (from the tick key in Redis): the node that fired the job's last tick, and when. */
  last_fired_node: string | null;
  last_fired_at_ms: number | null;
}

/** Every binding grouped by trigger type; cron bindings with their next fire time and a fire-now button. */
export function TriggersPage() {
  const { read_only } = useSession();
  const [note, setNote] = useState<string | undefined>(undefined);
  const [failure, setFailure] = useState<string | undefined>(undefined);
  const { data, error, reload } = useLoad(async () => {
    const [bindings, cron] = await Promise.all([
      call<{ registered_triggers: Binding[] }>('engine::registered-triggers::list'),
      // No cron module on this node: no schedule to show.
      call<{ jobs: CronJob[] }>('engine::cron::jobs').catch(() => ({ jobs: [] as CronJob[] })),
    ]);
    const byType = new Map<string, Binding[]>();
    for (const b of bindings.registered_triggers)
      byType.set(b.trigger_type, [...(byType.get(b.trigger_type) ?? []), b]);
    return {
      byType: [...byType.entries()].sort(([a], [b]) => a.localeCompare(b)),
      cron: new Map(cron.jobs.map((j) => [j.trigger_id, j])),
    };
  });
  const fire = async (b: Binding) => {
    setFailure(undefined);
    try {
      const r = await call<{ scheduled_time: string }>('engine::cron::fire', { trigger_id: b.id });
      setNote(`${b.function_id} fired at ${r.scheduled_time}`);
    } catch (err) {
      setFailure((err as Error).message);
    }
    reload();
  };
  return html`
    <section>
      <h2>Triggers <button class="small" onClick=${reload}>Refresh</button></h2>
      <${ErrorNote} error=${error ?? failure} />
      ${note ? html`<p class="ok" data-testid="trigger-note">${note}</p>` : null}
      ${data && data.byType.length === 0 ? html`<p>No bindings.</p>` : null}
      ${(data?.byType ?? []).map(
        ([type, bindings]) => html`
          <h3 key=${type}>${type} <small>(${bindings.length})</small></h3>
          <table data-testid=${`bindings-${type}`}>
            <thead>
              <tr>
                <th>Function</th>
                <th>Worker</th>
                <th>Config</th>
                ${
                  type === 'cron'
                    ? html`<th>Next fire (UTC)</th>
                        <th>Last tick (UTC)</th>
                        <th>Fired by node</th>
                        <th></th>`
                    : null
                }
              </tr>
            </thead>
            <tbody>
              ${bindings.map((b) => {
                const job = data!.cron.get(b.id);
                return html`<tr key=${b.id} data-binding=${b.id}>
                  <td><code>${b.function_id}</code></td>
                  <td>${b.worker_name}</td>
                  <td><code>${b.config_summary}</code></td>
                  ${
                    type === 'cron'
                      ? html`<td data-testid="next-fire">
                            ${job?.next_fire_at ?? (job ? 'none' : 'held by its group')}
                          </td>
                          <td data-testid="last-tick">
                            ${job?.last_fired_at_ms != null ? new Date(job.last_fired_at_ms).toISOString() : '–'}
                          </td>
                          <td data-testid="last-tick-node">${job?.last_fired_node ?? '–'}</td>
                          <td>
                            ${read_only ? null : html`<button class="small" data-testid="fire-now" onClick=${() => fire(b)}>Fire now</button>`}
                          </td>`
                      : null
                  }
                </tr>`;
              })}
            </tbody>
          </table>
        `,
      )}
    </section>
  `;
}
