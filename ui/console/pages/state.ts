import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { call } from '../api';
import { ErrorNote, json, parseJson, useLoad, useSession } from '../common';

type Kind = 'state' | 'stream';

/**
 * State scopes and stream groups, their items, and an editor (hidden in read-only mode).
 * state::list answers values only, so items are listed by value; the editor sets by key.
 */
export function StatePage() {
  const [kind, setKind] = useState<Kind>('state');
  return html`
    <section>
      <div class="tabs">
        <button class=${kind === 'state' ? 'active' : ''} onClick=${() => setKind('state')}>State</button>
        <button class=${kind === 'stream' ? 'active' : ''} onClick=${() => setKind('stream')}>Streams</button>
      </div>
      ${kind === 'state' ? html`<${StateBrowser} key="state" />` : html`<${StreamBrowser} key="stream" />`}
    </section>
  `;
}

function StateBrowser() {
  const [scope, setScope] = useState<string | undefined>(undefined);
  const groups = useLoad(() => call<{ groups: string[] }>('state::list_groups'));
  const items = useLoad(
    async () => (scope === undefined ? undefined : call<unknown[]>('state::list', { scope })),
    [scope],
  );
  return html`
    <h2>State scopes <button class="small" onClick=${groups.reload}>Refresh</button></h2>
    <${ErrorNote} error=${groups.error} />
    <ul class="pills" data-testid="scopes">
      ${(groups.data?.groups ?? []).map((g) => html`<li key=${g}><button class=${g === scope ? 'active' : ''} onClick=${() => setScope(g)}>${g}</button></li>`)}
    </ul>
    ${
      scope === undefined
        ? null
        : html`<h3>Items of <code>${scope}</code></h3>
            <${ErrorNote} error=${items.error} />
            <div data-testid="state-items">
              ${(items.data ?? []).map((v, i) => html`<pre key=${i}>${json(v)}</pre>`)}
            </div>`
    }
    <${Editor}
      title="Set a state item"
      fields=${['scope', 'key']}
      initial=${{ scope: scope ?? '', key: '' }}
      onSave=${async (f: Record<string, string>, value: unknown) => {
        await call('state::set', { scope: f.scope, key: f.key, value });
        groups.reload();
        if (f.scope === scope) items.reload();
        else setScope(f.scope);
      }}
      onLoad=${async (f: Record<string, string>) => call('state::get', { scope: f.scope, key: f.key })}
    />
  `;
}

interface StreamGroup {
  stream_name: string;
  group_id: string;
}

function StreamBrowser() {
  const [picked, setPicked] = useState<StreamGroup | undefined>(undefined);
  const streams = useLoad(() =>
    call<{ stream: Array<{ id?: string; stream_name?: string; groups?: string[] }> }>('stream::list_all'),
  );
  const items = useLoad(
    async () =>
      picked
        ? call<unknown[]>('stream::list', { stream_name: picked.stream_name, group_id: picked.group_id })
        : undefined,
    [picked?.stream_name, picked?.group_id],
  );
  const groups: StreamGroup[] = (streams.data?.stream ?? []).flatMap((s) =>
    (s.groups ?? []).map((g) => ({ stream_name: s.stream_name ?? s.id ?? '', group_id: g })),
  );
  return html`
    <h2>Streams <button class="small" onClick=${streams.reload}>Refresh</button></h2>
    <${ErrorNote} error=${streams.error} />
    ${groups.length === 0 ? html`<p>No stream groups.</p>` : null}
    <ul class="pills" data-testid="stream-groups">
      ${groups.map((g) => html`<li key=${g.stream_name + '/' + g.group_id}><button onClick=${() => setPicked(g)}>${g.stream_name} / ${g.group_id}</button></li>`)}
    </ul>
    ${
      picked
        ? html`<h3>Items of <code>${picked.stream_name} / ${picked.group_id}</code></h3>
            <${ErrorNote}
              error=${items.error}
            />${(items.data ?? []).map((v, i) => html`<pre key=${i}>${json(v)}</pre>`)}`
        : null
    }
    <${Editor}
      title="Set a stream item"
      fields=${['stream_name', 'group_id', 'item_id']}
      initial=${{ stream_name: picked?.stream_name ?? '', group_id: picked?.group_id ?? '', item_id: '' }}
      onSave=${async (f: Record<string, string>, data: unknown) => {
        await call('stream::set', { stream_name: f.stream_name, group_id: f.group_id, item_id: f.item_id, data });
        streams.reload();
        items.reload();
      }}
      onLoad=${async (f: Record<string, string>) => call('stream::get', { stream_name: f.stream_name, group_id: f.group_id, item_id: f.item_id })}
    />
  `;
}

function Editor(props: {
  title: string;
  fields: string[];
  initial: Record<string, string>;
  onSave: (fields: Record<string, string>, value: unknown) => Promise<void>;
  onLoad: (fields: Record<string, string>) => Promise<unknown>;
}) {
  const { read_only } = useSession();
  const [fields, setFields] = useState<Record<string, string>>(props.initial);
  const [value, setValue] = useState('{}');
  const [note, setNote] = useState<{ ok: boolean; text: string } | undefined>(undefined);
  if (read_only) return null;
  const run = async (what: () => Promise<string>) => {
    try {
      setNote({ ok: true, text: await what() });
    } catch (err) {
      setNote({ ok: false, text: (err as Error).message });
    }
  };
  return html`
    <form
      class="editor"
      data-testid="item-editor"
      onSubmit=${(e: Event) => (e.preventDefault(), run(async () => (await props.onSave(fields, parseJson(value, 'The value')), 'Saved.')))}
    >
      <h3>${props.title}</h3>
      ${props.fields.map(
        (name) =>
          html`<label key=${name}
            >${name}
            <input
              name=${name}
              required
              value=${fields[name] ?? ''}
              onInput=${(e: Event) => setFields({ ...fields, [name]: (e.target as HTMLInputElement).value })}
          /></label>`,
      )}
      <label
        >Value (JSON)
        <textarea
          name="value"
          rows="4"
          value=${value}
          onInput=${(e: Event) => setValue((e.target as HTMLTextAreaElement).value)}
        ></textarea>
      </label>
      <button
        type="button"
        onClick=${() => run(async () => (setValue(json((await props.onLoad(fields)) ?? null)), 'Loaded.'))}
      >
        Load
      </button>
      <button type="submit">Save</button>
      ${note ? html`<p class=${note.ok ? 'ok' : 'error'} data-testid="editor-note">${note.text}</p>` : null}
    </form>
  `;
}
