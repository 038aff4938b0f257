import { bindingCall, BindingGroups } from '../../engine/binding-groups';
import type { Logger } from '../../observability/logger';
import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import { conditionPasses } from '../condition';
import { Input } from '../input';
import type { EngineModule, ModuleHost } from '../../engine/module';
import type { PubSubAdapter, Unsubscribe } from './adapters/adapter';
import { createPubSubAdapter } from './adapters/create';
import { readSubscription, SUBSCRIBE_CONFIG_SCHEMA, type Subscription } from './subscription';

const MODULE = 'iii-pubsub';

/** The original's code for a publish without a topic (to move into protocol/errors.ts). */
const TOPIC_NOT_SET = 'topic_not_set';

/**
 * `iii-pubsub` (iii-modules.md §10): `publish {topic, data}` hands `data` to every `subscribe`
 * binding of the topic, fire-and-forget, once per binding group (docs/PROTOCOL.md): the replicas
 * of a worker get each message once. Handlers get `data` itself, no envelope, no metadata.
 */
export class PubSubModule implements EngineModule {
  readonly name = MODULE;
  private adapter: PubSubAdapter | undefined;
  /** trigger id -> its subscription's remover. */
  private readonly subscriptions = new Map<string, Unsubscribe>();

  constructor(readonly config: Record<string, unknown>) {}

  async start(host: ModuleHost): Promise<void> {
    const adapter = createPubSubAdapter(this.config['adapter']);
    this.adapter = adapter;
    const logger = host.logger.child({ module: MODULE });

    host.registerFunction(
      MODULE,
      {
        id: 'publish',
        description: 'Publish data to every subscriber of a topic (fire-and-forget)',
        request_format: {
          type: 'object',
          properties: { topic: { type: 'string', minLength: 1 }, data: {} },
          required: ['topic', 'data'],
        },
      },
      async (payload) => {
        const { topic, data } = readPublish(payload);
        await adapter.publish(topic, data);
        return null;
      },
    );

    await host.registerTriggerType(
      MODULE,
      {
        id: 'subscribe',
        description: 'Calls a function with the data of every message published to a topic',
        trigger_request_format: SUBSCRIBE_CONFIG_SCHEMA,
      },
      new BindingGroups({
        registerTrigger: async (trigger) => {
          const subscription = readSubscription(trigger);
          await this.subscriptions.get(trigger.id)?.();
          const unsubscribe = await adapter.subscribe(
            subscription.topic,
            (data) => void deliver(host, logger, subscription, data),
          );
          this.subscriptions.set(trigger.id, unsubscribe);
        },
        unregisterTrigger: async (trigger) => {
          const unsubscribe = this.subscriptions.get(trigger.id);
          this.subscriptions.delete(trigger.id);
          await unsubscribe?.();
        },
      }),
    );
  }

  async stop(): Promise<void> {
    this.subscriptions.clear();
    await this.adapter?.close();
  }
}

function readPublish(payload: Json): { topic: string; data: Json } {
  const input = new Input('publish', payload);
  const topic = input.string('topic');
  if (topic === '') throw new EngineError(TOPIC_NOT_SET, 'publish needs a non-empty `topic`');
  // `data` must be present (null is a value), as in the original: a typo such as `payload:` fails loudly.
  if (!Object.prototype.hasOwnProperty.call(payload, 'data')) throw input.fail('missing field `data`');
  return { topic, data: input.raw('data') ?? null };
}

/** One delivery: the condition (if any) sees `data` as the handler would; failures are logged. */
async function deliver(host: ModuleHost, logger: Logger, subscription: Subscription, data: Json): Promise<void> {
  const { trigger } = subscription;
  try {
    if (!(await conditionPasses(host, subscription.conditionFunctionId, data))) return;
    await host.invoke(bindingCall(host.registry, trigger, data));
  } catch (err) {
    logger.warn(
      { err, trigger: trigger.id, functionId: trigger.function_id, topic: subscription.topic },
      'pubsub delivery failed',
    );
  }
}
