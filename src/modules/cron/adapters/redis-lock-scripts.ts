/**
 * The Lua scripts of the Redis cron lock. Each runs atomically in Redis, which is what makes a
 * tick fire exactly once however many nodes attempt it, and whatever their clocks say.
 */

/**
 * Claims one tick of a job for one node: the tick must be later than every tick already claimed
 * (so a node with a lagging clock, or a slow timer, cannot fire a tick a second time), and no
 * other node may be running the job (so runs never overlap). On success it records the tick and
 * marks the run as this node's.
 *
 * KEYS[1] tick key: hash {at = highest claimed scheduled time (epoch ms), by = node that claimed it}
 * KEYS[2] run key: string, the node running the job; expires unless that node keeps extending it
 * ARGV[1] scheduled time of the tick, epoch ms
 * ARGV[2] node id of the claimant
 * ARGV[3] how long the tick key is kept after its last claim, ms
 * ARGV[4] lifetime of the run key, ms
 * Returns 1 claimed; 0 this tick or a later one was claimed already; -1 another node is running the job.
 */
export const CLAIM_TICK = `
local last = tonumber(redis.call('HGET', KEYS[1], 'at'))
if last and last >= tonumber(ARGV[1]) then return 0 end
local runner = redis.call('GET', KEYS[2])
if runner and runner ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'at', ARGV[1], 'by', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
return 1
`;

/**
 * Keeps a run marked as a node's while its handler runs.
 *
 * KEYS[1] run key
 * ARGV[1] node id of the runner
 * ARGV[2] new lifetime of the run key, ms
 * Returns 1 extended; 0 the key expired or belongs to another node.
 */
export const EXTEND_RUN = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/**
 * Ends a node's run, unless the key has meanwhile expired and been taken by another node.
 *
 * KEYS[1] run key
 * ARGV[1] node id of the runner
 * Returns 1 deleted; 0 the key was gone or belongs to another node.
 */
export const END_RUN = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
