import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Logger } from '../../observability/logger';
import { LineSplitter } from './line-splitter';
import { groupAlive, signalGroup } from './process-group';

/** How long a command's process group gets between SIGTERM and SIGKILL, in milliseconds. */
export const TERM_GRACE_MS = 5000;
/** How long to wait for the group to vanish after SIGKILL before reporting it, in milliseconds. */
const KILL_WAIT_MS = 1000;
/** How often a group being stopped is looked at, in milliseconds. */
const GROUP_POLL_MS = 25;

export interface CommandExit {
  /** Exit code of the shell; null when it was killed by a signal or could not start. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From spawn to the shell's exit, in milliseconds. */
  ranMs: number;
}

export interface CommandOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Gets the command's output lines and its lifecycle messages (already tagged with the command). */
  logger: Logger;
}

/**
 * One command of the pipeline, run by `/bin/sh -c` as the leader of a process group of its own
 * (`detached`), so everything it starts can be signalled at once: `terminate()` sends SIGTERM to
 * the group, then SIGKILL after TERM_GRACE_MS. stdout and stderr lines go to the logger.
 * A process that leaves the group (setsid, a daemon that double-forks) is beyond reach.
 */
export class CommandProcess {
  /** The shell's pid, which is also the group's id; undefined when the spawn failed. */
  readonly pid: number | undefined;
  /**
   * Resolves once the shell has exited and nothing of its group is left running: members it
   * left behind are terminated the same way, so a command never outlives its own pipeline step.
   */
  readonly done: Promise<CommandExit>;
  private exited = false;
  /** Shell exited and group empty: its id may be reused, so it is never signalled again. */
  private ended = false;
  private terminating: Promise<void> | undefined;
  private readonly logger: Logger;

  constructor(
    readonly command: string,
    options: CommandOptions,
  ) {
    this.logger = options.logger;
    const startedAt = performance.now();
    const child = spawn('/bin/sh', ['-c', command], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env,
      cwd: options.cwd,
    });
    this.pid = child.pid;
    this.forward(child.stdout, 'stdout');
    this.forward(child.stderr, 'stderr');
    const exit = new Promise<Omit<CommandExit, 'ranMs'>>((resolve) => {
      // 'exit', not 'close': the pipes stay open as long as any grandchild holds them.
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => {
        this.logger.error({ err }, `iii-exec: could not start "${command}": ${err.message}`);
        resolve({ code: null, signal: null });
      });
    });
    this.done = exit.then(async (result) => {
      this.exited = true;
      const ranMs = Math.round(performance.now() - startedAt);
      if (this.pid !== undefined && groupAlive(this.pid)) await this.terminate();
      this.ended = true;
      return { ...result, ranMs };
    });
  }

  /** SIGTERM to the whole group, SIGKILL to what is left after TERM_GRACE_MS; resolves when it is gone. Idempotent. */
  terminate(): Promise<void> {
    this.terminating ??= this.stopGroup();
    return this.terminating;
  }

  /** SIGKILL to the whole group, now and synchronously: for a process that is exiting and cannot wait. */
  killNow(): void {
    if (this.pid !== undefined && !this.ended) signalGroup(this.pid, 'SIGKILL');
  }

  private async stopGroup(): Promise<void> {
    const pgid = this.pid;
    if (pgid === undefined) return;
    signalGroup(pgid, 'SIGTERM');
    if (await this.gone(pgid, TERM_GRACE_MS)) return;
    this.logger.warn(
      { pid: pgid, graceMs: TERM_GRACE_MS },
      `iii-exec: "${this.command}" still running ${TERM_GRACE_MS} ms after SIGTERM: killing its process group`,
    );
    signalGroup(pgid, 'SIGKILL');
    if (!(await this.gone(pgid, KILL_WAIT_MS))) {
      this.logger.error(
        { pid: pgid },
        `iii-exec: process group of "${this.command}" still present ${KILL_WAIT_MS} ms after SIGKILL`,
      );
    }
  }

  /** Waits up to `timeoutMs` for the shell's exit and the group's end; whether both happened. */
  private async gone(pgid: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (this.exited && !groupAlive(pgid)) {
        this.ended = true;
        return true;
      }
      if (performance.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_MS));
    }
  }

  private forward(stream: Readable, name: 'stdout' | 'stderr'): void {
    stream.setEncoding('utf8');
    const lines = new LineSplitter((line) => this.logger.info({ stream: name }, line));
    stream.on('data', (chunk: string) => lines.push(chunk));
    stream.on('end', () => lines.end());
    stream.on('error', () => undefined); // the process is gone; its exit is reported instead
  }
}
