import type { Json } from '../../protocol/messages';
import { Input } from '../input';
import type { EngineModule, ModuleHost } from '../../engine/module';
import type { QueueAdapter } from './adapters/adapter';
import { createQueueAdapter } from './adapters';
import { QueueCatalog } from './catalog';
import { inspectionFunctions } from './dlq-functions';
import { DurableTopics } from './durable-topics';
import { registerQueueGauges } from './metrics';
import { NamedQueues } from './named-queues';
import { readSettings } from './settings';
import { SUBSCRIBER_TYPE } from './subscriber-config';
import { needsRestart } from '../reconfigure';

const MODULE = 'iii-queue';
/** How long `stop()` waits for deliveries in flight, in milliseconds. */
export const STOP_GRACE_MS = 5000;

/**
 * `iii-queue` (iii-modules.md §6): named function queues fed by the `enqueue` action
 * (`engine::queue::enqueue`), durable topics with fan-out (`durable:subscriber`,
 * `iii::durable::publish`), and dead-letter inspection and redrive.
 */
export class QueueModule implements EngineModule {
  readonly name = MODULE;
  private adapter: QueueAdapter | undefined;
  private named: NamedQueues | undefined;
  private maxMessageBytes = 0;
  private removeGauges: (() => void) | undefined;

  constructor(private config: Record<string, unknown>) {}

  async start(host: ModuleHost): Promise<void> {
    this.maxMessageBytes = host.config.limits.maxMessageBytes;
    const settings = readSettings(this.config, this.maxMessageBytes);
    const adapterBlock = this.config['adapter'] as { config?: Record<string, unknown> | null } | undefined;
    const adapter = createQueueAdapter(
      settings.adapterName,
      {
        deadLetterDropped: (queue, dropped) =>
          host.logger.warn(
            { queue, jobId: dropped.job.id, limit: settings.limits.maxDeadLetters },
            'dead-letter queue at max_dead_letters: oldest entry dropped',
          ),
      },
      { logger: host.logger, nodeId: host.nodeId, cluster: host.config.cluster, options: adapterBlock?.config ?? null },
    );
    this.adapter = adapter;
    const named = new NamedQueues(host, adapter, settings);
    this.named = named;
    await named.start();
    const topics = new DurableTopics(host, adapter, settings);
    const catalog = new QueueCatalog(named, topics, adapter.name);

    const fn = (id: string, description: string, handler: (input: Input) => Promise<Json>) =>
      host.registerFunction(MODULE, { id, description }, (data) => handler(new Input(id, data)));
    fn('engine::queue::enqueue', 'Put a message on a named queue (the enqueue action)', (input) =>
      named.enqueue(input),
    );
    fn('iii::durable::publish', 'Publish a message to a durable topic', (input) => topics.publish(input));
    for (const [id, [description, handler]] of Object.entries(inspectionFunctions(catalog, adapter))) {
      const inspect = adapter.inspect?.bind(adapter);
      if (inspect)
        host.registerFunction(MODULE, { id, description: `${description} (answered by the bridged engine)` }, (data) =>
          inspect(id, data),
        );
      else fn(id, description, handler);
    }
    await host.registerTriggerType(
      MODULE,
      { id: SUBSCRIBER_TYPE, description: 'Durable topic subscription with retries and a dead-letter queue' },
      topics,
    );
    this.removeGauges = registerQueueGauges(host.metrics.registry, catalog, adapter);
  }

  /** Hot reload: `queue_configs` applies live (see NamedQueues.reconfigure); the rest needs a restart. */
  async reconfigure(config: Record<string, unknown>): Promise<string[]> {
    const restart = needsRestart(this.config, config, ['queue_configs']);
    if (this.named && !restart.includes('queue_configs')) {
      const removed = await this.named.reconfigure(readSettings(config, this.maxMessageBytes).named);
      restart.push(...removed.map((name) => `queue_configs.${name} (removed)`));
    }
    this.config = { ...this.config, queue_configs: config['queue_configs'] };
    return restart;
  }

  async stop(): Promise<void> {
    this.removeGauges?.();
    await this.adapter?.close(STOP_GRACE_MS);
  }
}
