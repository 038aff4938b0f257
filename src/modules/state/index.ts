import { BindingGroups } from '../../engine/binding-groups';
import type { EngineModule, ModuleHost } from '../../engine/module';
import { createStateAdapter, type StateAdapter } from './adapters';
import { readStateConfig, type StateConfig } from './config';
import { registerStateFunctions } from './functions';
import { STATE_EVENT_SCHEMA, STATE_TRIGGER_CONFIG_SCHEMA } from './trigger-config';
import { StateTriggers } from './triggers';

const MODULE = 'iii-state';

/**
 * `iii-state` (iii-modules.md §8): scoped key/value storage behind `state::*` functions, with
 * the `state` trigger type firing on every write made through this node.
 */
export class StateModule implements EngineModule {
  readonly name = MODULE;
  private readonly settings: StateConfig;
  private adapter: StateAdapter | undefined;
  private triggers: StateTriggers | undefined;

  constructor(readonly config: Record<string, unknown>) {
    this.settings = readStateConfig(config);
  }

  async start(host: ModuleHost): Promise<void> {
    // The adapter opens first: an unknown backend or unreadable data fails before anything is registered.
    const adapter = createStateAdapter(this.settings, {
      logger: host.logger,
      nodeId: host.nodeId,
      cluster: host.config.cluster,
    });
    await adapter.open();
    this.adapter = adapter;
    const triggers = new StateTriggers(host, this.settings.triggersEnabled, adapter.watch !== undefined);
    adapter.watch?.((event) => triggers.mirror(event));
    this.triggers = triggers;
    registerStateFunctions({ host, adapter, triggers, maxValueBytes: this.settings.maxValueBytes });
    await host.registerTriggerType(
      MODULE,
      {
        id: 'state',
        description:
          'Fires on state::set, state::update and state::delete in this node; config {scope?, key?, condition_function_id?}',
        trigger_request_format: STATE_TRIGGER_CONFIG_SCHEMA,
        call_request_format: STATE_EVENT_SCHEMA,
      },
      new BindingGroups(triggers),
    );
  }

  async stop(): Promise<void> {
    this.triggers?.clear();
    await this.adapter?.close();
    this.adapter = undefined;
  }
}
