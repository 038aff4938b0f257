import { Ring } from './ring';
import type { SpanStatusText, StoredSpan } from './stored-span';

export interface SpanQuery {
  traceIds?: ReadonlySet<string>;
  serviceName?: string;
  /** Case-insensitive substring of the span name. */
  name?: string;
  status?: SpanStatusText;
  minDurationMs?: number;
  maxDurationMs?: number;
  /** Unix nanoseconds, inclusive, on the span's start. */
  startTime?: number;
  endTime?: number;
  includeInternal: boolean;
  /** Match every span, not only roots. */
  searchAllSpans: boolean;
  sortBy: 'start_time' | 'duration' | 'name';
  sortOrder: 'asc' | 'desc';
  offset: number;
  limit: number;
}

export interface SpanTreeNode extends StoredSpan {
  children: SpanTreeNode[];
}

/** Spans of the engine's own functions (`engine::*`): hidden from lists unless asked for. */
export function isInternalSpanName(name: string): boolean {
  return name.startsWith('engine::');
}

/**
 * The memory exporter: the newest `capacity` spans, engine and SDK alike. A span counts as a
 * root when it has no parent or its parent is not in the store (a caller that exports nothing).
 */
export class SpanStore {
  private readonly ring: Ring<StoredSpan>;

  constructor(capacity: number) {
    this.ring = new Ring(capacity);
  }

  get size(): number {
    return this.ring.size;
  }

  add(span: StoredSpan): void {
    this.ring.push(span);
  }

  clear(): void {
    this.ring.clear();
  }

  list(query: SpanQuery): { spans: StoredSpan[]; total: number } {
    const all = [...this.ring];
    const ids = new Set(all.map((s) => s.span_id));
    const matches = all.filter(
      (s) => (query.searchAllSpans || s.parent_span_id === undefined || !ids.has(s.parent_span_id)) && matchesQuery(s, query),
    );
    matches.sort(comparator(query));
    return { spans: matches.slice(query.offset, query.offset + query.limit), total: matches.length };
  }

  /** The spans of one trace as trees, roots oldest first. */
  tree(traceId: string): SpanTreeNode[] {
    const nodes = new Map<string, SpanTreeNode>();
    for (const span of this.ring) {
      if (span.trace_id === traceId) nodes.set(span.span_id, { ...span, children: [] });
    }
    const roots: SpanTreeNode[] = [];
    for (const node of nodes.values()) {
      const parent = node.parent_span_id === undefined ? undefined : nodes.get(node.parent_span_id);
      if (parent) parent.children.push(node);
      else roots.push(node);
    }
    const byStart = (a: SpanTreeNode, b: SpanTreeNode) => a.start_time_unix_nano - b.start_time_unix_nano;
    for (const node of nodes.values()) node.children.sort(byStart);
    return roots.sort(byStart);
  }
}

function matchesQuery(s: StoredSpan, q: SpanQuery): boolean {
  if (!q.includeInternal && isInternalSpanName(s.name)) return false;
  if (q.traceIds && !q.traceIds.has(s.trace_id)) return false;
  if (q.serviceName !== undefined && s.service_name.toLowerCase() !== q.serviceName.toLowerCase()) return false;
  if (q.name !== undefined && !s.name.toLowerCase().includes(q.name.toLowerCase())) return false;
  if (q.status !== undefined && s.status !== q.status) return false;
  if (q.minDurationMs !== undefined && s.duration_ms < q.minDurationMs) return false;
  if (q.maxDurationMs !== undefined && s.duration_ms > q.maxDurationMs) return false;
  if (q.startTime !== undefined && s.start_time_unix_nano < q.startTime) return false;
  if (q.endTime !== undefined && s.start_time_unix_nano > q.endTime) return false;
  return true;
}

function comparator(q: SpanQuery): (a: StoredSpan, b: StoredSpan) => number {
  const sign = q.sortOrder === 'asc' ? 1 : -1;
  const key = (s: StoredSpan): number | string => (q.sortBy === 'duration' ? s.duration_ms : q.sortBy === 'name' ? s.name : s.start_time_unix_nano);
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return sign * (ka < kb ? -1 : ka > kb ? 1 : 0);
  };
}
