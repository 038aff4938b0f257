import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'amqplib';
import { freePort, waitForPort } from './ports';

const INSTALL_HINT =
  'rabbitmq-server is not installed. Tests of the RabbitMQ queue adapter start a private broker on free ports; ' +
  'install it with `apt-get install -y rabbitmq-server` (Debian/Ubuntu; it brings Erlang), or set RABBITMQ_SERVER_BIN ' +
  'to the rabbitmq-server script of an installation (not the systemd wrapper in /usr/sbin).';

/** The foreground start script of Debian's package; /usr/sbin/rabbitmq-server would switch user. */
const DEFAULT_BIN = '/usr/lib/rabbitmq/bin/rabbitmq-server';
/** How long a broker may take to boot (Erlang + RabbitMQ on a busy 2-core machine), in ms. */
const BOOT_TIMEOUT_MS = 60_000;
/** How long a graceful stop may take before the broker is killed, in ms. */
const STOP_TIMEOUT_MS = 15_000;

/** A private RabbitMQ node: own name, ports, epmd, data and log dirs; never the system's broker. */
export interface TestRabbit {
  url: string;
  port: number;
  /** Stops the broker (SIGTERM, then SIGKILL after 15 s) and waits for it to exit; data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data (after `stop`): durable queues survive. */
  restart(): Promise<void>;
  /** Stops the broker and its epmd, and removes its files. */
  dispose(): Promise<void>;
}

export async function startRabbit(): Promise<TestRabbit> {
  const bin = process.env['RABBITMQ_SERVER_BIN'] ?? DEFAULT_BIN;
  if (!fs.existsSync(bin) || !commandExists('epmd')) throw new Error(INSTALL_HINT);
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-rabbit-'));
  const file = (name: string, content: string) => {
    const at = path.join(dir, name);
    fs.writeFileSync(at, content);
    return at;
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The Erlang cookie goes to $HOME: keep it in the temp dir, not in the user's home.
    HOME: dir,
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_NODENAME: `iii-test-${port}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbit.pid'),
    RABBITMQ_CONF_ENV_FILE: file('rabbitmq-env.conf', ''),
    RABBITMQ_CONFIG_FILE: file('rabbitmq.conf', ''),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: file('enabled_plugins', '[].\n'),
  };
  // Our own epmd in the foreground: the one Erlang would start by itself daemonizes and outlives us.
  const epmd = spawn('epmd', ['-port', String(epmdPort)], { env, stdio: 'ignore' });
  await waitForPort(epmdPort, epmd, 10_000, 'epmd');
  let broker: ChildProcess | undefined;

  const launch = async () => {
    // Its own process group, so a stop reaches the Erlang VM and its helpers.
    const proc = spawn(bin, [], { env, stdio: 'ignore', detached: true });
    broker = proc;
    try {
      await waitForBroker(`amqp://guest:guest@127.0.0.1:${port}`, proc);
    } catch (err) {
      await stopBroker(proc);
      throw new Error(`${(err as Error).message}; its logs are in ${path.join(dir, 'log')}`);
    }
  };
  const stop = async () => {
    const proc = broker;
    broker = undefined;
    if (proc) await stopBroker(proc);
  };
  const dispose = async () => {
    await stop();
    const exited = new Promise((resolve) => epmd.once('exit', resolve));
    if (epmd.exitCode === null) {
      epmd.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    await launch();
  } catch (err) {
    await dispose().catch(() => undefined);
    throw err;
  }
  return { url: `amqp://guest:guest@127.0.0.1:${port}`, port, stop, restart: launch, dispose };
}

function commandExists(name: string): boolean {
  return (process.env['PATH'] ?? '').split(path.delimiter).some((d) => fs.existsSync(path.join(d, name)));
}

async function stopBroker(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  signalGroup(proc, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(proc, 'SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
  // The script exits once the VM has; helpers left in the group (erl_child_setup) go with it.
  signalGroup(proc, 'SIGKILL');
}

function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-proc.pid!, signal);
  } catch {
    // The group is gone already.
  }
}

/** Waits until an AMQP connection succeeds (the listener opens last in RabbitMQ's boot). */
async function waitForBroker(url: string, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + BOOT_TIMEOUT_MS;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`rabbitmq-server exited with code ${proc.exitCode} while booting`);
    try {
      const conn = await connect(url);
      await conn.close();
      return;
    } catch {
      if (Date.now() > deadline)
        throw new Error(`rabbitmq-server did not accept AMQP connections within ${BOOT_TIMEOUT_MS / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
