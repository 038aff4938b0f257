import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger';
import { EngineError, ErrorCode } from '../protocol/errors';
import type { ErrorBody, Json } from '../protocol/messages';
import type { BusMessage } from './messages';

/** How long `askAll` waits for a peer by default, in ms. */
export const DEFAULT_QUERY_TIMEOUT_MS = 1000;
/** The longest wait `askAll` accepts, in ms. */
export const MAX_QUERY_TIMEOUT_MS = 30_000;
/** `askAll`s waiting for answers at once on one node; one more is refused (limit_exceeded). */
export const MAX_PENDING_QUERIES = 1024;
/** A query name: what `answer` registers and `askAll` asks for. */
const QUERY_NAME = /^[a-z0-9][a-z0-9_.:-]{0,127}$/i;

/** Answers one query from another node (`from`); what it returns (or throws) goes back to the asker. */
export type QueryHandler = (input: Json, from: string) => Json | Promise<Json>;

/** One live peer's answer to `askAll`: its result, or why there is none (error, timeout, gone). */
export type PeerAnswer = { nodeId: string; result: Json } | { nodeId: string; error: ErrorBody };

/** What a module may ask the other nodes (ModuleHost.peers): the narrow face of PeerQueries. */
export interface Peers {
  /** Serves query `name` for the other nodes (one handler per name; a second replaces the first). */
  answer(name: string, handler: QueryHandler): void;
  /** Asks every live peer; one entry per peer, each settled by its answer or by `timeoutMs`. */
  askAll(name: string, input: Json, timeoutMs?: number): Promise<PeerAnswer[]>;
}

export interface PeerQueriesDeps {
  nodeId: string;
  /** Sends to one node's inbox (the bus). */
  send(nodeId: string, message: BusMessage): Promise<void>;
  /** The other nodes membership sees alive now. */
  peers(): string[];
  /** The largest answer sent back, in bytes of JSON (the bus's `max_message_bytes`). */
  maxAnswerBytes: number;
  logger: Logger;
}

interface Waiting {
  /** Peers not yet answered, each with its entry's setter. */
  open: Map<string, (answer: PeerAnswer) => void>;
  timer: NodeJS.Timeout;
}

/**
 * Node-to-node queries over the bus: `{type: 'query', id, name, input}` to each live peer's
 * inbox, `{type: 'query.result', id, result | error}` back. `askAll` never hangs: a peer that
 * does not answer within the timeout, cannot be reached, or leaves the cluster meanwhile is an
 * entry with an error. A query this node has no handler for is answered with NOT_FOUND; an
 * answer larger than `maxAnswerBytes` is replaced by a payload_too_large error.
 */
export class PeerQueries implements Peers {
  private readonly handlers = new Map<string, QueryHandler>();
  private readonly waiting = new Map<string, Waiting>();

  constructor(private readonly deps: PeerQueriesDeps) {}

  /** `askAll`s waiting for answers now. */
  get pendingCount(): number {
    return this.waiting.size;
  }

  answer(name: string, handler: QueryHandler): void {
    checkName(name);
    this.handlers.set(name, handler);
  }

