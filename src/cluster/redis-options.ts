import fs from 'node:fs';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import { redactUrl } from '../observability/redact-url';
import { FailoverSafeSentinelConnector } from './sentinel-connector';

/** One Redis Sentinel. */
export interface SentinelAddress {
  host: string;
  port: number;
}

/** A primary found through Redis Sentinel (cluster.redis_sentinels + cluster.redis_sentinel_name). */
export interface SentinelSpec {
  sentinels: SentinelAddress[];
  /** The primary's name in the sentinels' config (`sentinel monitor <name> ...`). */
  name: string;
  /** The sentinels' own password (III_REDIS_SENTINEL_PASSWORD); the data nodes take `password`. */
  password?: string;
}

/** A Redis Cluster: a few of its nodes (any, primaries or replicas); the client learns the rest. */
export interface ClusterSpec {
  nodes: SentinelAddress[];
}

/** Where a Redis is and how to prove who we are to it: a URL, a Sentinel-managed primary, or a Redis Cluster. */
export interface RedisEndpoint {
  /**
   * `redis://[user[:password]@]host[:port][/db]`, or `rediss://...` for TLS. User and password
   * are percent-encoded, as in any URL. Absent in Sentinel mode.
   */
  url?: string;
  /** Sentinel mode: connections ask these sentinels for the primary, and again after every failover. */
  sentinel?: SentinelSpec;
  /** Cluster mode (III_REDIS_CLUSTER_NODES): connections are `Redis.Cluster`, keys spread over the shards. */
  cluster?: ClusterSpec;
  /** Replaces the URL's password (III_REDIS_PASSWORD); in Sentinel mode, the data nodes' password. */
  password?: string;
  /** Sentinel and Cluster mode only (with a URL, rediss:// decides): TLS to the sentinels and the data nodes. */
  tls?: boolean;
  /** PEM file of the CA certificate(s) trusted for TLS (cluster.redis_tls_ca_file); default: the system store. */
  tlsCaFile?: string;
  /** Told of every error on a connection made for this endpoint, with the connection's role (its name's last part). */
  onError?: (connection: string) => void;
}

/** The port of a URL that names none, as every Redis client assumes. */
const DEFAULT_PORT = 6379;

/** The port of a sentinel entry that names none, as Redis Sentinel's own default. */
const DEFAULT_SENTINEL_PORT = 26379;

/**
 * How often a connection's failover watcher (one subscription to `+switch-master` per sentinel)
 * redials a sentinel it lost, in ms. ioredis's default is a minute, during which a failover
 * that leaves the old primary reachable would go unnoticed until a write meets READONLY.
 */
const SENTINEL_RECONNECT_MS = 1000;

/** Wait between rounds over every sentinel while none answers, growing per round up to the cap, in ms. */
const SENTINEL_RETRY_STEP_MS = 100;
const SENTINEL_RETRY_MAX_MS = 2000;

/**
 * `host:port,host:port` (III_REDIS_SENTINELS), or the entries of a YAML list; the port defaults
 * to 26379, an IPv6 address goes in brackets (`[::1]:26379`). Throws, naming the bad entry, on
 * an empty list or entry, a URL, a missing host or a port that is not 1-65535.
 */
export function parseSentinels(value: string | readonly string[]): SentinelAddress[] {
  return parseHostPorts(value, 'sentinel', DEFAULT_SENTINEL_PORT);
}

/**
 * `host:port,host:port` (III_REDIS_CLUSTER_NODES), or the entries of a YAML list: some nodes of a
 * Redis Cluster; the port defaults to 6379. Throws as parseSentinels does.
 */
export function parseClusterNodes(value: string | readonly string[]): SentinelAddress[] {
  return parseHostPorts(value, 'cluster node', DEFAULT_PORT);
}

function parseHostPorts(value: string | readonly string[], what: string, defaultPort: number): SentinelAddress[] {
  const entries = typeof value === 'string' ? value.split(',').map((e) => e.trim()) : value.map((e) => e.trim());
  if (entries.length === 0 || (entries.length === 1 && entries[0] === ''))
    throw new Error(`no ${what} given (expected host:port,host:port...)`);
  return entries.map((entry) => {
    const match = /^(?:\[([^\]]+)\]|([^\s:/@[\]]+))(?::(\d+))?$/.exec(entry);
    const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
    if (match === null || port < 1 || port > 65535) {
      throw new Error(
        `${what} ${JSON.stringify(entry)} is not host:port (expected e.g. 10.0.0.5:${defaultPort} or [::1]:${defaultPort}, entries separated by commas)`,
      );
    }
    return { host: match[1] ?? match[2], port };
  });
}

const hostPort = (a: SentinelAddress): string =>
  a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;

/** An endpoint for a log line or an error message: the URL without its password, or the sentinels and the primary's name. */
export function describeEndpoint(endpoint: RedisEndpoint): string {
  if (endpoint.cluster !== undefined)
    return `Redis Cluster ${endpoint.cluster.nodes.map(hostPort).join(',')}${endpoint.tls ? ' (TLS)' : ''}`;
  if (endpoint.sentinel !== undefined) {
    const sentinels = endpoint.sentinel.sentinels.map(hostPort).join(',');
    return `primary "${endpoint.sentinel.name}" of sentinels ${sentinels}${endpoint.tls ? ' (TLS)' : ''}`;
  }
  return redactUrl(endpoint.url ?? '');
}

