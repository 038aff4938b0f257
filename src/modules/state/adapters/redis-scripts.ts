import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * The Lua scripts of the Redis-backed `iii-state` and `iii-stream` storage (both keep JSON text
 * in one hash per scope or group). Values stay opaque text here: Lua's cjson does not round-trip
 * JSON faithfully (empty arrays, integers above 2^53, key order), so no script parses them.
 */

/** A Lua script and its SHA1, run with EVALSHA (EVAL once the server lacks it). */
export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** Text that no JSON value serializes to: the "field must be absent" marker of COMPARE_AND_SET. */
export const ABSENT = '';

export const SET_RETURNING_OLD = script(`
--[[ Stores a value and returns the one it replaced, atomically.
  KEYS[1] the hash
  ARGV[1] field
  ARGV[2] new JSON text
  Returns: the old JSON text, or nil when the field was absent. ]]
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return old
`);

export const DELETE_RETURNING_OLD = script(`
--[[ Removes a field and returns the value it held, atomically. Redis drops a hash left empty.
  KEYS[1] the hash
  ARGV[1] field
  Returns: the old JSON text, or nil when the field was absent. ]]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then redis.call('HDEL', KEYS[1], ARGV[1]) end
return old
`);

export const COMPARE_AND_SET = script(`
--[[ Writes a field only if it still holds what the caller read (compare-and-set).
  KEYS[1] the hash
  ARGV[1] field
  ARGV[2] expected current JSON text, or '' (ABSENT) when the field must not exist
  ARGV[3] new JSON text
  Returns: {1} when written; {0} when not and the field is absent;
           {0, current JSON text} when not and the field holds something else. ]]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current == false and ARGV[2] == '') or current == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return {1}
end
if current == false then return {0} end
return {0, current}
`);

/** Runs `script` by SHA; a server that does not know it yet (restart, SCRIPT FLUSH) gets the source. */
export async function runScript(
  redis: Redis,
  { lua, sha }: LuaScript,
  keys: string[],
  args: string[],
): Promise<unknown> {
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return redis.eval(lua, keys.length, ...keys, ...args);
  }
}
