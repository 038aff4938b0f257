import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import {
  ProtobufLogsSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { logs, metrics } from '@opentelemetry/sdk-node';
import type { OtlpPush } from './otlp-transport';

/**
 * OTel SDK exporters over OtlpPush: the request serialized to protobuf by otlp-transformer, then
 * sent over gRPC or HTTP. One export at a time is not enforced (the SDK processors already send
 * one batch at a time); `shutdown` waits for those in flight.
 */
class PushExporter<T> {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly push: OtlpPush,
    private readonly serialize: (items: T) => Uint8Array | undefined,
    private readonly onError: (err: unknown) => void,
  ) {}

  export(items: T, done: (result: ExportResult) => void): void {
    const body = this.serialize(items);
    if (body === undefined) {
      done({ code: ExportResultCode.FAILED, error: new Error('OTLP serialization failed') });
      return;
    }
    const sending = this.push.send(body).then(
      () => done({ code: ExportResultCode.SUCCESS }),
      (err: unknown) => {
        this.onError(err);
        done({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
      },
    );
    this.inFlight.add(sending);
    void sending.finally(() => this.inFlight.delete(sending));
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.push.close();
  }
}

export class OtlpMetricExporter extends PushExporter<metrics.ResourceMetrics> implements metrics.PushMetricExporter {
  constructor(push: OtlpPush, onError: (err: unknown) => void) {
    super(push, (m) => ProtobufMetricsSerializer.serializeRequest(m), onError);
  }
}

export class OtlpLogExporter extends PushExporter<logs.ReadableLogRecord[]> implements logs.LogRecordExporter {
  constructor(push: OtlpPush, onError: (err: unknown) => void) {
    super(push, (records) => ProtobufLogsSerializer.serializeRequest(records), onError);
  }
}

/** Spans over OTLP/HTTP (the gRPC path uses OTLPTraceExporter). */
export class OtlpHttpSpanExporter extends PushExporter<ReadableSpan[]> implements SpanExporter {
  constructor(push: OtlpPush, onError: (err: unknown) => void) {
    super(push, (spans) => ProtobufTraceSerializer.serializeRequest(spans), onError);
  }
}
