import type { BusMessage } from './messages';

export type BusHandler = (message: BusMessage, from: string) => void;

/**
 * Node-to-node messaging: an inbox per node plus a broadcast to all. Delivery is at-most-once and
 * in order per sender; the router's deadlines cover lost calls and membership covers lost nodes.
 */
export interface Bus {
  start(handler: BusHandler): Promise<void>;
  /** To one node's inbox; rejects when the backend cannot take it now. */
  send(nodeId: string, message: BusMessage): Promise<void>;
  /** To every other node. */
  broadcast(message: BusMessage): Promise<void>;
  stop(): Promise<void>;
}
