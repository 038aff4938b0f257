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
  /** Every pair must hold: the span's attribute (or resource attribute) `key`, as text, is `value`. */
  attributes?: ReadonlyArray<readonly [string, string]>;
  /** A span matching any entry is left out: `[key, value]` as above, or `[key]` for "has the key". */
  excludeAttributes?: ReadonlyArray<readonly [string, string?]>;
  sortBy: 'start_time' | 'duration' | 'name';
  sortOrder: 'asc' | 'desc';
  offset: number;
  limit: number;
}

export interface GroupQuery {
  attribute: string;
  /** Only spans that started at or after this, unix milliseconds. */
  sinceMs?: number;
  limit: number;
  includeInternal: boolean;
  /** The group's label: the first value of this attribute among its spans (else the value). */
  labelAttribute?: string;
}

export interface SpanGroup {
  value: string;
  label: string;
  trace_ids: string[];
  span_count: number;
  /** Unix milliseconds: the first span's start and the last span's end. */
  first_seen_ms: number;
  last_seen_ms: number;
  /** last_seen_ms - first_seen_ms. */
  duration_ms: number;
  error_count: number;
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
      (s) =>
        (query.searchAllSpans || s.parent_span_id === undefined || !ids.has(s.parent_span_id)) &&
        matchesQuery(s, query),
    );
    matches.sort(comparator(query));
    return { spans: matches.slice(query.offset, query.offset + query.limit), total: matches.length };
  }

  /** Spans by the value of one attribute, the group seen last first (`engine::traces::group_by`). */
  groupBy(query: GroupQuery): SpanGroup[] {
    const groups = new Map<string, SpanGroup & { traces: Set<string> }>();
    const sinceNs = query.sinceMs === undefined ? undefined : query.sinceMs * 1e6;
    for (const span of this.ring) {
      if (!query.includeInternal && isInternalSpanName(span.name)) continue;
      if (sinceNs !== undefined && span.start_time_unix_nano < sinceNs) continue;
      const value = attributeText(span, query.attribute);
      if (value === undefined) continue;
      let group = groups.get(value);
      const startMs = span.start_time_unix_nano / 1e6;
      const endMs = span.end_time_unix_nano / 1e6;
      if (!group) {
        group = {
          value,
          label: value,
          trace_ids: [],
          traces: new Set(),
          span_count: 0,
          first_seen_ms: startMs,
          last_seen_ms: endMs,
          duration_ms: 0,
          error_count: 0,
        };
        groups.set(value, group);
      }
      if (query.labelAttribute !== undefined && group.label === value)
        group.label = attributeText(span, query.labelAttribute) ?? value;
      group.traces.add(span.trace_id);
      group.span_count++;
      group.first_seen_ms = Math.min(group.first_seen_ms, startMs);
      group.last_seen_ms = Math.max(group.last_seen_ms, endMs);
      if (span.status === 'error') group.error_count++;
    }
    return [...groups.values()]
      .sort((a, b) => b.last_seen_ms - a.last_seen_ms)
      .slice(0, query.limit)
      .map(({ traces, ...group }) => ({
        ...group,
        trace_ids: [...traces],
        duration_ms: group.last_seen_ms - group.first_seen_ms,
      }));
  }

  /** The spans of one trace as trees, roots oldest first. */
  tree(traceId: string): SpanTreeNode[] {
    return spanTree(this.spansOf(traceId));
  }

  /** Every span of one trace this store keeps, oldest added first. */
  spansOf(traceId: string): StoredSpan[] {
    const spans: StoredSpan[] = [];
    for (const span of this.ring) if (span.trace_id === traceId) spans.push(span);
    return spans;
  }

  /** The ids of every span kept. */
  spanIds(): Set<string> {
    const ids = new Set<string>();
    for (const span of this.ring) ids.add(span.span_id);
    return ids;
  }
}

/**
 * Spans (of one trace) as trees, roots oldest first: a span whose parent is among them nests
 * under it, whichever node recorded either. The first span of an id wins.
 */
export function spanTree(spans: Iterable<StoredSpan>): SpanTreeNode[] {
  const nodes = new Map<string, SpanTreeNode>();
  for (const span of spans) if (!nodes.has(span.span_id)) nodes.set(span.span_id, { ...span, children: [] });
  const roots: SpanTreeNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.parent_span_id === undefined ? undefined : nodes.get(node.parent_span_id);
    if (parent && parent !== node) parent.children.push(node);
    else roots.push(node);
  }
  const byStart = (a: SpanTreeNode, b: SpanTreeNode) => a.start_time_unix_nano - b.start_time_unix_nano;
  for (const node of nodes.values()) node.children.sort(byStart);
  return roots.sort(byStart);
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
  if (q.attributes && !q.attributes.every(([key, value]) => attributeText(s, key) === value)) return false;
  if (
    q.excludeAttributes?.some(([key, value]) =>
      value === undefined ? attributeText(s, key) !== undefined : attributeText(s, key) === value,
    )
  )
    return false;
  return true;
}

/** A span attribute (else resource attribute) as text; arrays as JSON. Undefined when absent. */
function attributeText(s: StoredSpan, key: string): string | undefined {
  const value = key in s.attributes ? s.attributes[key] : s.resource[key];
  if (value === undefined || value === null) return undefined;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export function comparator(q: Pick<SpanQuery, 'sortBy' | 'sortOrder'>): (a: StoredSpan, b: StoredSpan) => number {
  const sign = q.sortOrder === 'asc' ? 1 : -1;
  const key = (s: StoredSpan): number | string =>
    q.sortBy === 'duration' ? s.duration_ms : q.sortBy === 'name' ? s.name : s.start_time_unix_nano;
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return sign * (ka < kb ? -1 : ka > kb ? 1 : 0);
  };
}
