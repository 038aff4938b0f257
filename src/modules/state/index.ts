import type { EngineModule, ModuleHost } from '../module';

/** `iii-state` (iii-modules.md). Placeholder until the module lands. */
export class StateModule implements EngineModule {
  readonly name = 'iii-state';

  constructor(readonly config: Record<string, unknown>) {}

  async start(_host: ModuleHost): Promise<void> {}

  async stop(): Promise<void> {}
}
