import type { Json } from '../../protocol/messages';

/** The latest report of one SDK metric (from an `MTRC` frame), as `engine::metrics::list` returns it. */
export interface SdkMetric {
  name: string;
  /** The OTLP data kind: gauge, sum, histogram, exponentialHistogram or summary. */
  type: string;
  description: string;
  unit: string;
  /** The OTLP data points as the SDK sent them. */
  data_points: Json[];
  service_name: string;
  worker_id: string | null;
  received_at_unix_nano: number;
}

/** The latest report per metric name; beyond `capacity` names the least recently reported goes. */
export class SdkMetrics {
  private readonly latest = new Map<string, SdkMetric>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.latest.size;
  }

  put(metric: SdkMetric): void {
    // Re-inserting moves the name to the end, so the first key is always the stalest.
    this.latest.delete(metric.name);
    this.latest.set(metric.name, metric);
    if (this.latest.size > this.capacity) this.latest.delete(this.latest.keys().next().value as string);
  }

  list(name?: string): SdkMetric[] {
    const all = [...this.latest.values()];
    return name === undefined ? all : all.filter((m) => m.name === name);
  }
}
