import { localUrl } from '../../cluster/advertise';
import type { EngineModule, ModuleHost } from '../../engine/module';
import { FileWatcher } from './file-watcher';
import { ExecPipeline } from './pipeline';
import { parseWatchPattern } from './watch-pattern';

const MODULE = 'iii-exec';

/**
 * `iii-exec` (iii-modules.md §12): runs the app's own processes. `exec` commands run in order
 * once the engine takes workers; the last is kept running and restarted with backoff (see
 * ExecPipeline); a change to a file matching `watch` runs the commands again. Children inherit
 * the engine's environment plus `III_URL` (this engine's first worker listener) unless it is set,
 * so an iii-sdk worker started here connects to this engine. On stop their process groups get
 * SIGTERM, then SIGKILL. In cluster mode every node runs its own.
 */
export class ExecModule implements EngineModule {
  readonly name = MODULE;
  private pipeline: ExecPipeline | undefined;
  private watcher: FileWatcher | undefined;
  private onReady: (() => void) | undefined;
  private host: ModuleHost | undefined;
  /**
   * The children are in process groups of their own, so a terminal's Ctrl-C does not reach them
   * and they would outlive an engine that exits without stop() (a second signal, process.exit):
   * on the way out they get SIGKILL.
   */
  private readonly onExit = (): void => this.pipeline?.killNow();

  constructor(readonly config: Record<string, unknown>) {}

  async start(host: ModuleHost): Promise<void> {
    const logger = host.logger.child({ module: MODULE });
    const commands = this.config['exec'] as string[];
    const globs = (this.config['watch'] as string[] | undefined) ?? [];
    const cwd = process.cwd();
    this.host = host;
    // The port is known, and workers are let in, only once the engine is ready.
    this.onReady = () => {
      const listener = host.config.listeners[0];
      const env = { ...process.env };
      if (listener && !env['III_URL']) env['III_URL'] = localUrl(listener.host, host.port, listener.tls !== undefined);
      const pipeline = new ExecPipeline({ commands, env, cwd, logger });
      this.pipeline = pipeline;
      if (globs.length > 0) {
        this.watcher = new FileWatcher(
          globs.map((glob) => parseWatchPattern(glob, cwd)),
          (file) => {
            logger.info({ file }, `iii-exec: ${file} changed; running the commands again`);
            pipeline.restart();
          },
          logger,
        );
        this.watcher.start();
      }
      pipeline.start();
    };
    host.events.once('ready', this.onReady);
    process.once('exit', this.onExit);
  }

  async stop(): Promise<void> {
    if (this.onReady) this.host?.events.off('ready', this.onReady);
    this.watcher?.close();
    await this.pipeline?.stop();
    // Only now: the process may exit while the stop waits (a second signal).
    process.off('exit', this.onExit);
  }
}
