import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { call } from '../api';
import { ErrorNote, json, useLoad, useSession } from '../common';

interface Topic {
  name: string;
  broker_type: string;
  subscriber_count: number;
}
interface Stats {
  depth: number;
  waiting?: number;
  delayed?: number;
  in_flight?: number;
  consumer_count: number;
  dlq_depth: number;
}
interface DeadLetter {
  id: string;
  payload: unknown;
  error: string;
  failed_at: number;
  retries: number;
}

/** Queues and topics with their counts, and the dead letters of the one picked. */
export function QueuesPage() {
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const { data, error, reload } = useLoad(async () => {
    const topics = await call<Topic[]>('engine::queue::list_topics');
    const stats = await Promise.all(topics.map((t) => call<Stats>('engine::queue::topic_stats', { topic: t.name })));
    return topics.map((t, i) => ({ ...t, stats: stats[i]! }));
  });
  return html`
    <section>
      <h2>Queues <button class="small" onClick=${reload}>Refresh</button></h2>
      <${ErrorNote} error=${error} />
      <table data-testid="queues">
        <thead>
          <tr>
            <th>Queue / topic</th>
            <th>Type</th>
            <th>Waiting</th>
            <th>Delayed</th>
            <th>In flight</th>
            <th>Failed (DLQ)</th>
            <th>Consumers</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          ${(data ?? []).map(
            (q) =>
              html`<tr key=${q.name} data-queue=${q.name} class=${selected === q.name ? 'selected' : ''}>
                <td><code>${q.name}</code></td>
                <td>${q.broker_type}</td>
                <td>${q.stats.waiting ?? q.stats.depth}</td>
                <td>${q.stats.delayed ?? '–'}</td>
                <td>${q.stats.in_flight ?? '–'}</td>
                <td class=${q.stats.dlq_depth > 0 ? 'bad' : ''} data-testid="dlq-depth">${q.stats.dlq_depth}</td>
                <td>${q.stats.consumer_count}</td>
                <td><button class="small" onClick=${() => setSelected(q.name)}>Dead letters</button></td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${selected ? html`<${DeadLetters} key=${selected} queue=${selected} onChange=${reload} />` : null}
    </section>
  `;
}

function DeadLetters({ queue, onChange }: { queue: string; onChange: () => void }) {
  const { read_only } = useSession();
  const [note, setNote] = useState<string | undefined>(undefined);
  const [failure, setFailure] = useState<string | undefined>(undefined);
  const { data, error, reload } = useLoad(
    () => call<DeadLetter[]>('engine::queue::dlq_messages', { topic: queue, limit: 100 }),
    [queue],
  );
  const act = async (
    functionId: string,
    payload: Record<string, string>,
    done: (r: { redriven: number }) => string,
  ) => {
    setFailure(undefined);
    try {
      setNote(done(await call(functionId, payload)));
    } catch (err) {
      setFailure((err as Error).message);
    }
    reload();
    onChange();
  };
  const letters = data ?? [];
  return html`
    <div class="panel" data-testid="dead-letters">
      <h3>
        Dead letters of <code>${queue}</code> (${letters.length})
        ${
          !read_only && letters.length > 0
            ? html` <button
                class="small"
                data-testid="redrive-all"
                onClick=${() => act('iii::queue::redrive', { queue }, (r) => `${r.redriven} moved back to ${queue}`)}
              >
                Redrive all
              </button>`
            : null
        }
      </h3>
      <${ErrorNote} error=${error ?? failure} />
      ${note ? html`<p class="ok" data-testid="dlq-note">${note}</p>` : null}
      ${
        letters.length === 0
          ? html`<p>None.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th>Message</th>
                  <th>Error</th>
                  <th>Attempts</th>
                  <th>Failed at</th>
                  <th>Payload</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                ${letters.map(
                  (m) =>
                    html`<tr key=${m.id} data-message=${m.id}>
                      <td><code>${m.id}</code></td>
                      <td class="bad">${m.error}</td>
                      <td>${m.retries}</td>
                      <td>${new Date(m.failed_at * 1000).toISOString().replace('T', ' ').slice(0, 19)}</td>
                      <td><pre>${json(m.payload)}</pre></td>
                      <td>
                        ${
                          read_only
                            ? null
                            : html`<button
                                  class="small"
                                  data-testid="redrive"
                                  onClick=${() => act('iii::queue::redrive_message', { queue, message_id: m.id }, (r) => (r.redriven ? `${m.id} moved back to ${queue}` : `${m.id} was no longer there`))}
                                >
                                  Redrive
                                </button>
                                <button
                                  class="small danger"
                                  data-testid="discard"
                                  onClick=${() => confirm(`Discard ${m.id} for good?`) && act('iii::queue::discard_message', { queue, message_id: m.id }, () => `${m.id} discarded`)}
                                >
                                  Discard
                                </button>`
                        }
                      </td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
    </div>
  `;
}
