import { fork, type ChildProcess } from 'node:child_process';

/** Every IPC message between the runner and a bench child has a `type`. */
export interface IpcMessage {
  type: string;
}

export interface ForkOptions {
  /** Label used in error messages. */
  name: string;
  args?: string[];
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * A forked bench process (compiled JS under dist/bench) that the runner talks to over IPC.
 * Messages are queued until someone waits for them; `stop()` asks politely then SIGKILLs, so a
 * run never leaves a child behind.
 */
export class BenchChild<Out extends IpcMessage = IpcMessage> {
  private readonly queue: Out[] = [];
  private waiters: { type: string; resolve: (m: Out) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] =
    [];
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<void>;
  private failure: Error | undefined;

  private constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    process.on('message', (message: Out) => {
      if (message.type === 'error') {
        const text = (message as unknown as { message?: string }).message ?? 'unknown error';
        const error = new Error(`${this.name} reported: ${text}`);
        if (this.waiters.length === 0) this.failure = error;
        for (const waiter of this.waiters) {
          clearTimeout(waiter.timer);
          waiter.reject(error);
        }
        this.waiters = [];
        return;
      }
      const index = this.waiters.findIndex((w) => w.type === message.type);
      if (index >= 0) {
        const [waiter] = this.waiters.splice(index, 1);
        clearTimeout(waiter.timer);
        waiter.resolve(message);
      } else {
        this.queue.push(message);
      }
    });
    this.exitPromise = new Promise((resolve) => {
      process.once('exit', (code, signal) => {
        this.exited = { code, signal };
        for (const waiter of this.waiters) {
          clearTimeout(waiter.timer);
          waiter.reject(
            new Error(
              `${this.name} exited (code ${code}, signal ${signal}) while the runner waited for "${waiter.type}"`,
            ),
          );
        }
        this.waiters = [];
        resolve();
      });
    });
  }

  static fork<Out extends IpcMessage>(modulePath: string, options: ForkOptions): BenchChild<Out> {
    const child = fork(modulePath, options.args ?? [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: options.execArgv ?? [],
      env: { ...process.env, ...options.env },
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    return new BenchChild<Out>(options.name, child);
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  send<T extends IpcMessage>(message: T): void {
    if (this.exited || !this.process.connected) throw new Error(`${this.name} is not running`);
    this.process.send(message);
  }

  /** Resolves with the next message of `type` (queued or future). */
  next<T extends Out>(type: T['type'], timeoutMs: number): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const index = this.queue.findIndex((m) => m.type === type);
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0] as T);
    if (this.exited)
      return Promise.reject(
        new Error(`${this.name} has exited (code ${this.exited.code}, signal ${this.exited.signal})`),
      );
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`${this.name}: no "${type}" message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push({ type, resolve: resolve as (m: Out) => void, reject, timer });
    });
  }

  /** Sends `{type:'stop'}` and waits for exit; SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    try {
      if (this.process.connected) this.process.send({ type: 'stop' });
    } catch {
      // already disconnecting: fall through to the wait / kill below
    }
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }
}

/** Children still running: killed if the runner itself goes down. */
const live = new Set<ChildProcess>();

export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** Child side: send a message to the runner. */
export function toParent<T extends IpcMessage>(message: T): void {
  process.send?.(message);
}

/**
 * Child side: route runner messages to `handler`; `cpu` is answered here (every child's CPU time);
 * `stop` calls `onStop` then exits. The child
 * also exits when the IPC channel goes away (runner crashed or was killed), so no orphans.
 */
export function serveParent(handler: (message: IpcMessage) => void | Promise<void>, onStop: () => Promise<void>): void {
  if (!process.send) throw new Error('this module is a bench child: run it through `npm run bench`');
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(code), 3000);
    force.unref();
    try {
      await onStop();
    } finally {
      process.exit(code);
    }
  };
  process.on('message', (message: IpcMessage) => {
    if (message.type === 'stop') {
      void stop(0);
      return;
    }
    // Every child tells its CPU time so far (process.cpuUsage, µs): the runner prices calls with it.
    if (message.type === 'cpu') {
      const usage = process.cpuUsage();
      toParent({ type: 'cpu', userUs: usage.user, systemUs: usage.system });
      return;
    }
    Promise.resolve(handler(message)).catch((err: unknown) => {
      toParent({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    });
  });
  process.on('disconnect', () => void stop(0));
}