  async askAll(name: string, input: Json, timeoutMs: number = DEFAULT_QUERY_TIMEOUT_MS): Promise<PeerAnswer[]> {
    checkName(name);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_QUERY_TIMEOUT_MS)
      throw new EngineError(
        ErrorCode.invalidArguments,
        `A query timeout must be a whole number of ms from 1 to ${MAX_QUERY_TIMEOUT_MS}, got ${timeoutMs}`,
      );
    const peers = [...new Set(this.deps.peers())].filter((peer) => peer !== this.deps.nodeId);
    if (peers.length === 0) return [];
    if (this.waiting.size >= MAX_PENDING_QUERIES)
      throw new EngineError(
        ErrorCode.limitExceeded,
        `${this.waiting.size} queries to other nodes are waiting for answers, the limit is ${MAX_PENDING_QUERIES} (MAX_PENDING_QUERIES); retry when some have finished`,
      );
    const id = randomUUID();
    const open = new Map<string, (answer: PeerAnswer) => void>();
    const answers = peers.map(
      (peer) =>
        new Promise<PeerAnswer>((resolve) =>
          open.set(peer, (answer) => {
            if (!open.delete(peer)) return;
            resolve(answer);
            if (open.size === 0) this.finish(id);
          }),
        ),
    );
    const timer = setTimeout(() => {
      for (const [peer, settle] of [...open])
        settle({
          nodeId: peer,
          error: {
            code: ErrorCode.timeout,
            message: `Node ${peer} did not answer query ${name} within ${timeoutMs} ms`,
          },
        });
    }, timeoutMs);
    this.waiting.set(id, { open, timer });
    for (const peer of peers) {
      this.deps.send(peer, { type: 'query', id, name, input }).catch((err: unknown) =>
        open.get(peer)?.({
          nodeId: peer,
          error: {
            code: ErrorCode.channelSendFailed,
            message: `Query ${name} could not reach node ${peer}: ${EngineError.from(err).message}`,
          },
        }),
      );
    }
    return Promise.all(answers);
  }

  /** A `query` or `query.result` from the bus. */
  receive(message: Extract<BusMessage, { type: 'query' | 'query.result' }>, from: string): void {
    if (message.type === 'query') {
      void this.serve(message, from);
      return;
    }
    const settle = this.waiting.get(message.id)?.open.get(from);
    if (!settle) return; // answered too late, or not asked of this node
    settle(
      message.error !== undefined
        ? { nodeId: from, error: message.error }
        : { nodeId: from, result: message.result ?? null },
    );
  }

  /** A node left the cluster: what it has not answered yet fails now. */
  nodeLost(nodeId: string): void {
    for (const { open } of [...this.waiting.values()])
      open.get(nodeId)?.({
        nodeId,
        error: { code: ErrorCode.invocationStopped, message: `Node ${nodeId} left the cluster before it answered` },
      });
  }

  /** Stops waiting: every open entry fails now (the node is stopping). */
  stop(): void {
    for (const { open } of [...this.waiting.values()])
      for (const [peer, settle] of [...open])
        settle({
          nodeId: peer,
          error: { code: ErrorCode.shuttingDown, message: `Node ${this.deps.nodeId} stopped before ${peer} answered` },
        });
  }

  private finish(id: string): void {
    const waiting = this.waiting.get(id);
    if (!waiting) return;
    clearTimeout(waiting.timer);
    this.waiting.delete(id);
  }

  private async serve(message: Extract<BusMessage, { type: 'query' }>, from: string): Promise<void> {
    let answer: BusMessage;
    const handler = this.handlers.get(message.name);
    if (!handler) {
      answer = {
        type: 'query.result',
        id: message.id,
        error: { code: ErrorCode.notFound, message: `Node ${this.deps.nodeId} answers no query named ${message.name}` },
      };
    } else {
      try {
        const result = await handler(message.input, from);
        answer = { type: 'query.result', id: message.id, result };
        const bytes = Buffer.byteLength(JSON.stringify(result) ?? 'null');
        if (bytes > this.deps.maxAnswerBytes)
          answer = {
            type: 'query.result',
            id: message.id,
            error: {
              code: ErrorCode.payloadTooLarge,
              message: `The answer of node ${this.deps.nodeId} to query ${message.name} is ${bytes} bytes; at most ${this.deps.maxAnswerBytes} cross the bus (max_message_bytes)`,
            },
          };
      } catch (err) {
        answer = { type: 'query.result', id: message.id, error: EngineError.from(err).toBody() };
      }
    }
    await this.deps
      .send(from, answer)
      .catch((err: unknown) =>
        this.deps.logger.debug({ err, peer: from, query: message.name }, 'could not return a query answer'),
      );
  }
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !QUERY_NAME.test(name))
    throw new EngineError(
      ErrorCode.invalidArguments,
      `A query name is 1 to 128 letters, digits and _ . : -, starting with a letter or digit; got ${JSON.stringify(name)}`,
    );
}
