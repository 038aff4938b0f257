/**
 * iii v0.23 namespaces in the registry. Functions and trigger types are keyed by (namespace,
 * id); the key of the `default` namespace is the bare id, so everything written for v0.22 (and
 * the registry a cluster shares) reads as before, and the key of another namespace is
 * `<namespace>␟<id>` (U+241F, a printable character no id uses). Keys travel as ids everywhere
 * inside the engine (pools, triggers, queues, the cluster); they are split again at the edges:
 * frames to workers and introspection rows carry the bare id and a `namespace` field.
 */
export const NAMESPACE_SEPARATOR = '\u241f';

/** The namespace of everything that names none (all of iii v0.22). */
export const DEFAULT_NAMESPACE = 'default';

export function namespacedKey(namespace: string, id: string): string {
  return namespace === DEFAULT_NAMESPACE ? id : `${namespace}${NAMESPACE_SEPARATOR}${id}`;
}

export function splitKey(key: string): { namespace: string; id: string } {
  const at = key.indexOf(NAMESPACE_SEPARATOR);
  return at === -1 ? { namespace: DEFAULT_NAMESPACE, id: key } : { namespace: key.slice(0, at), id: key.slice(at + 1) };
}

/** The bare id of a key. */
export function bareId(key: string): string {
  const at = key.indexOf(NAMESPACE_SEPARATOR);
  return at === -1 ? key : key.slice(at + 1);
}

/** Ids that only the engine's `default` namespace holds, and calls to which resolve there. */
export function isEngineOwned(id: string): boolean {
  return id.startsWith('engine::') || id.startsWith('configuration::');
}

/** A namespace name a worker may declare: non-blank, no separator or control characters, at most 128 characters. */
export function validNamespace(namespace: string): boolean {
  return namespace.trim() !== '' && namespace.length <= 128 && !/[\u0000-\u001f\u241f]/.test(namespace);
}
