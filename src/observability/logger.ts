import pino from 'pino';

export type Logger = pino.Logger;

/** Every logger made from one `createLogger` root (the root and all its children), held weakly. */
type Family = Set<WeakRef<Logger>>;
const families = new WeakMap<Logger, Family>();
/** A family drops the references of collected loggers every this many new children. */
const PRUNE_EVERY = 256;

/** Structured JSON logs on stdout; `LOG_LEVEL` or the config's level picks the threshold. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  const family: Family = new Set();
  let born = 0;
  const join = (logger: Logger): void => {
    family.add(new WeakRef(logger));
    families.set(logger, family);
    if (++born % PRUNE_EVERY === 0) for (const ref of family) if (ref.deref() === undefined) family.delete(ref);
  };
  // pino passes `onChild` down to every child, so each one of the family joins it.
  const root = pino({ level, base: { ...bindings }, onChild: join });
  join(root);
  return root;
}

/**
 * Hot reload of the log level: sets it on every logger of `logger`'s family (pino children keep
 * the level they were created with, so the root alone would not do). False for a logger that
 * `createLogger` did not make (an embedder's own).
 */
export function setLogLevel(logger: Logger, level: string): boolean {
  const family = families.get(logger);
  if (!family) return false;
  for (const ref of family) {
    const member = ref.deref();
    if (member) member.level = level;
    else family.delete(ref);
  }
  return true;
}

/** A logger that writes nothing, for tests and embedding. */
export const silentLogger: Logger = pino({ level: 'silent' });
