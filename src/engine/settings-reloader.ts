import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError } from '../config/errors';
import { loadConfig } from '../config/load';
import { findWorker } from '../config/workers';
import type { Logger } from '../observability/logger';
import { CONFIGURATION_CHANGED, type Engine } from './engine';

/** Changes are taken in once the file (or the store) has been quiet this long, in ms. */
export const RELOAD_DEBOUNCE_MS = 300;

/**
 * Hot reload of one node: watches the config file (its directory, since editors replace files
 * by renaming) and listens for changes of workers' settings made through the configuration
 * module (which also sees edits of `./config/<worker>.yaml`). Each change loads the config
 * again, as at boot, and hands it to `Engine.applySettings`; what applied and what needs a
 * restart is logged, one line each. An invalid config is logged and changes nothing.
 */
export class SettingsReloader {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The reload running now, so reloads never overlap. */
  private running: Promise<void> = Promise.resolve();
  private readonly onConfigurationChange = (id: string): void => {
    if (findWorker(id)) this.schedule();
  };

  constructor(
    private readonly engine: Engine,
    private readonly path: string | undefined,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.engine.events.on(CONFIGURATION_CHANGED, this.onConfigurationChange);
    if (this.path === undefined) return;
    const file = basename(this.path);
    this.watcher = watch(dirname(resolve(this.path)), (_event, name) => {
      if (name?.toString() === file) this.schedule();
    });
    this.watcher.on('error', (err) =>
      this.logger.warn({ err, file: this.path }, 'watching the config file failed; edits now need a restart'),
    );
  }

  async stop(): Promise<void> {
    this.engine.events.off(CONFIGURATION_CHANGED, this.onConfigurationChange);
    this.watcher?.close();
    clearTimeout(this.timer);
    await this.running;
  }

  /** Loads the settings again and applies them (also what the debounced watchers call). */
  reload(): Promise<void> {
    this.running = this.running.then(() => this.apply());
    return this.running;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), RELOAD_DEBOUNCE_MS);
    this.timer.unref();
  }

  private async apply(): Promise<void> {
    const source = this.path ?? 'the built-in defaults';
    let next;
    try {
      // A node id left to chance would differ on every load: keep this node's.
      const env = { ...process.env, III_NODE_ID: process.env['III_NODE_ID'] || this.engine.nodeId };
      next = loadConfig({ ...(this.path === undefined ? {} : { path: this.path }), env }).config;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.logger.error(
        { config: source, reason: err.message },
        'the changed configuration is invalid; the running settings stay',
      );
      return;
    }
    try {
      const { applied, restart } = await this.engine.applySettings(next);
      for (const line of restart) this.logger.warn({ config: source }, line);
      if (applied.length > 0)
        this.logger.info({ config: source, applied }, `settings applied without a restart: ${applied.join(', ')}`);
    } catch (err) {
      this.logger.error({ err, config: source }, 'applying the changed configuration failed');
    }
  }
}
