import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';

/** The error codes of `iii-state` (iii-modules.md §8.2): one per function, for storage failures. */
export const StateErrorCode = {
  set: 'SET_ERROR',
  get: 'GET_ERROR',
  delete: 'DELETE_ERROR',
  update: 'UPDATE_ERROR',
  list: 'LIST_ERROR',
  listGroups: 'LIST_GROUPS_ERROR',
  valueTooLarge: 'VALUE_TOO_LARGE',
} as const;

/** The JSON text of a value, refused with VALUE_TOO_LARGE when it exceeds `maxValueBytes`. */
export function serializeWithin(value: Json, maxValueBytes: number | undefined): string {
  const text = JSON.stringify(value);
  if (maxValueBytes !== undefined) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > maxValueBytes) {
      throw new EngineError(
        StateErrorCode.valueTooLarge,
        `The value is ${bytes} bytes as JSON; max_value_bytes allows at most ${maxValueBytes}.`,
      );
    }
  }
  return text;
}
