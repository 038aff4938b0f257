import type { EngineModule, ModuleHost } from '../module';

/** `iii-cron` (iii-modules.md). Placeholder until the module lands. */
export class CronModule implements EngineModule {
  readonly name = 'iii-cron';

  constructor(readonly config: Record<string, unknown>) {}

  async start(_host: ModuleHost): Promise<void> {}

  async stop(): Promise<void> {}
}
