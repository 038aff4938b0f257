import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { session, type Session } from './api';
import { SessionContext } from './common';
import { ClusterPage } from './pages/cluster';
import { FunctionsPage } from './pages/functions';
import { QueuesPage } from './pages/queues';
import { StatePage } from './pages/state';
import { TracesPage } from './pages/traces';
import { TriggersPage } from './pages/triggers';

/** The pages, routed by the URL hash so every page is a link (#/queues) and the server serves one document. */
const PAGES = [
  { path: 'cluster', title: 'Cluster', page: ClusterPage },
  { path: 'functions', title: 'Functions & workers', page: FunctionsPage },
  { path: 'queues', title: 'Queues', page: QueuesPage },
  { path: 'triggers', title: 'Triggers', page: TriggersPage },
  { path: 'state', title: 'State & streams', page: StatePage },
  { path: 'traces', title: 'Traces & logs', page: TracesPage },
];

/** The page part of the hash (`#/traces?trace_id=...` is the traces page; the page reads its query). */
const currentPath = (): string => location.hash.replace(/^#\/?/, '').split('?')[0] || 'cluster';

function App() {
  const [me, setMe] = useState<Session | undefined>(undefined);
  const [failed, setFailed] = useState<string | undefined>(undefined);
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    session().then(setMe, (err: Error) => setFailed(err.message));
    const onHash = () => setPath(currentPath());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  if (failed)
    return html`<main class="login">
      <p class="error">${failed}</p>
      <a href="/">Sign in</a>
    </main>`;
  if (!me) return html`<p>Loading…</p>`;
  const current = PAGES.find((p) => p.path === path) ?? PAGES[0]!;
  const Page = current.page;
  return html`
    <${SessionContext.Provider} value=${me}>
      <header>
        <h1>iii-cluster</h1>
        <nav>
          ${PAGES.map((p) => html`<a href=${`#/${p.path}`} class=${p === current ? 'active' : ''}>${p.title}</a>`)}
        </nav>
        <span class="who"
          >node
          <b data-testid="session-node">${me.node_id}</b
          >${me.read_only ? html` · <b class="ro" data-testid="read-only">read-only</b>` : null}</span
        >
        <form method="post" action="/logout"><button class="small" type="submit">Sign out</button></form>
      </header>
      <main data-page=${current.path}>
        <h1 class="page-title">${current.title}</h1>
        <${Page} />
      </main>
    <//>
  `;
}

// Preact renders next to what is there: clear the shell's "Loading…" first.
const root = document.getElementById('app')!;
root.textContent = '';
render(html`<${App} />`, root);
