import { ChannelRelay, channelPrefix } from '../cluster/channel-relay';
import type { ClusterNode } from '../cluster/cluster-node';
import type { EngineConfig } from '../config/types';
import type { Logger } from '../observability/logger';
import type { EngineMetrics } from '../observability/metrics';
import { ChannelManager } from '../transport/channels';

/**
 * The data channels of a node. In cluster mode channel ids carry the node's prefix, and the
 * relay carries a worker's channel end to the node that owns the channel.
 */
export function nodeChannels(
  config: EngineConfig,
  cluster: ClusterNode | undefined,
  metrics: EngineMetrics,
  logger: Logger,
): { channels: ChannelManager; relay: ChannelRelay | undefined } {
  const prefix = channelPrefix(config.nodeId);
  const channels = new ChannelManager({
    ttlMs: config.channels.ttlMs,
    defaultBufferMessages: config.channels.defaultBufferMessages,
    maxBufferMessages: config.channels.maxBufferMessages,
    maxBufferBytes: config.channels.maxBufferBytes,
    maxOpen: config.channels.maxOpen,
    onLimitRefused: (limit) => metrics.limitRefusals.inc({ limit }),
    maxMessageBytes: config.limits.maxMessageBytes,
    idPrefix: cluster ? prefix : '',
    logger,
  });
  if (!cluster) return { channels, relay: undefined };
  const relay = new ChannelRelay(
    prefix,
    (owner) => cluster.ownerUrl(owner),
    config.limits.maxMessageBytes,
    logger,
    config.tls?.ca,
  );
  channels.forwarder = relay.forward;
  return { channels, relay };
}