/**
 * ioredis options for an endpoint: host, port, db, user and password from the URL, the
 * endpoint's password in place of the URL's, and TLS for rediss:// (certificate and host name
 * verified). Query parameters become options as ioredis would read them (`?family=6`). Throws on
 * a URL that is not redis:// or rediss://, or an unreadable CA file; the message never holds the
 * password.
 */
export function redisOptions(endpoint: RedisEndpoint): RedisOptions {
  if (endpoint.cluster !== undefined)
    throw new Error('a Redis Cluster takes clusterOptions, not redisOptions (it is a Redis.Cluster, not one Redis)');
  if (endpoint.sentinel !== undefined) return sentinelOptions(endpoint, endpoint.sentinel);
  if (endpoint.url === undefined)
    throw new Error('no Redis given (expected a redis:// URL or sentinels and a primary name)');
  return urlOptions(endpoint, endpoint.url);
}

/**
 * Sentinel mode: ioredis asks the sentinels for the primary at every (re)connect and checks the
 * node it reaches still has the master role. Two ways a connection could stay on a node that is
 * no longer the primary are closed here: the sentinels' `+switch-master` announcement drops it
 * (failoverDetector, in a connector that drops it with its connection: FailoverSafeSentinelConnector), and a write answered READONLY (an old primary that came back as a
 * replica) drops it and resends the command once it is on the new primary (reconnectOnError).
 */
function sentinelOptions(endpoint: RedisEndpoint, sentinel: SentinelSpec): RedisOptions {
  const options: RedisOptions = {
    sentinels: sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: sentinel.name,
    role: 'master',
    failoverDetector: true,
    Connector: FailoverSafeSentinelConnector,
    sentinelReconnectStrategy: () => SENTINEL_RECONNECT_MS,
    sentinelRetryStrategy: (round) => Math.min(round * SENTINEL_RETRY_STEP_MS, SENTINEL_RETRY_MAX_MS),
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  };
  if (sentinel.password !== undefined) options.sentinelPassword = sentinel.password;
  if (endpoint.password !== undefined) options.password = endpoint.password;
  if (endpoint.tls === true) {
    const tls = endpoint.tlsCaFile === undefined ? {} : { ca: readCa(endpoint.tlsCaFile) };
    options.tls = tls;
    options.sentinelTLS = tls;
    options.enableTLSForSentinelMode = true;
  }
  return options;
}

/**
 * Cluster mode: the options of `new Redis.Cluster(nodes, ...)`. `redisOptions` are those of each
 * node connection (password, TLS); the caller adds its own (connection name, timeouts) there.
 */
export function clusterOptions(endpoint: RedisEndpoint): ClusterOptions {
  const node: RedisOptions = {};
  if (endpoint.password !== undefined) node.password = endpoint.password;
  if (endpoint.tls === true) node.tls = endpoint.tlsCaFile === undefined ? {} : { ca: readCa(endpoint.tlsCaFile) };
  return {
    redisOptions: node,
    // A MOVED/ASK or a shard mid-failover: retried this many times (about a second) before the
    // command fails, so a CLUSTER FAILOVER is ridden out, never waited on past its deadline.
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
  };
}

function urlOptions(endpoint: RedisEndpoint, text: string): RedisOptions {
  const url = parseRedisUrl(text);
  const options: RedisOptions = {};
  url.searchParams.forEach((value, key) => {
    (options as Record<string, unknown>)[key] = key === 'family' ? Number(value) : value;
  });
  if (url.hostname === '') throw new Error(`Redis URL ${redactUrl(text)}: no host (expected redis://host:port)`);
  options.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  options.port = url.port === '' ? DEFAULT_PORT : Number(url.port);
  // The path is not echoed: in a mistyped URL it may hold the password.
  const db = url.pathname.slice(1);
  if (db !== '') {
    if (!/^\d+$/.test(db))
      throw new Error(`Redis URL ${redactUrl(text)}: the path must be a database number (/0, /1...)`);
    options.db = Number(db);
  }
  if (url.username !== '') options.username = decoded(url.username, text);
  const password = endpoint.password ?? (url.password === '' ? undefined : decoded(url.password, text));
  if (password !== undefined) options.password = password;
  if (url.protocol === 'rediss:')
    options.tls = endpoint.tlsCaFile === undefined ? {} : { ca: readCa(endpoint.tlsCaFile) };
  return options;
}

function parseRedisUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`not a Redis URL: ${redactUrl(text)} (expected redis://host:port or rediss://host:port)`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new Error(`not a Redis URL: ${redactUrl(text)} (expected redis:// or rediss://, got ${url.protocol}//)`);
  }
  return url;
}

/** A percent-decoded user or password; a broken escape is an error that does not echo it. */
function decoded(part: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Error(`Redis URL ${redactUrl(url)}: the user or password has a malformed %-escape (write % as %25)`);
  }
}

function readCa(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(
      `cannot read the Redis TLS CA file ${file} (III_REDIS_TLS_CA_FILE / cluster.redis_tls_ca_file): ${(err as Error).message}`,
    );
  }
}

/**
 * The key prefix of a group of keys that one MULTI or MGET touches together. On a Redis Cluster
 * they must share a slot (else CROSSSLOT), so the group's name becomes a hash tag:
 * `<prefix>{<group>}:`. On one Redis or with Sentinel the keys keep the names they always had,
 * so a rolling upgrade of a running cluster still finds them.
 */
export function slotPrefix(endpoint: RedisEndpoint, prefix: string, group: string): string {
  return endpoint.cluster === undefined ? prefix : `${prefix}{${group}}:`;
}
