/**
 * Error codes of the queue functions (iii-modules.md §6.3-§6.4). The iii codes keep their
 * spelling; codes marked "ours" do not exist in the original.
 */
export const QueueErrorCode = {
  topicNotSet: 'topic_not_set',
  topicRequired: 'topic_required',
  queueNotSet: 'queue_not_set',
  messageIdNotSet: 'message_id_not_set',
  redriveFailed: 'redrive_failed',
  redriveMessageFailed: 'redrive_message_failed',
  discardMessageFailed: 'discard_message_failed',
  /** ours: no named queue or topic of that name is known to this node. */
  queueNotFound: 'queue_not_found',
  /** ours: the queue holds its maximum number of messages or bytes. */
  queueFull: 'queue_full',
  /** ours: the `bridge` adapter cannot do this: the other engine's queue functions offer no way to. */
  bridgeUnsupported: 'queue_bridge_unsupported',
  /** ours: a FIFO message lacks its group field, or a message is larger than allowed. */
  invalidMessage: 'invalid_queue_message',
} as const;
