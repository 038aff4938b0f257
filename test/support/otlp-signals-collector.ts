import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/**
 * A fake OTLP collector for metrics, logs and spans, over gRPC (MetricsService, LogsService) and
 * HTTP/protobuf (`/v1/metrics`, `/v1/logs`, `/v1/traces`) on two free loopback ports. Requests
 * are decoded with protobufjs against the subset of opentelemetry-proto below (field numbers
 * from the proto files; unknown fields are skipped).
 */
const OTLP_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message InstrumentationScope { string name = 1; string version = 2; }

message NumberDataPoint { fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3; double as_double = 4; sfixed64 as_int = 6; repeated KeyValue attributes = 7; }
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Metric { string name = 1; string description = 2; string unit = 3; Gauge gauge = 5; Sum sum = 7; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }

message LogRecord { fixed64 time_unix_nano = 1; int32 severity_number = 2; string severity_text = 3; AnyValue body = 5; repeated KeyValue attributes = 6; bytes trace_id = 9; bytes span_id = 10; fixed64 observed_time_unix_nano = 11; }
message ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; }
message ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; }
message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }

message Span { bytes trace_id = 1; bytes span_id = 2; string name = 5; repeated KeyValue attributes = 9; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;

export interface CollectedMetric {
  name: string;
  kind: 'gauge' | 'sum';
  value: number;
  serviceName: unknown;
  via: 'grpc' | 'http';
}

export interface CollectedLog {
  body: unknown;
  severityNumber: number;
  severityText: string;
  attributes: Record<string, unknown>;
  traceId: string;
  spanId: string;
  serviceName: unknown;
  via: 'grpc' | 'http';
}

export interface CollectedHttpSpan {
  name: string;
  traceId: string;
  attributes: Record<string, unknown>;
  serviceName: unknown;
}

const root = protobuf.parse(OTLP_PROTO, { keepCase: false }).root;
const METRICS = root.lookupType('otlp.ExportMetricsServiceRequest');
const LOGS = root.lookupType('otlp.ExportLogsServiceRequest');
const TRACES = root.lookupType('otlp.ExportTraceServiceRequest');

export class OtlpSignalsCollector {
  readonly metrics: CollectedMetric[] = [];
  readonly logs: CollectedLog[] = [];
  readonly httpSpans: CollectedHttpSpan[] = [];
  /** Headers of every HTTP request, in order. */
  readonly httpHeaders: http.IncomingHttpHeaders[] = [];

  private constructor(
    private readonly grpcServer: grpc.Server,
    readonly grpcPort: number,
    private readonly httpServer: http.Server,
    readonly httpPort: number,
  ) {}

  get grpcEndpoint(): string {
    return `http://127.0.0.1:${this.grpcPort}`;
  }

  get httpEndpoint(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  static async start(): Promise<OtlpSignalsCollector> {
    let collector: OtlpSignalsCollector | undefined;
    const server = new grpc.Server();
    const unary = (path: string): grpc.ServiceDefinition => ({
      Export: {
        path,
        requestStream: false,
        responseStream: false,
        requestSerialize: (value: Buffer) => value,
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: () => ({}),
      },
    });
    server.addService(unary('/opentelemetry.proto.collector.metrics.v1.MetricsService/Export'), {
      Export: (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        collector?.collectMetrics(call.request, 'grpc');
        callback(null, {});
      },
    });
    server.addService(unary('/opentelemetry.proto.collector.logs.v1.LogsService/Export'), {
      Export: (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        collector?.collectLogs(call.request, 'grpc');
        callback(null, {});
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    const httpServer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        collector?.httpHeaders.push(req.headers);
        const body = Buffer.concat(chunks);
        if (req.url === '/v1/metrics') collector?.collectMetrics(body, 'http');
        else if (req.url === '/v1/logs') collector?.collectLogs(body, 'http');
        else if (req.url === '/v1/traces') collector?.collectSpans(body);
        else {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    collector = new OtlpSignalsCollector(server, grpcPort, httpServer, (httpServer.address() as AddressInfo).port);
    return collector;
  }

  async close(): Promise<void> {
    this.httpServer.closeAllConnections();
    await new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
    await new Promise<void>((resolve) => {
      this.grpcServer.tryShutdown(() => resolve());
      setTimeout(() => this.grpcServer.forceShutdown(), 500).unref();
    });
  }

  private collectMetrics(body: Buffer, via: 'grpc' | 'http'): void {
    const request = METRICS.toObject(METRICS.decode(body), { longs: Number });
    for (const rm of request.resourceMetrics ?? []) {
      const serviceName = attributes(rm.resource?.attributes)['service.name'];
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          const kind = m.sum ? 'sum' : 'gauge';
          for (const p of (m.sum ?? m.gauge)?.dataPoints ?? []) {
            this.metrics.push({ name: m.name, kind, value: p.asDouble ?? p.asInt ?? 0, serviceName, via });
          }
        }
      }
    }
  }

  private collectLogs(body: Buffer, via: 'grpc' | 'http'): void {
    const request = LOGS.toObject(LOGS.decode(body), { longs: Number });
    for (const rl of request.resourceLogs ?? []) {
      const serviceName = attributes(rl.resource?.attributes)['service.name'];
      for (const sl of rl.scopeLogs ?? []) {
        for (const r of sl.logRecords ?? []) {
          this.logs.push({
            body: r.body ? Object.values(r.body)[0] : undefined,
            severityNumber: r.severityNumber ?? 0,
            severityText: r.severityText ?? '',
            attributes: attributes(r.attributes),
            traceId: r.traceId ? Buffer.from(r.traceId).toString('hex') : '',
            spanId: r.spanId ? Buffer.from(r.spanId).toString('hex') : '',
            serviceName,
            via,
          });
        }
      }
    }
  }

  private collectSpans(body: Buffer): void {
    const request = TRACES.toObject(TRACES.decode(body), { longs: Number });
    for (const rs of request.resourceSpans ?? []) {
      const serviceName = attributes(rs.resource?.attributes)['service.name'];
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.httpSpans.push({
            name: s.name,
            traceId: Buffer.from(s.traceId).toString('hex'),
            attributes: attributes(s.attributes),
            serviceName,
          });
        }
      }
    }
  }
}

function attributes(
  list: Array<{ key: string; value?: Record<string, unknown> }> | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = value ? Object.values(value)[0] : undefined;
  return out;
}
