import type { ErrorBody, InvokeFunction, Json } from '../protocol/messages';
import type { RegistryDelta } from '../registry/types';
import type { RemoteInvoke } from '../router/router';

/**
 * What nodes say to each other over the bus. Calls and results go to one node's inbox; registry
 * news goes to every node. Registry messages carry the sender's incarnation: a node restarted
 * under the same id is a new incarnation, and its versions start over.
 */
export type BusMessage =
  /** Run `functionId` on `workerId` (a worker connected to the receiving node). */
  | RemoteInvoke
  | { type: 'result'; id: string; result?: Json; error?: ErrorBody }
  /** One change of the sender's own registry entries, numbered from 1 per incarnation. */
  | { type: 'delta'; incarnation: string; version: number; delta: RegistryDelta }
  /** The sender rewrote its whole snapshot (at start, or after Redis lost its data): reload it. */
  | { type: 'snapshot'; incarnation: string; version: number }
  /**
   * The receiver's snapshot is missing from Redis (another node deleted it while it judged the
   * receiver lost, e.g. during a Redis failover): rewrite it.
   */
  | { type: 'snapshot.request' }
  /** The sender is going away (drain): forget its entries and fail calls pending on it now. */
  | { type: 'leaving' }
  /** A provider on the sender answered a binding of the receiver (error = refused). */
  | { type: 'trigger.result'; triggerId: string; error?: ErrorBody }
  /**
   * Broadcast by the node a worker reconnected to (`reattach`): whoever holds calls that worker
   * sent on its previous socket while a draining node was closing it, send them to `workerId`
   * on the sender. `token` is the previous connection's reattach token.
   */
  | { type: 'reattach.claim'; previousWorkerId: string; token: string; workerId: string }
  /** Those calls, for the receiver's connection `workerId` to make as its own. */
  | { type: 'reattach.calls'; workerId: string; calls: InvokeFunction[] }
  /** Answer query `name` (peer-queries.ts): the sender waits for a `query.result` with this `id`. */
  | { type: 'query'; id: string; name: string; input: Json }
  /** The answer to the sender's `query` `id`: its result, or why there is none. */
  | { type: 'query.result'; id: string; result?: Json; error?: ErrorBody };

export interface Envelope {
  from: string;
  message: BusMessage;
}
