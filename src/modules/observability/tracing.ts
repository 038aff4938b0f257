import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { parseTraceParent } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { EngineError } from '../../protocol/errors';
import type { CallRequest, CallSpan } from '../../router/router';
import type { ObservabilityConfig } from './config';
import { OtlpHttpSpanExporter } from './otlp-exporters';
import { OtlpPush, otlpTarget } from './otlp-transport';
import { RuleSampler } from './sampling';
import { fromReadableSpan, resourceJson, type StoredSpan } from './stored-span';

const TRACER_NAME = 'iii-engine';
/** The OTLP batch processor sends what it has at least this often, in milliseconds. */
const OTLP_EXPORT_DELAY_MS = 1000;
/** One OTLP export may take this long before it is abandoned, in milliseconds. */
const OTLP_EXPORT_TIMEOUT_MS = 10_000;
/** Spans waiting for export; more are dropped (OTel's default). */
const OTLP_MAX_QUEUE_SPANS = 2048;
/** At shutdown, queued spans get this long to reach the collector, in milliseconds. */
const SHUTDOWN_FLUSH_MS = 3000;

/**
 * The engine's tracer: one OpenTelemetry span per call routed by this node, parented on the
 * caller's W3C `traceparent`. Each engine has its own provider (nothing is registered globally,
 * so several engines can share a process). Sampling is RuleSampler's: `sampling` rules by
 * function id and service, else `sampling_ratio`, parent-based unless `sampling.parent_based` is false.
 */
export class CallTracer {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  readonly sampler: RuleSampler;

  /**
   * Spans go to OTLP over gRPC (OTLPTraceExporter), or over HTTP/protobuf to `<endpoint>/v1/traces`
   * when `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` say `http/...`.
   */
  constructor(
    config: ObservabilityConfig,
    nodeId: string,
    onEnd: ((span: StoredSpan) => void) | undefined,
    env: NodeJS.ProcessEnv = process.env,
    onExportError: (err: unknown) => void = () => undefined,
  ) {
    const spanProcessors: SpanProcessor[] = [];
    if (config.exporter !== 'memory') {
      const target = otlpTarget('traces', config.endpoint, env);
      const exporter =
        target.protocol === 'grpc'
          ? new OTLPTraceExporter({ url: config.endpoint, timeoutMillis: OTLP_EXPORT_TIMEOUT_MS })
          : new OtlpHttpSpanExporter(new OtlpPush(target), onExportError);
      spanProcessors.push(
        new BatchSpanProcessor(exporter, {
          scheduledDelayMillis: OTLP_EXPORT_DELAY_MS,
          exportTimeoutMillis: OTLP_EXPORT_TIMEOUT_MS,
          maxQueueSize: OTLP_MAX_QUEUE_SPANS,
        }),
      );
    }
    const resource = engineResource(config, nodeId);
    if (onEnd) {
      const json = resourceJson(resource.attributes);
      spanProcessors.unshift(
        new EndedSpanProcessor((span) => onEnd(fromReadableSpan(span, json, config.serviceName, TRACER_NAME))),
      );
    }
    this.sampler = new RuleSampler(config.sampling, config.serviceName, config.samplingRatio);
    this.provider = new BasicTracerProvider({ resource, sampler: this.sampler, spanProcessors });
    this.tracer = this.provider.getTracer(TRACER_NAME, config.serviceVersion);
  }

  /** Hot reload of `sampling_ratio`: roots started from now on (unless `sampling.default` is set). */
  setSamplingRatio(ratio: number): void {
    this.sampler.setSamplingRatio(ratio);
  }

  /** The span of one call: SERVER for a worker's call, INTERNAL for a module's. */
  start(request: CallRequest): CallSpan {
    const parent = request.traceparent === undefined ? null : parseTraceParent(request.traceparent);
    const context = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    const attributes: Record<string, string> = { 'iii.function.id': request.functionId };
    if (request.callerWorkerId !== undefined) attributes['iii.caller.worker.id'] = request.callerWorkerId;
    const kind = request.callerWorkerId === undefined ? SpanKind.INTERNAL : SpanKind.SERVER;
    return new EngineCallSpan(this.tracer.startSpan(request.functionId, { kind, attributes }, context));
  }

  /** Flushes queued spans to the collector (bounded by SHUTDOWN_FLUSH_MS) and stops. */
  async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS);
    });
    await Promise.race([this.provider.shutdown().catch(() => undefined), deadline]);
    clearTimeout(timer);
  }
}

class EngineCallSpan implements CallSpan {
  readonly traceparent: string;

  constructor(private readonly span: Span) {
    const { traceId, spanId, traceFlags } = span.spanContext();
    this.traceparent = `00-${traceId}-${spanId}-${traceFlags & 1 ? '01' : '00'}`;
  }

  target(workerId: string, invocationId?: string): void {
    this.span.setAttribute('iii.worker.id', workerId);
    if (invocationId !== undefined) this.span.setAttribute('iii.invocation.id', invocationId);
  }

  end(error?: EngineError): void {
    if (error) {
      this.span.setAttribute('iii.error.code', error.code);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: `${error.code}: ${error.message}` });
    } else {
      this.span.setStatus({ code: SpanStatusCode.OK });
    }
    this.span.end();
  }
}

/** The engine's OTel resource (spans, metrics and logs it exports): service identity and node id. */
export function engineResource(config: ObservabilityConfig, nodeId: string): Resource {
  const attributes: Record<string, string> = {
    'service.name': config.serviceName,
    'service.version': config.serviceVersion,
    'service.instance.id': nodeId,
  };
  if (config.serviceNamespace !== undefined) attributes['service.namespace'] = config.serviceNamespace;
  return resourceFromAttributes(attributes);
}

/** Hands every ended (sampled) span to the memory store, in its compact form. */
class EndedSpanProcessor implements SpanProcessor {
  constructor(private readonly deliver: (span: ReadableSpan) => void) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    this.deliver(span);
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}
