import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerWorker, TriggerAction, type IIIClient } from 'iii-sdk';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Any } from '../support/calls';
import { waitFor } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { freePort } from '../support/ports';
import { RawClient } from '../support/raw-client';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core) against three
 * engine processes over one Redis, with real iii-sdk workers: each page renders real data, a
 * redrive from the page moves a real job out of the dead-letter queue, the live call counter
 * moves while calls flow, a read-only console refuses a change, a wrong token is refused.
 * CONSOLE_SCREENSHOTS=1 also writes docs/console/<page>.png.
 */

const CHROMIUM = process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium';
const TOKEN = `console-${randomUUID()}`;
const SCREENSHOTS = process.env['CONSOLE_SCREENSHOTS'] === '1';
const SHOTS_DIR = path.join(__dirname, '../../docs/console');

jest.setTimeout(60_000);

// The callbacks of page.evaluate / waitForFunction run in the browser, where these exist; the
// test project has no DOM types.
declare const document: Any;

let redis: TestRedis;
let nodes: NodeProcess[] = [];
let consoles: string[] = [];
let browser: Browser;
let page: Page;
const clients: IIIClient[] = [];
/** demo::flaky fails until `fixed`: its job dies, is fixed, and is redriven from the page. */
let fixed = false;
const flakyDone: unknown[] = [];
let ticks = 0;

function client(node: NodeProcess, name: string): IIIClient {
  const c = registerWorker(`${node.url}?token=${TOKEN}`, {
    workerName: name,
    enableMetricsReporting: false,
    otel: { enabled: false },
  });
  clients.push(c);
  return c;
}

const CONFIG = `
workers:
  - name: iii-worker-manager
  - name: iii-state
    config: {adapter: {name: redis, config: {redis_url: "\${III_REDIS_URL}"}}}
  - name: iii-queue
    config:
      queue_configs: {dead: {max_retries: 1, backoff_ms: 10}}
      adapter: {name: redis, config: {redis_url: "\${III_REDIS_URL}"}}
  - name: iii-cron
    config: {adapter: {name: redis, config: {redis_url: "\${III_REDIS_URL}"}}}
  - name: iii-observability
`;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: the console browser test needs Debian's chromium (apt-get install -y chromium), or CHROMIUM_BIN pointing at one`,
    );
  redis = await startRedis();
  const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  const ports = await Promise.all([freePort(), freePort(), freePort()]);
  nodes = await Promise.all(
    [1, 2, 3].map((i) => {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-console-'));
      fs.writeFileSync(path.join(cwd, 'config.yaml'), CONFIG);
      return startNodeProcess({
        nodeId: `node-${i}`,
        redisUrl: redis.url,
        keyPrefix,
        cwd,
        args: ['--config', 'config.yaml'],
        // node-3's console is read-only.
        env: {
          III_WORKER_TOKEN: TOKEN,
          III_CONSOLE_PORT: String(ports[i - 1]),
          ...(i === 3 ? { III_CONSOLE_READ_ONLY: 'true' } : {}),
        },
      });
    }),
  );
  consoles = ports.map((p) => `http://127.0.0.1:${p}`);

  // demo::hello is a pool across node-1 and node-2.
  for (const [i, node] of [nodes[0], nodes[1]].entries()) {
    const w = client(node, `greeter-${i + 1}`);
    w.registerFunction('demo::hello', async (d: { name?: string }) => ({ message: `Hello, ${d.name ?? 'you'}!` }));
  }
  const w1 = clients[0];
  w1.registerFunction('demo::flaky', async (d: unknown) => {
    if (!fixed) throw new Error('flaky is broken until fixed');
    flakyDone.push(d);
    return { ok: true };
  });
  w1.registerFunction('demo::tick', async () => {
    ticks++;
    return null;
  });
  w1.registerTrigger({ type: 'cron', function_id: 'demo::tick', config: { expression: '0 0 0 * * *' } });
  // An every-second job, so that a tick has been fired by some node when the Triggers page opens.
  w1.registerFunction('demo::every', async () => null);
  w1.registerTrigger({ type: 'cron', function_id: 'demo::every', config: { expression: '* * * * * *' } });
  const caller = client(nodes[0], 'caller');
  await waitFor(
    async () => {
      const fns = (await caller.trigger({
        function_id: 'engine::functions::list',
        payload: { include_pool: true },
      })) as { functions: Array<{ function_id: string; pool: unknown[] }> };
      return (
        fns.functions.find((f) => f.function_id === 'demo::hello')?.pool.length === 2 &&
        fns.functions.some((f) => f.function_id === 'demo::tick')
      );
    },
    'demo::hello on two nodes',
    15_000,
  );
  await caller.trigger({
    function_id: 'state::set',
    payload: { scope: 'users', key: 'ada', value: { name: 'Ada Lovelace' } },
  });
  await caller.trigger({
    function_id: 'demo::flaky',
    payload: { order: 7 },
    action: TriggerAction.Enqueue({ queue: 'dead' }),
  });
  await waitFor(
    async () =>
      ((await caller.trigger({ function_id: 'engine::queue::dlq_messages', payload: { topic: 'dead' } })) as unknown[])
        .length === 1,
    'the flaky job in the DLQ',
    15_000,
  );
  for (let i = 0; i < 5; i++) await caller.trigger({ function_id: 'demo::hello', payload: { name: `n${i}` } });

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
}, 90_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  await redis?.stop();
});

