import { Gauge, type Registry } from 'prom-client';
import type { QueueAdapter, QueueCounts } from './adapters/adapter';
import type { QueueCatalog } from './catalog';

const DEPTH = 'iii_queue_depth';
const DLQ_SIZE = 'iii_queue_dlq_size';

/**
 * `iii_queue_depth{queue}` (waiting + delayed messages) and `iii_queue_dlq_size{queue}` per named
 * queue or topic, computed when scraped. Returns the function that removes them again.
 */
export function registerQueueGauges(registry: Registry, catalog: QueueCatalog, adapter: QueueAdapter): () => void {
  /** Sets one value per catalog entry, summed over the entry's adapter queues. */
  const fill = async (gauge: Gauge<'queue'>, figure: (counts: QueueCounts) => number): Promise<void> => {
    gauge.reset();
    for (const entry of catalog.all()) {
      try {
        let total = 0;
        for (const queue of entry.queues) total += figure(await adapter.counts(queue));
        gauge.set({ queue: entry.name }, total);
      } catch {
        // The backend is unreachable (Redis down): leave this queue out rather than fail the whole scrape.
      }
    }
  };
  new Gauge({
    name: DEPTH,
    help: 'Messages waiting or backing off, per named queue or durable topic.',
    labelNames: ['queue'] as const,
    registers: [registry],
    collect() {
      return fill(this, (c) => c.waiting + c.delayed);
    },
  });
  new Gauge({
    name: DLQ_SIZE,
    help: 'Dead letters, per named queue or durable topic.',
    labelNames: ['queue'] as const,
    registers: [registry],
    collect() {
      return fill(this, (c) => c.deadLetters);
    },
  });
  return () => {
    registry.removeSingleMetric(DEPTH);
    registry.removeSingleMetric(DLQ_SIZE);
  };
}
