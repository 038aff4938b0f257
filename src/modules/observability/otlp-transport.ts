import http2 from 'node:http2';

/** The OTLP signals the engine pushes itself (spans over gRPC go through OTLPTraceExporter). */
export type OtlpSignal = 'traces' | 'metrics' | 'logs';
export type OtlpProtocol = 'grpc' | 'http/protobuf';

/** One export may take this long before it is abandoned, in milliseconds. */
export const OTLP_PUSH_TIMEOUT_MS = 10_000;

const GRPC_SERVICES: Record<OtlpSignal, string> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

export interface OtlpTarget {
  signal: OtlpSignal;
  protocol: OtlpProtocol;
  /** gRPC: the collector's origin; HTTP: the full URL of the signal (`.../v1/<signal>`). */
  url: string;
  headers: Record<string, string>;
}

/**
 * Where one signal goes, as the OpenTelemetry environment variables say (per-signal first):
 * `OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`, the default,
 * or `http/protobuf`; `forced` overrides them, logs being HTTP always as in the original),
 * `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT` (used as is) else `endpoint` + `/v1/<signal>` for HTTP,
 * and the headers of `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS`.
 */
export function otlpTarget(
  signal: OtlpSignal,
  endpoint: string,
  env: NodeJS.ProcessEnv,
  forced?: OtlpProtocol,
): OtlpTarget {
  const upper = signal.toUpperCase();
  const protocol = forced ?? protocolOf(env[`OTEL_EXPORTER_OTLP_${upper}_PROTOCOL`] ?? env.OTEL_EXPORTER_OTLP_PROTOCOL);
  const own = env[`OTEL_EXPORTER_OTLP_${upper}_ENDPOINT`];
  const base = endpoint.replace(/\/+$/, '');
  const url = own !== undefined && own !== '' ? own : protocol === 'grpc' ? base : `${base}/v1/${signal}`;
  return {
    signal,
    protocol,
    url,
    headers: {
      ...parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS),
      ...parseHeaders(env[`OTEL_EXPORTER_OTLP_${upper}_HEADERS`]),
    },
  };
}

/** `http/json` and anything else HTTP-ish are sent as protobuf; only `grpc` means gRPC. */
export function protocolOf(value: string | undefined): OtlpProtocol {
  return value === undefined || value === '' || value === 'grpc' ? 'grpc' : 'http/protobuf';
}

/** `k1=v1,k2=v2`, percent-decoded (the W3C-ish format of OTEL_EXPORTER_OTLP_HEADERS). */
function parseHeaders(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const i = pair.indexOf('=');
    if (i <= 0) continue;
    try {
      out[decodeURIComponent(pair.slice(0, i).trim()).toLowerCase()] = decodeURIComponent(pair.slice(i + 1).trim());
    } catch {
      // A malformed escape: the pair is skipped.
    }
  }
  return out;
}

/**
 * Sends serialized OTLP export requests (protobuf) to one collector: HTTP POST, or a gRPC unary
 * call framed by hand over one HTTP/2 session (reopened when it closes). No retry: a failed
 * export is reported and its data dropped, as the OTel SDK exporters do after their retries.
 */
export class OtlpPush {
  private session: http2.ClientHttp2Session | undefined;

  constructor(readonly target: OtlpTarget) {}

  send(body: Uint8Array): Promise<void> {
    return this.target.protocol === 'grpc' ? this.grpc(body) : this.http(body);
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }

  private async http(body: Uint8Array): Promise<void> {
    const response = await fetch(this.target.url, {
      method: 'POST',
      headers: { ...this.target.headers, 'content-type': 'application/x-protobuf' },
      body,
      signal: AbortSignal.timeout(OTLP_PUSH_TIMEOUT_MS),
    });
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok)
      throw new Error(`OTLP/HTTP ${this.target.signal} export to ${this.target.url} answered ${response.status}`);
  }

  private grpc(body: Uint8Array): Promise<void> {
    const session = this.openSession();
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt8(0, 0); // not compressed
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    return new Promise((resolve, reject) => {
      const request = session.request({
        ...this.target.headers,
        ':method': 'POST',
        ':path': GRPC_SERVICES[this.target.signal],
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let status: string | undefined;
      let message: string | undefined;
      const read = (headers: http2.IncomingHttpHeaders) => {
        if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
        if (headers['grpc-message'] !== undefined) message = decodeURIComponent(String(headers['grpc-message']));
      };
      request.setTimeout(OTLP_PUSH_TIMEOUT_MS, () => request.close(http2.constants.NGHTTP2_CANCEL));
      request.on('response', read);
      request.on('trailers', read);
      request.on('data', () => undefined);
      request.on('error', reject);
      request.on('close', () => {
        if (status === '0') resolve();
        else
          reject(
            new Error(
              `OTLP/gRPC ${this.target.signal} export to ${this.target.url} failed: grpc-status ${status ?? 'none'}${message ? ` (${message})` : ''}`,
            ),
          );
      });
      request.end(frame);
    });
  }

  private openSession(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = http2.connect(this.target.url);
    session.on('error', () => undefined); // surfaces on the request
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref();
    this.session = session;
    return session;
  }
}
