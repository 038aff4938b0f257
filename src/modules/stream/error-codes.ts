/**
 * Error codes of the `stream::*` functions (iii-modules.md §9.2), spelled as the original's.
 * Input that does not fit a function is `deserialization_error` (see ../input.ts).
 */
export const StreamErrorCode = {
  set: 'STREAM_SET_ERROR',
  get: 'STREAM_GET_ERROR',
  delete: 'STREAM_DELETE_ERROR',
  list: 'STREAM_GET_GROUP_ERROR',
  listGroups: 'STREAM_LIST_GROUPS_ERROR',
  listAll: 'STREAM_LIST_ALL_ERROR',
  send: 'STREAM_SEND_ERROR',
  update: 'STREAM_UPDATE_ERROR',
} as const;