async function open(hash: string, node = 0): Promise<void> {
  await page.goto(`${consoles[node]}/#/${hash}`);
  await page.waitForSelector(`main[data-page="${hash}"]`);
}

async function shot(name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS_DIR, `${name}.png`), fullPage: true });
}

test('a wrong token is refused (401, login form again); the right one signs in', async () => {
  const refused = await page.goto(`${consoles[0]}/?token=wrong`);
  expect(refused!.status()).toBe(401);
  await page.fill('input[name=token]', 'still-wrong');
  await page.click('button[type=submit]');
  await page.waitForSelector('text=Wrong token.');
  expect(await page.evaluate(async () => (await fetch('/api/session')).status)).toBe(401);
  await page.fill('input[name=token]', TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=session-node]');
  expect(await page.textContent('[data-testid=session-node]')).toBe('node-1');
});

test('Cluster: the three nodes, ready, with their workers and Redis ok; the live call counter moves while calls flow', async () => {
  await open('cluster');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=nodes] tbody tr').length === 3);
  const rows = await page.$$eval('[data-testid=nodes] tbody tr', (trs: Any[]) =>
    trs.map((tr) => (tr as { innerText: string }).innerText),
  );
  expect(rows.map((r) => r.split('\t')[0].trim())).toEqual(['node-1 (this node)', 'node-2', 'node-3']);
  for (const row of rows) expect(row).toContain('ready');
  expect(await page.textContent('[data-testid=redis]')).toBe('ok');
  await shot('cluster');

  const before = Number(await page.textContent('[data-testid=calls-total]'));
  const caller = clients[2];
  let flowing = true;
  const flow = (async () => {
    while (flowing) await caller.trigger({ function_id: 'demo::hello', payload: { name: 'live' } });
  })();
  try {
    // No reload: the number changes over the SSE feed.
    await page.waitForFunction(
      (b) => Number(document.querySelector('[data-testid=calls-total]')!.textContent) > b + 20,
      before,
      { timeout: 15_000 },
    );
  } finally {
    flowing = false;
    await flow;
  }
});

test('Functions & workers: the pool of demo::hello spans node-1 and node-2; the invoke form shows the result', async () => {
  // Calls made through node-3 show up in node-1's console: the figures are the cluster's.
  const onNode3 = client(nodes[2], 'figures-caller');
  for (let i = 0; i < 5; i++) await onNode3.trigger({ function_id: 'demo::hello', payload: {} });
  type Stats = { functions: Array<{ function_id: string; total: number; nodes: Array<{ node_id: string }> }> };
  const stats = await waitFor(
    async () => {
      const s = (await clients[0].trigger({ function_id: 'engine::functions::stats', payload: {} })) as Stats;
      const f = s.functions.find((x) => x.function_id === 'demo::hello');
      return f?.nodes.some((n) => n.node_id === 'node-3') ? f : undefined;
    },
    "node-3's figures published",
    10_000,
  );
  await open('functions');
  const row = page.locator('[data-function="demo::hello"]');
  await row.waitFor();
  const pool = await row.locator('td').nth(1).locator('.chip').allTextContents();
  expect(pool.sort()).toEqual(['greeter-1 @ node-1', 'greeter-2 @ node-2']);
  expect(Number(await row.locator('[data-testid=calls]').textContent())).toBeGreaterThanOrEqual(stats.total);
  expect(await row.locator('[data-testid=per-node]').innerText()).toContain('node-3: ');
  expect(await page.locator('[data-testid=workers]').innerText()).toContain('caller');
  await page.fill('input[name=function_id]', 'demo::hello');
  await page.fill('textarea[name=payload]', '{"name": "Grace"}');
  await page.click('[data-testid=invoke-form] button[type=submit]');
  await page.waitForSelector('[data-testid=invoke-result]');
  expect(await page.textContent('[data-testid=invoke-result]')).toContain('Hello, Grace!');
  await shot('functions');
  // The call's own trace, one click away.
  await page.click('[data-testid=invoke-trace]');
  await page.waitForSelector('main[data-page="traces"] [data-testid=waterfall] .span-bar');
  expect(await page.locator('[data-testid=waterfall]').innerText()).toContain('demo::hello');
});

