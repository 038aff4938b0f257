import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports';

const INSTALL_HINT =
  'redis-server is not installed. Tests that need Redis start a private redis-server on a free port; ' +
  'install it with `apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), or set REDIS_SERVER_BIN to its path.';

/** A private redis-server on a free loopback port, never a user's Redis on 6379. */
export interface TestRedis {
  /** `redis://127.0.0.1:<port>`, or `rediss://` with TLS; never carries the password. */
  url: string;
  port: number;
  /** The `requirepass` password, if one was set. */
  password?: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after `stop`), for outage tests. */
  restart(): Promise<void>;
  /** SIGSTOP: the server keeps its connections and answers nothing (a hung Redis), until `resume`. */
  pause(): void;
  resume(): void;
}

export interface StartRedisOptions {
  /** Clients must AUTH with this password (`requirepass`). */
  password?: string;
  /** Serve TLS only (no plain port) with these PEM files; clients need not present a certificate. */
  tls?: { cert: string; key: string; ca: string };
}

export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const bin = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';
  if (spawnSync(bin, ['--version']).error) throw new Error(INSTALL_HINT);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-redis-'));
  let child: ChildProcess | undefined;

  const listen = options.tls
    ? [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        options.tls.cert,
        '--tls-key-file',
        options.tls.key,
        '--tls-ca-cert-file',
        options.tls.ca,
        '--tls-auth-clients',
        'no',
      ]
    : ['--port', String(port)];
  const auth = options.password === undefined ? [] : ['--requirepass', options.password];

  const launch = async () => {
    const proc = spawn(
      bin,
      [...listen, ...auth, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    child = proc;
    await waitForPort(port, proc, 10_000, 'redis-server');
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGCONT'); // a paused server acts on SIGTERM only once it runs again
    proc.kill('SIGTERM');
    await exited;
  };

  await launch();
  const scheme = options.tls ? 'rediss' : 'redis';
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    ...(options.password === undefined ? {} : { password: options.password }),
    stop,
    restart: launch,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
  };
}
