import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/**
 * A fake OTLP/gRPC trace collector: serves `TraceService/Export` on a free loopback port and
 * decodes each `ExportTraceServiceRequest` with protobufjs against the subset of the OTLP
 * schema below (field numbers from opentelemetry-proto; unknown fields are skipped).
 */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message InstrumentationScope { string name = 1; string version = 2; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; Status status = 15;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** Absent on roots. */
  parentSpanId?: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, ... */
  kind: number;
  attributes: Record<string, unknown>;
  status: { code: number; message: string };
  serviceName: unknown;
}

interface KeyValue {
  key: string;
  value?: Record<string, unknown>;
}

interface DecodedSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId?: Uint8Array;
  name: string;
  kind?: number;
  attributes?: KeyValue[];
  status?: { code?: number; message?: string };
}

interface DecodedRequest {
  resourceSpans?: Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: DecodedSpan[] }> }>;
}

export class OtlpCollector {
  readonly spans: CollectedSpan[] = [];
  /** Export requests received (each may hold several spans). */
  requests = 0;

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<OtlpCollector> {
    const type = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType('otlp.ExportTraceServiceRequest');
    const server = new grpc.Server();
    let collector: OtlpCollector | undefined;
    const definition: grpc.ServiceDefinition = {
      Export: {
        path: EXPORT_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: (value: Buffer) => value,
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: () => Buffer.alloc(0), // an empty ExportTraceServiceResponse
        responseDeserialize: () => ({}),
      },
    };
    server.addService(definition, {
      Export: (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const request = type.toObject(type.decode(call.request)) as DecodedRequest;
        collector?.collect(request);
        callback(null, {});
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    collector = new OtlpCollector(server, port);
    return collector;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.tryShutdown(() => resolve());
      // Exporter connections may linger; do not wait on them.
      setTimeout(() => this.server.forceShutdown(), 500).unref();
    });
  }

  private collect(request: DecodedRequest): void {
    this.requests++;
    for (const resourceSpans of request.resourceSpans ?? []) {
      const resource = attributes(resourceSpans.resource?.attributes);
      for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
        for (const span of scopeSpans.spans ?? []) {
          const parent = span.parentSpanId && span.parentSpanId.length > 0 ? hex(span.parentSpanId) : undefined;
          this.spans.push({
            traceId: hex(span.traceId),
            spanId: hex(span.spanId),
            ...(parent ? { parentSpanId: parent } : {}),
            name: span.name,
            kind: span.kind ?? 0,
            attributes: attributes(span.attributes),
            status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
            serviceName: resource['service.name'],
          });
        }
      }
    }
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function attributes(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = value ? Object.values(value)[0] : undefined;
  return out;
}
