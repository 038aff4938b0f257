import type { EngineModule, ModuleHost } from '../module';

/** `iii-stream` (iii-modules.md). Placeholder until the module lands. */
export class StreamModule implements EngineModule {
  readonly name = 'iii-stream';

  constructor(readonly config: Record<string, unknown>) {}

  async start(_host: ModuleHost): Promise<void> {}

  async stop(): Promise<void> {}
}
