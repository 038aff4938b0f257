import type { EngineModule, ModuleHost } from '../module';

/** `iii-http` (iii-modules.md). Placeholder until the module lands. */
export class HttpModule implements EngineModule {
  readonly name = 'iii-http';

  constructor(readonly config: Record<string, unknown>) {}

  async start(_host: ModuleHost): Promise<void> {}

  async stop(): Promise<void> {}
}
