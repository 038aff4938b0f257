import type { Json } from '../../protocol/messages';
import { Input } from '../input';
import type { EngineModule, ModuleHost } from '../module';

/** Severity numbers of OpenTelemetry log records, per level. */
export const SEVERITY = { trace: 1, debug: 5, info: 9, warn: 13, error: 17 } as const;

export type LogLevel = keyof typeof SEVERITY;

/**
 * `engine::log::info|warn|error|debug|trace`: a worker writes a structured record into the
 * engine's log (`{message, data?, trace_id?, span_id?, service_name?}`); no result.
 */
export class LogModule implements EngineModule {
  readonly name = 'iii-observability';

  async start(host: ModuleHost): Promise<void> {
    for (const level of Object.keys(SEVERITY) as LogLevel[]) {
      const id = `engine::log::${level}`;
      host.registerFunction(this.name, { id, description: `Write a ${level} log record` }, (data: Json) => {
        const input = new Input(id, data);
        const record = {
          source: 'worker',
          service_name: input.optString('service_name') ?? 'unknown',
          trace_id: input.optString('trace_id'),
          span_id: input.optString('span_id'),
          data: input.raw('data'),
          severity_number: SEVERITY[level],
        };
        host.logger[level](record, input.string('message'));
        return undefined;
      });
    }
  }

  async stop(): Promise<void> {}
}