test('Queues: the dead letter shows its error and attempts; Redrive from the page runs the real job again and empties the DLQ', async () => {
  await open('queues');
  const row = page.locator('[data-queue="dead"]');
  await row.waitFor();
  expect(await row.locator('[data-testid=dlq-depth]').textContent()).toBe('1');
  await row.locator('button').click();
  const letter = page.locator('[data-testid=dead-letters] tr[data-message]');
  await letter.waitFor();
  expect(await letter.innerText()).toContain('flaky is broken until fixed');
  await shot('queues');
  fixed = true;
  await letter.locator('[data-testid=redrive]').click();
  await page.waitForSelector('[data-testid=dlq-note]');
  await waitFor(() => flakyDone.length === 1, 'the redriven job to run', 10_000);
  expect(flakyDone).toEqual([{ order: 7 }]);
  const dlq = (await clients[2].trigger({
    function_id: 'engine::queue::dlq_messages',
    payload: { topic: 'dead' },
  })) as unknown[];
  expect(dlq).toEqual([]);
});

test('Triggers: the cron binding with its next fire time; Fire now calls the function', async () => {
  await open('triggers');
  const table = page.locator('[data-testid=bindings-cron]');
  await table.waitFor();
  const daily = table.locator('tr', { hasText: 'demo::tick' });
  const next = await daily.locator('[data-testid=next-fire]').textContent();
  expect(new Date(next!).getUTCHours()).toBe(0);
  // The every-second job: the node that fired its last tick (the same answer from every node).
  const every = table.locator('tr', { hasText: 'demo::every' });
  expect(['node-1', 'node-2', 'node-3']).toContain(
    (await every.locator('[data-testid=last-tick-node]').textContent())!.trim(),
  );
  await shot('triggers');
  await daily.locator('[data-testid=fire-now]').click();
  await page.waitForSelector('[data-testid=trigger-note]');
  await waitFor(() => ticks === 1, 'the fired cron tick', 5000);
});

test('State & streams: the users scope and its item; an edit from the page is stored', async () => {
  await open('state');
  await page.click('[data-testid=scopes] button:text("users")');
  await page.waitForSelector('[data-testid=state-items] >> text=Ada Lovelace');
  await page.fill('[data-testid=item-editor] input[name=scope]', 'users');
  await page.fill('[data-testid=item-editor] input[name=key]', 'grace');
  await page.fill('[data-testid=item-editor] textarea[name=value]', '{"name": "Grace Hopper"}');
  await page.click('[data-testid=item-editor] button[type=submit]');
  await page.waitForSelector('[data-testid=editor-note] >> text=Saved.');
  expect(await clients[2].trigger({ function_id: 'state::get', payload: { scope: 'users', key: 'grace' } })).toEqual({
    name: 'Grace Hopper',
  });
  await page.waitForSelector('[data-testid=state-items] >> text=Grace Hopper');
  await shot('state');
});

test('Traces & logs: filtered by function, one trace as a waterfall', async () => {
  await open('traces');
  await page.fill('[data-testid=trace-filter] input[name=name]', 'demo::hello');
  await page.click('[data-testid=trace-filter] button[type=submit]');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-testid=traces] tbody tr')];
    return rows.length > 0 && rows.every((r) => r.textContent!.includes('demo::hello'));
  });
  await page.locator('[data-testid=traces] tbody tr button').first().click();
  await page.waitForSelector('[data-testid=waterfall] .span-bar');
  expect(await page.locator('[data-testid=waterfall]').innerText()).toContain('demo::hello');
  await shot('traces');
});

