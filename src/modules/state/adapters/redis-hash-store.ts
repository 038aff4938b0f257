import type { Cluster, Redis } from 'ioredis';
import { isRedisCluster } from '../../../cluster/redis-connection';
import { EngineError } from '../../../protocol/errors';
import { redisWhere } from '../../../cluster/redis-connection';
import type { Json } from '../../../protocol/messages';
import { applyUpdateOps, parseUpdateOps, type UpdateOpError } from '../update-ops';
import { ABSENT, COMPARE_AND_SET, DELETE_RETURNING_OLD, runScript, SET_RETURNING_OLD } from './redis-scripts';

/**
 * Compare-and-set rounds one update may lose to writers on other nodes before it gives up.
 * Updates of one key from this node run one after another, so only other nodes contend: each
 * lost round means another node's write landed, and 50 of them in a row means a hot key.
 */
const MAX_UPDATE_ATTEMPTS = 50;
/** Keys asked for per SCAN step: Redis's own default is 10; 100 is what the original uses. */
const SCAN_COUNT = 100;

/** What an update did: `old` undefined means the field did not exist. */
export interface HashUpdate {
  old: Json | undefined;
  value: Json;
  errors: UpdateOpError[];
}

/**
 * JSON values as text in Redis hashes: the storage shared by the `redis` adapters of `iii-state`
 * (hash per scope) and `iii-stream` (hash per group). It owns no connection (the adapter does)
 * and names no keys (the adapter does); it only knows the commands and scripts.
 *
 * `update` is a compare-and-set loop, not a Lua script applying the ops (the original's way):
 * Lua's cjson turns `[]` into `{}`, rounds integers above 2^53 and reorders keys, so values
 * would change just by being updated. Here the ops run in TypeScript through `applyUpdateOps`
 * (results and error codes are exactly the memory adapter's), and COMPARE_AND_SET writes the
 * result only if nobody wrote in between; if somebody did, it returns the new current text and
 * the ops run again on that. Cost: two round trips per update (HGET, then the script), plus one
 * per lost round.
 */
export class RedisHashStore {
  /** Tail of the running updates per hash field, so this node's updates of one key do not contend. */
  private readonly updating = new Map<string, Promise<void>>();

  /**
   * @param contentionCode error code of an update that lost MAX_UPDATE_ATTEMPTS rounds in a row.
   */
  constructor(
    private readonly redis: Redis,
    private readonly contentionCode: string,
  ) {}

  async get(hash: string, field: string): Promise<Json | undefined> {
    return parse(await this.command(() => this.redis.hget(hash, field)));
  }

  /** Stores `text` (JSON); returns the value replaced. */
  async set(hash: string, field: string, text: string): Promise<Json | undefined> {
    return parse(
      textOrUndefined(await this.command(() => runScript(this.redis, SET_RETURNING_OLD, [hash], [field, text]))),
    );
  }

  async delete(hash: string, field: string): Promise<Json | undefined> {
    return parse(
      textOrUndefined(await this.command(() => runScript(this.redis, DELETE_RETURNING_OLD, [hash], [field]))),
    );
  }

  /**
   * Applies update ops atomically with respect to every writer of the field on every node.
   * `serialize` turns the result into the text to store and may refuse it by throwing (size
   * limits); then nothing is stored. Invalid ops throw before Redis is asked anything, so they
   * fail the same way with Redis up or down.
   */
  async update(hash: string, field: string, ops: Json, serialize: (value: Json) => string): Promise<HashUpdate> {
    parseUpdateOps(ops);
    return this.oneAtATime(`${hash.length}:${hash}${field}`, () => this.compareAndSetLoop(hash, field, ops, serialize));
  }

  /** The values of a hash, in Redis's field order (insertion order while the hash is small). */
  async values(hash: string): Promise<Json[]> {
    const texts = await this.command(() => this.redis.hvals(hash));
    return texts.map((text) => JSON.parse(text) as Json);
  }

  /** Every field of a hash with its value. */
  async fields(hash: string): Promise<Array<[string, Json]>> {
    const all = await this.command(() => this.redis.hgetall(hash));
    return Object.entries(all).map(([field, text]) => [field, JSON.parse(text) as Json]);
  }

  async fieldNames(hash: string): Promise<string[]> {
    return this.command(() => this.redis.hkeys(hash));
  }

  /**
   * Every hash whose key starts with `prefix`, deduplicated (SCAN may return a key twice).
   * SCAN, never KEYS: KEYS blocks Redis while it walks the whole keyspace.
   */
  async hashesStartingWith(prefix: string): Promise<string[]> {
    // Glob specials in the prefix (a key prefix, a stream name) must match themselves.
    const pattern = `${prefix.replace(/[\\*?[\]]/g, '\\$&')}*`;
    const found = new Set<string>();
    // SCAN walks the keys of one server: in Cluster mode each primary holds its share, so each is walked.
    const servers = isRedisCluster(this.redis) ? (this.redis as unknown as Cluster).nodes('master') : [this.redis];
    for (const server of servers) {
      let cursor = '0';
      do {
        const [next, keys] = await this.command(() =>
          server.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', 'hash'),
        );
        for (const key of keys) found.add(key);
        cursor = next;
      } while (cursor !== '0');
    }
    return [...found];
  }

  private async compareAndSetLoop(
    hash: string,
    field: string,
    ops: Json,
    serialize: (value: Json) => string,
  ): Promise<HashUpdate> {
    let current = (await this.command(() => this.redis.hget(hash, field))) ?? undefined;
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const old = parse(current);
      // applyUpdateOps moves op values into its result: each round gets its own copy of the ops.
      const { value, errors } = applyUpdateOps(old, structuredClone(ops));
      const text = serialize(value);
      const reply = await this.command(() =>
        runScript(this.redis, COMPARE_AND_SET, [hash], [field, current ?? ABSENT, text]),
      );
      const [written, now] = reply as [number, string?];
      if (written === 1) return { old, value, errors };
      current = now;
    }
    throw new EngineError(
      this.contentionCode,
      `Update failed: too much contention (the key changed under ${MAX_UPDATE_ATTEMPTS} attempts in a row); retry later or spread the writes over more keys.`,
    );
  }

  /** Runs `work` after the previous work of `key` has settled. */
  private oneAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
    const run = (this.updating.get(key) ?? Promise.resolve()).then(work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.updating.set(key, tail);
    void tail.then(() => {
      if (this.updating.get(key) === tail) this.updating.delete(key);
    });
    return run;
  }

  /** Runs one Redis call; a failure says whether Redis is unreachable or refused the command. */
  private async command<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      const where = redisWhere(this.redis);
      if (this.redis.status !== 'ready')
        throw new Error(`Redis at ${where} is unreachable (connection ${this.redis.status}): ${detail}`);
      throw new Error(`Redis at ${where} refused the command: ${detail}`);
    }
  }
}

function textOrUndefined(reply: unknown): string | undefined {
  return typeof reply === 'string' ? reply : undefined;
}

function parse(text: string | null | undefined): Json | undefined {
  return text === null || text === undefined ? undefined : (JSON.parse(text) as Json);
}
