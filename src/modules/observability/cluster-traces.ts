import type { ModuleHost } from '../../engine/module';
import { ErrorCode } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import { Input } from '../input';
import { asJson } from './json';
import { comparator, spanTree, type SpanQuery, type SpanStore, type SpanTreeNode } from './span-store';
import type { StoredSpan } from './stored-span';

/** The peer query for the spans of one trace: `{trace_id}` -> `{spans}`. */
export const TRACE_SPANS_QUERY = 'observability.trace_spans';
/** The peer query for one page of root spans: a `engine::traces::list` input -> `{spans, total}`. */
export const TRACE_ROOTS_QUERY = 'observability.trace_roots';

export type TraceScope = 'node' | 'cluster';

/** A node whose spans are not in a cluster-wide answer, and why. */
export interface MissingNode {
  node: string;
  code: string;
  message: string;
}

/** What a cluster-wide answer adds: every node whose spans are in it, and those that did not answer. */
export interface ClusterPart {
  scope: 'cluster';
  nodes: string[];
  missing_nodes: MissingNode[];
}

/** `field scope`: 'node' (the default, as iii) or 'cluster'. */
export function traceScope(input: Input): TraceScope {
  const scope = input.optString('scope') ?? 'node';
  if (scope !== 'node' && scope !== 'cluster') throw input.fail("field `scope` must be 'node' or 'cluster'");
  return scope;
}

/**
 * The spans of `traceId` on every live node, each with the `node` that recorded it, as trees:
 * a span on one node whose parent is on another nests under it. Peers that do not answer within
 * the query timeout (or keep no spans in memory) are named in `missing_nodes`.
 */
export async function clusterTree(
  host: ModuleHost,
  store: SpanStore,
  traceId: string,
): Promise<ClusterPart & { roots: SpanTreeNode[] }> {
  const own = tagged(store.spansOf(traceId), host.nodeId);
  const { spans, part } = await gather(host, TRACE_SPANS_QUERY, { trace_id: traceId }, own);
  return { roots: spanTree(spans), ...part };
}

/**
 * One page of root spans over every live node: each node's page up to `offset + limit`, merged,
 * sorted and cut again. A span whose parent another node recorded is not a root of the cluster,
 * so it is left out when that parent is among the spans this node keeps or the ones merged
 * (best effort: a parent on a third node outside its page is not seen); `total` is the sum of
 * the nodes' totals less those left out.
 */
export async function clusterList(
  host: ModuleHost,
  store: SpanStore,
  query: SpanQuery,
  input: Record<string, Json>,
): Promise<ClusterPart & { spans: StoredSpan[]; total: number }> {
  const depth = query.offset + query.limit;
  const local = store.list({ ...query, offset: 0, limit: depth });
  const peerInput: Record<string, Json> = { ...input, offset: 0, limit: depth };
  delete peerInput['scope'];
  let total = local.total;
  const { spans, part } = await gather(host, TRACE_ROOTS_QUERY, peerInput, tagged(local.spans, host.nodeId), (r) => {
    total += typeof r['total'] === 'number' ? r['total'] : 0;
  });
  const ids = store.spanIds();
  for (const span of spans) ids.add(span.span_id);
  const roots = spans.filter((s) => s.parent_span_id === undefined || !ids.has(s.parent_span_id));
  total -= spans.length - roots.length;
  roots.sort(comparator(query));
  return { spans: roots.slice(query.offset, query.offset + query.limit), total, ...part };
}

/** Registers this node's answers to the two queries (cluster mode). */
export function answerTraceQueries(
  host: ModuleHost,
  store: () => SpanStore,
  listQuery: (input: Input) => SpanQuery,
): void {
  host.peers?.answer(TRACE_SPANS_QUERY, (data) => {
    const input = new Input(TRACE_SPANS_QUERY, data);
    return { spans: asJson(store().spansOf(input.string('trace_id').toLowerCase())) };
  });
  host.peers?.answer(TRACE_ROOTS_QUERY, (data) => {
    const { spans, total } = store().list(listQuery(new Input(TRACE_ROOTS_QUERY, data)));
    return { spans: asJson(spans), total };
  });
}

/** Own spans first, then each peer's (tagged with its node); the first of each span id is kept. */
async function gather(
  host: ModuleHost,
  query: string,
  input: Json,
  own: StoredSpan[],
  onResult?: (result: Record<string, Json>) => void,
): Promise<{ spans: StoredSpan[]; part: ClusterPart }> {
  const nodes = [host.nodeId];
  const missing: MissingNode[] = [];
  const byId = new Map<string, StoredSpan>();
  for (const span of own) byId.set(span.span_id, span);
  for (const answer of (await host.peers?.askAll(query, input)) ?? []) {
    if ('error' in answer) {
      missing.push({ node: answer.nodeId, code: answer.error.code, message: answer.error.message });
      continue;
    }
    const result = answer.result;
    const list = typeof result === 'object' && result !== null && !Array.isArray(result) ? result['spans'] : undefined;
    if (!Array.isArray(list)) {
      missing.push({
        node: answer.nodeId,
        code: ErrorCode.invalidMessage,
        message: `Node ${answer.nodeId} answered ${query} without a list of spans`,
      });
      continue;
    }
    nodes.push(answer.nodeId);
    onResult?.(result as Record<string, Json>);
    for (const span of list as unknown as StoredSpan[]) {
      if (typeof span?.span_id !== 'string' || byId.has(span.span_id)) continue;
      byId.set(span.span_id, { ...span, node: answer.nodeId });
    }
  }
  return { spans: [...byId.values()], part: { scope: 'cluster', nodes: nodes.sort(), missing_nodes: missing } };
}

function tagged(spans: StoredSpan[], node: string): StoredSpan[] {
  return spans.map((span) => ({ ...span, node }));
}
