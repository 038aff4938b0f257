export { ChannelManager, type ChannelForwarder } from './channel-manager';
export type { ChannelEndState, ChannelStats } from './channel';
export type { ChannelItem } from './channel-item';
export {
  CHANNEL_PATH_PREFIX,
  parseChannelUrl,
  type ChannelDirection,
  type ChannelTarget,
  type ChannelUrl,
} from './channel-url';
export { ChannelClose, type ChannelCloseKind } from './close-codes';
export {
  DEFAULT_CHANNEL_OPTIONS,
  clampBufferSize,
  resolveChannelOptions,
  type ChannelOptions,
  type ResolvedChannelOptions,
} from './options';
export type { ChannelEndSide, ChannelReaderEnd, ChannelWriterEnd } from './channel-end';
export { LocalReader, LocalWriter, type LocalReaderHandlers } from './local-ends';
