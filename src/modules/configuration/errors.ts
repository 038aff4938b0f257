import { EngineError } from '../../protocol/errors';

/** The error codes of the `configuration` module (the original's). */
export const ConfigurationErrorCode = {
  /** `set` of an id no worker registered. */
  notRegistered: 'NOT_REGISTERED',
  invalidId: 'INVALID_ID',
  /** A value (or a schema) that fails; the message lists each violation. */
  schemaInvalid: 'SCHEMA_INVALID',
  /** `set` of an id with a stored value whose schema no worker registered since boot. */
  schemaUnavailable: 'SCHEMA_UNAVAILABLE',
  notFound: 'NOT_FOUND',
  /** The store failed (disk, Redis). */
  adapterError: 'ADAPTER_ERROR',
} as const;

/** Configuration ids: also file names in the fs store. */
const ID_PATTERN = /^[a-z0-9_-]{1,64}$/;

export function checkId(id: string): string {
  if (!ID_PATTERN.test(id)) {
    throw new EngineError(
      ConfigurationErrorCode.invalidId,
      `Invalid configuration id ${JSON.stringify(id.slice(0, 80))}: use 1 to 64 of a-z, 0-9, _ and -.`,
    );
  }
  return id;
}

export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}
