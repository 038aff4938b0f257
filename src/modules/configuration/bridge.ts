import { randomUUID } from 'node:crypto';
import type { Logger } from '../../observability/logger';
import type { Json } from '../../protocol/messages';
import { DEFAULT_BRIDGE_TIMEOUT_MS } from '../bridge';
import { RemoteEngine } from '../bridge/remote-engine';
import type { ConfigurationApi, Registration } from './service';
import type { ConfigurationEvent, ConfigurationTriggers } from './triggers';

export interface BridgedConfigurationOptions {
  url: string;
  token?: string;
  nodeId: string;
  logger: Logger;
}

/**
 * The `bridge` adapter (`config.bridge_url`): every `configuration::*` call is made on another
 * engine, over a worker connection of this one, and its change events (made there or here) come
 * back through a `configuration` trigger bound there, so local `configuration` bindings fire,
 * once each. Values, schemas and validation are the other engine's; nothing is kept here.
 */
export class BridgedConfiguration implements ConfigurationApi {
  private readonly remote: RemoteEngine;
  private readonly eventsFunction: string;

  constructor(options: BridgedConfigurationOptions, triggers: ConfigurationTriggers) {
    this.remote = new RemoteEngine({
      url: options.url,
      ...(options.token ? { token: options.token } : {}),
      workerName: `configuration@${options.nodeId}`,
      logger: options.logger,
    });
    // Unique per engine process: two engines bridged to one remote must not pool their reports.
    this.eventsFunction = `iii-bridge::${options.nodeId}::configuration-events::${randomUUID()}`;
    this.remote.serve(
      this.eventsFunction,
      async (payload) => {
        triggers.mirror(payload as unknown as ConfigurationEvent);
        return undefined;
      },
      'Configuration changes of the bridged engine, mirrored',
    );
    this.remote.bind(this.eventsFunction, 'configuration', this.eventsFunction, {});
    this.remote.start();
  }

  async close(): Promise<void> {
    await this.remote.close();
  }

  register({ id, name, description, schema, metadata, initialValue }: Registration): Promise<Json> {
    const data: Record<string, Json> = { id, name, description, schema };
    if (metadata !== undefined) data['metadata'] = metadata;
    if (initialValue !== undefined) data['initial_value'] = initialValue;
    return this.call('configuration::register', data);
  }

  set(id: string, value: Json): Promise<Json> {
    return this.call('configuration::set', { id, value });
  }

  get(id: string, raw: boolean): Promise<Json> {
    return this.call('configuration::get', { id, raw });
  }

  schema(id: string): Promise<Json> {
    return this.call('configuration::schema', { id });
  }

  list(): Promise<Json> {
    return this.call('configuration::list', {});
  }

  private async call(functionId: string, data: Json): Promise<Json> {
    return (await this.remote.call(functionId, data, DEFAULT_BRIDGE_TIMEOUT_MS)) ?? null;
  }
}