test('Traces & logs: a trace across nodes is one waterfall, each span with the node that recorded it', async () => {
  // A worker on node-2, by hand: demo::relay calls demo::hello (greeter-2, on node-2) with the
  // traceparent it was called with, so node-2's span has its parent on node-1.
  const relay = await RawClient.connect(`${nodes[1]!.url}?token=${TOKEN}`);
  const relaying = new Map<string, string>();
  relay.socket.on('message', (data) => {
    const m = JSON.parse(String(data)) as Any;
    if (m.type === 'invokefunction' && m.function_id === 'demo::relay') {
      const nested = randomUUID();
      relaying.set(nested, m.invocation_id);
      relay.send({
        type: 'invokefunction',
        invocation_id: nested,
        function_id: 'demo::hello',
        data: { name: 'relay' },
        traceparent: m.traceparent,
      });
    } else if (m.type === 'invocationresult' && relaying.has(m.invocation_id)) {
      relay.send({
        type: 'invocationresult',
        invocation_id: relaying.get(m.invocation_id),
        function_id: 'demo::relay',
        result: m.result,
      });
    }
  });
  try {
    relay.send({ type: 'registerfunction', id: 'demo::relay' });
    await waitFor(
      async () =>
        ((await clients[0]!.trigger({ function_id: 'engine::functions::list', payload: {} })) as Any).functions.some(
          (f: Any) => f.function_id === 'demo::relay',
        ),
      'demo::relay seen from node-1',
      10_000,
    );
    expect(await clients[0]!.trigger({ function_id: 'demo::relay', payload: {} })).toEqual({
      message: 'Hello, relay!',
    });
    await open('traces');
    await page.fill('[data-testid=trace-filter] input[name=name]', 'demo::relay');
    await page.click('[data-testid=trace-filter] button[type=submit]');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-testid=traces] tbody tr')];
      return rows.length === 1 && rows[0].textContent!.includes('demo::relay');
    });
    // The list is the cluster's roots: node-2's span is not one (its parent is on node-1).
    expect(await page.locator('[data-testid=traces] tbody tr').innerText()).toContain('node-1');
    await page.locator('[data-testid=traces] tbody tr button').first().click();
    await page.waitForFunction(() => {
      const labels = [...document.querySelectorAll('[data-testid=waterfall] .span-label')].map((e) => e.textContent);
      return labels.length === 2;
    });
    const labels = await page.locator('[data-testid=waterfall] .span-label').allInnerTexts();
    // Nested: demo::hello (node-2) under demo::relay (node-1), in that order.
    expect(labels.map((l) => l.replace(/\s+/g, ' ').trim())).toEqual(['demo::relay node-1', 'demo::hello node-2']);
    const indent = await page
      .locator('[data-testid=waterfall] .span-label')
      .evaluateAll((els) => els.map((e: Any) => e.style.paddingLeft));
    expect(indent).toEqual(['0px', '14px']);
    await expect(page.locator('[data-testid=missing-nodes]').count()).resolves.toBe(0);
    await shot('traces-cluster');
  } finally {
    relay.close();
  }
});

test('read-only console (node-3): no change buttons, and a change sent anyway is refused with 403', async () => {
  await page.goto(`${consoles[2]}/?token=${TOKEN}`);
  await page.waitForSelector('[data-testid=read-only]');
  await open('functions', 2);
  await page.locator('[data-function="demo::hello"]').waitFor();
  expect(await page.locator('[data-testid=invoke-form]').count()).toBe(0);
  await open('state', 2);
  await page.waitForSelector('[data-testid=scopes] button');
  expect(await page.locator('[data-testid=item-editor]').count()).toBe(0);
  const refused = await page.evaluate(async () => {
    const res = await fetch('/api/call', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ function_id: 'state::set', payload: { scope: 'users', key: 'ada', value: 'x' } }),
    });
    return { status: res.status, body: (await res.json()) as Any };
  });
  expect(refused.status).toBe(403);
  expect(refused.body.error.message).toMatch(/read-only/);
  expect(await clients[2].trigger({ function_id: 'state::get', payload: { scope: 'users', key: 'ada' } })).toEqual({
    name: 'Ada Lovelace',
  });
});

test('Cluster: a node that dies is shown gone, live, while the others stay ready', async () => {
  await page.goto(`${consoles[0]}/#/cluster`);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=nodes] tbody tr').length === 3);
  // Its worker leaves first, so it does not retry a dead port for the rest of the file.
  await clients[1].shutdown();
  await nodes[1].kill('SIGKILL');
  // Membership drops it once its alive key expires (1 s); the page keeps it, marked gone.
  await page.waitForSelector('[data-node="node-2"] .state.gone', { timeout: 15_000 });
  expect(await page.textContent('[data-testid=node-count]')).toBe('2');
  expect(await page.textContent('[data-node="node-3"] .state')).toBe('ready');
});
