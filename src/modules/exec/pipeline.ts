import type { Logger } from '../../observability/logger';
import { CommandProcess, type CommandExit } from './command-process';
import { HEALTHY_RUN_MS, RestartBackoff } from './restart-backoff';

export interface PipelineOptions {
  /** Run in order; each but the last must exit 0; the last is kept running. At least one. */
  commands: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logger: Logger;
}

/** How one pass over the commands ended. */
type PassResult =
  | { kind: 'interrupted' } // restart() or stop() cut it short
  | { kind: 'step_failed'; command: string; exit: CommandExit }
  | { kind: 'exited'; command: string; exit: CommandExit };

/**
 * The `exec` commands of iii-exec, supervised. A pass runs them in order; a command other than
 * the last that does not exit 0 ends the pass, and after a backoff the commands run again from
 * the first. The last one is the app's long-running worker: when it exits, for any reason, it
 * alone is started again after the backoff (the steps before it already did their job). The
 * backoff doubles per failure in a row and starts over once the last command ran HEALTHY_RUN_MS.
 * `restart()` (a watched file changed) stops what runs and starts a pass at once.
 */
export class ExecPipeline {
  private readonly backoff = new RestartBackoff();
  private current: CommandProcess | undefined;
  private supervising: Promise<void> | undefined;
  private restartPending = false;
  private stopping = false;
  /** Ends the backoff pause early (restart or stop). */
  private wake: (() => void) | undefined;

  constructor(private readonly options: PipelineOptions) {
    if (options.commands.length === 0) throw new Error('iii-exec: `exec` needs at least one command');
  }

  start(): void {
    this.supervising ??= this.supervise();
  }

  /** Runs the commands again from the first, now: what runs is stopped, a pending backoff cut short. */
  restart(): void {
    if (this.stopping) return;
    this.restartPending = true;
    this.wake?.();
    void this.current?.terminate();
  }

  /** Stops the running command's whole process group (SIGTERM, then SIGKILL) and the supervision. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.current?.terminate();
    await this.supervising;
  }

  /** SIGKILL to the running command's group, synchronously: the engine process is exiting without a stop(). */
  killNow(): void {
    this.stopping = true;
    this.current?.killNow();
  }

  private async supervise(): Promise<void> {
    const last = this.options.commands.length - 1;
    let from = 0;
    while (!this.stopping) {
      if (this.restartPending) {
        this.restartPending = false;
        from = 0;
        this.backoff.reset();
      }
      const result = await this.runPass(from);
      if (result.kind === 'interrupted') continue;
      if (result.kind === 'exited' && result.exit.ranMs >= HEALTHY_RUN_MS) this.backoff.reset();
      const delayMs = this.backoff.next();
      this.report(result, delayMs);
      from = result.kind === 'exited' ? last : 0;
      await this.pause(delayMs);
    }
  }

  private async runPass(from: number): Promise<PassResult> {
    const { commands } = this.options;
    for (let i = from; i < commands.length; i++) {
      if (this.stopping || this.restartPending) return { kind: 'interrupted' };
      const command = commands[i];
      const keptRunning = i === commands.length - 1;
      const logger = this.options.logger.child({ command });
      const step = new CommandProcess(command, { env: this.options.env, cwd: this.options.cwd, logger });
      this.current = step;
      logger.info(
        { pid: step.pid, step: `${i + 1}/${commands.length}` },
        keptRunning ? `iii-exec: started "${command}" (kept running)` : `iii-exec: running "${command}"`,
      );
      const exit = await step.done;
      this.current = undefined;
      if (this.stopping || this.restartPending) return { kind: 'interrupted' };
      if (keptRunning) return { kind: 'exited', command, exit };
      if (exit.code !== 0) return { kind: 'step_failed', command, exit };
    }
    throw new Error('unreachable: the last command always ends the pass');
  }

  private report(result: Exclude<PassResult, { kind: 'interrupted' }>, delayMs: number): void {
    const { command, exit } = result;
    const how =
      exit.signal !== null
        ? `was killed by ${exit.signal}`
        : exit.code === null
          ? 'could not start'
          : `exited with code ${exit.code}`;
    const fields = { command, code: exit.code, signal: exit.signal, ranMs: exit.ranMs, retryInMs: delayMs };
    if (result.kind === 'step_failed') {
      this.options.logger.error(
        fields,
        `iii-exec: "${command}" ${how}; running the commands again from the first in ${delayMs} ms`,
      );
    } else {
      this.options.logger.warn(
        fields,
        `iii-exec: "${command}" ${how} after ${exit.ranMs} ms; starting it again in ${delayMs} ms`,
      );
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopping || this.restartPending) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
