import type { EngineModule, ModuleHost } from '../module';

/** `iii-queue` (iii-modules.md). Placeholder until the module lands. */
export class QueueModule implements EngineModule {
  readonly name = 'iii-queue';

  constructor(readonly config: Record<string, unknown>) {}

  async start(_host: ModuleHost): Promise<void> {}

  async stop(): Promise<void> {}
}
