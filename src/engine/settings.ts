import { isDeepStrictEqual } from 'node:util';
import type { EngineConfig, WorkerListenerConfig } from '../config/types';
import { setLogLevel, type Logger } from '../observability/logger';

/** Top-level settings that only a restart applies, with the names users know them by. */
const RESTART_ONLY: ReadonlyArray<[keyof EngineConfig, string]> = [
  ['invocationTimeoutMs', 'engine.invocation_timeout_ms'],
  ['drainGraceMs', 'engine.drain_grace_ms'],
  ['limits', 'the iii-worker-manager limits'],
  ['metrics', 'engine.metrics'],
  ['channels', 'engine.channels'],
  ['httpFunctions', 'iii-http-functions'],
  ['cluster', 'cluster'],
];

/**
 * What changed between the running settings and `next` outside the modules, split into the
 * listeners' RBAC rules (applied live, to connections made from then on) and the rest, which
 * needs a restart (one sentence each).
 */
export function compareEngineSettings(
  current: EngineConfig,
  next: EngineConfig,
): { rbac: Map<number, WorkerListenerConfig['rbac']>; restart: string[] } {
  const restart: string[] = [];
  for (const [key, name] of RESTART_ONLY) {
    if (!isDeepStrictEqual(current[key], next[key])) restart.push(`${name} changed; restart the engine to apply it`);
  }
  const rbac = new Map<number, WorkerListenerConfig['rbac']>();
  if (current.listeners.length !== next.listeners.length) {
    restart.push('the iii-worker-manager listeners changed; restart the engine to apply them');
    return { rbac, restart };
  }
  current.listeners.forEach((listener, i) => {
    const { rbac: before, tls: _t1, ...rest } = listener;
    const { rbac: after, tls: _t2, ...nextRest } = next.listeners[i];
    if (
      !isDeepStrictEqual(rest, nextRest) ||
      !isDeepStrictEqual(listener.tls?.certFile, next.listeners[i].tls?.certFile)
    ) {
      restart.push(
        `iii-worker-manager ${listener.instanceId}: listener settings changed; restart the engine to apply them (its rbac rules apply live)`,
      );
    }
    if (!isDeepStrictEqual(before, after)) rbac.set(i, after);
  });
  return { rbac, restart };
}

/**
 * Applies to `current`, in place, what of `next` outside the modules applies live: the log level
 * (of every logger of `logger`'s family) and the listeners' RBAC rules (for connections made from
 * then on). Says what it applied, and what needs a restart.
 */
export function applyEngineSettings(
  current: EngineConfig,
  next: EngineConfig,
  logger: Logger,
): { applied: string[]; restart: string[] } {
  const { rbac, restart } = compareEngineSettings(current, next);
  const applied: string[] = [];
  if (next.logLevel !== current.logLevel) {
    if (setLogLevel(logger, next.logLevel)) {
      current.logLevel = next.logLevel;
      applied.push(`log level ${next.logLevel}`);
    } else {
      restart.push(
        'the log level changed; restart the engine to apply it (this engine logs through a logger of its embedder)',
      );
    }
  }
  for (const [i, rules] of rbac) {
    const listener = { ...current.listeners[i] };
    if (rules === undefined) delete listener.rbac;
    else listener.rbac = rules;
    current.listeners[i] = listener;
    applied.push(`${listener.instanceId} rbac`);
  }
  return { applied, restart };
}
