import type { EngineModule, ModuleHost } from '../module';

/** `iii-pubsub` (iii-modules.md). Placeholder until the module lands. */
export class PubSubModule implements EngineModule {
  readonly name = 'iii-pubsub';

  constructor(readonly config: Record<string, unknown>) {}

  async start(_host: ModuleHost): Promise<void> {}

  async stop(): Promise<void> {}
}
