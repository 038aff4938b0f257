import type { Json } from '../../protocol/messages';
import { Input } from '../input';
import type { EngineModule, ModuleHost } from '../../engine/module';
import { RemoteEngine } from './remote-engine';

const MODULE = 'iii-bridge';
/** `bridge.invoke` and forwarded functions wait this long for the remote by default, in ms. */
export const DEFAULT_BRIDGE_TIMEOUT_MS = 30_000;

interface Expose {
  local_function: string;
  remote_function?: string;
}

interface Forward {
  local_function: string;
  remote_function: string;
  timeout_ms?: number;
}

/**
 * `iii-bridge`: this engine joins another one (iii's or ours) as an ordinary worker.
 * `bridge.invoke {function_id, data, timeout_ms?}` calls a remote function and answers its
 * result; `bridge.invoke_async {function_id, data}` fires one and answers nothing. `expose`
 * offers local functions to the remote engine (under `remote_function`, default the same id);
 * `forward` registers local functions that call remote ones.
 */
export class BridgeModule implements EngineModule {
  readonly name = MODULE;
  private remote: RemoteEngine | undefined;

  constructor(private readonly config: Record<string, unknown>) {}

  async start(host: ModuleHost): Promise<void> {
    const token = (this.config['auth_token'] as string | null) ?? process.env['III_BRIDGE_TOKEN'];
    const remote = new RemoteEngine({
      url: this.config['url'] as string,
      ...(token ? { token } : {}),
      workerName:
        (this.config['service_name'] as string | null) ??
        (this.config['service_id'] as string | null) ??
        `iii-bridge@${host.nodeId}`,
      logger: host.logger,
    });
    this.remote = remote;

    host.registerFunction(
      MODULE,
      { id: 'bridge.invoke', description: 'Call a function of the bridged engine; returns its result' },
      async (data) => {
        const input = new Input('bridge.invoke', data);
        const timeout = input.optNumber('timeout_ms') ?? DEFAULT_BRIDGE_TIMEOUT_MS;
        if (!Number.isInteger(timeout) || timeout <= 0)
          throw input.fail('field `timeout_ms` must be a positive integer');
        return (await remote.call(input.string('function_id'), payload(data), timeout)) ?? null;
      },
    );
    host.registerFunction(
      MODULE,
      { id: 'bridge.invoke_async', description: 'Fire a function of the bridged engine without waiting' },
      async (data) => {
        const input = new Input('bridge.invoke_async', data);
        remote.callVoid(input.string('function_id'), payload(data));
        return null;
      },
    );
    for (const { local_function, remote_function, timeout_ms } of this.config['forward'] as Forward[]) {
      host.registerFunction(
        MODULE,
        { id: local_function, description: `Forwarded to ${remote_function} on the bridged engine` },
        async (data) => (await remote.call(remote_function, data, timeout_ms ?? DEFAULT_BRIDGE_TIMEOUT_MS)) ?? null,
      );
    }
    for (const { local_function, remote_function } of this.config['expose'] as Expose[]) {
      remote.serve(
        remote_function ?? local_function,
        async (data) => (await host.invoke({ functionId: local_function, data })).result,
      );
    }
    remote.start();
  }

  async stop(): Promise<void> {
    await this.remote?.close();
    this.remote = undefined;
  }
}

function payload(data: Json): Json {
  const value = (data as Record<string, Json>)['data'];
  return value === undefined ? null : value;
}
