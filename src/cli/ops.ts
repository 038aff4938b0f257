import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load';
import { MAX_DLQ_PAGE } from '../modules/queue/dlq-functions';
import type { Json } from '../protocol/messages';
import { ConnectionFailure, EngineClient, FunctionFailure } from './engine-client';
import { ExitCode } from './exit-codes';
import { formatDuration, formatTable } from './table';

/**
 * The operator subcommands of `iii-cluster` (`trigger`, `functions`, `workers`, `nodes`,
 * `queues`, `dlq`, `config check`): each opens one connection to a running engine's worker
 * port, calls the engine's own functions as a worker would, prints the answer and exits with a
 * code from exit-codes.ts. `config check` needs no engine.
 */

/** Used when neither --url nor III_URL is given: a local engine on the iii default port. */
export const DEFAULT_URL = 'ws://127.0.0.1:49134';
/** Default of --timeout, in ms: the whole command (connecting and every call) ends by then. */
export const DEFAULT_TIMEOUT_MS = 30_000;

export const OPS_USAGE = `Operator commands (talk to a running engine over its worker port):
  iii-cluster trigger <function_id> [json|-]  call a function with a JSON payload (default {};
                                              - reads it from stdin), print its result (alias: t)
  iii-cluster functions [--all]               registered functions (--all: engine internals too)
  iii-cluster workers                         connected workers and in-process modules
  iii-cluster nodes                           cluster nodes: state (ready/draining), uptime, workers
  iii-cluster queues                          named queues and durable topics: depth, consumers,
                                              dead letters
  iii-cluster dlq list <queue>                dead letters of a queue (oldest first, at most ${MAX_DLQ_PAGE})
  iii-cluster dlq redrive <queue> [id]        move every dead letter (or the one with this id) back
  iii-cluster config check <file>             validate a config file without starting (no engine needed)

Options of the operator commands:
  --url <ws://host:port>  the engine's worker port (default: env III_URL, else ${DEFAULT_URL});
                          wss:// trusts the system CAs and NODE_EXTRA_CA_CERTS
  --token <token>         the worker token, sent as "Authorization: Bearer <token>"
                          (default: env III_WORKER_TOKEN)
  --json                  raw JSON on stdout, for scripts (default: tables for people)
  --timeout <ms>          the whole command ends by then (default ${DEFAULT_TIMEOUT_MS})

Exit codes of the operator commands:
  0  ok
  1  the function answered an error (its code and message on stderr); dlq redrive <queue> <id>
     found no such dead letter
  2  bad command line, JSON payload or configuration (config check: the file is invalid)
  3  no answer: cannot connect, auth refused, or timeout (stderr says which)
`;

const COMMANDS = new Set(['trigger', 't', 'functions', 'workers', 'nodes', 'queues', 'dlq', 'config']);

/** True when `argv` starts with an operator subcommand (else `iii-cluster` runs an engine node). */
export function isOpsCommand(argv: readonly string[]): boolean {
  return argv.length > 0 && COMMANDS.has(argv[0]);
}

/** Where a command reads and writes (the process's, or a test's). */
export interface OpsIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { destroy?: () => void };
  env: NodeJS.ProcessEnv;
}

interface OpsOptions {
  url: string;
  token: string | undefined;
  json: boolean;
  timeoutMs: number;
  all: boolean;
}

/** A bad command line: printed with the usage, exit 2. */
class UsageError extends Error {}

/** A failure already reported on stderr: exit with `code`. */
class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Runs one operator command and resolves with the process's exit code. */
export async function runOps(argv: readonly string[], io: OpsIo = processIo()): Promise<number> {
  const startedAt = Date.now();
  let options: OpsOptions;
  let positionals: string[];
  try {
    ({ options, positionals } = parseCommandLine(argv, io.env));
  } catch (err) {
    if (err === HELP) {
      io.stdout.write(OPS_USAGE);
      return ExitCode.ok;
    }
    io.stderr.write(`iii-cluster: ${(err as Error).message}\n\n${OPS_USAGE}`);
    return ExitCode.usage;
  }
  const deadlineMs = startedAt + options.timeoutMs;
  try {
    await dispatch(positionals, options, io, deadlineMs);
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof Exit) return err.code;
    if (err instanceof UsageError) {
      io.stderr.write(`iii-cluster: ${err.message}\n\nRun iii-cluster --help for the commands.\n`);
      return ExitCode.usage;
    }
    if (err instanceof FunctionFailure) {
      io.stderr.write(`iii-cluster: ${err.functionId} answered an error: ${err.code}: ${err.message}\n`);
      return ExitCode.failed;
    }
    if (err instanceof ConnectionFailure) {
      io.stderr.write(`iii-cluster: ${err.message}\n`);
      return ExitCode.unreachable;
    }
    throw err;
  }
}

const HELP = new Error('help');

function parseCommandLine(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { options: OpsOptions; positionals: string[] } {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean', default: false },
      timeout: { type: 'string' },
      all: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help === true) throw HELP;
  const url = values.url ?? nonEmpty(env['III_URL']) ?? DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--url: "${url}" is not a URL (expected ws://host:port or wss://host:port)`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')
    throw new Error(`--url: "${url}" is not a ws:// or wss:// URL`);
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (values.timeout !== undefined) {
    timeoutMs = Number(values.timeout);
    if (!/^\d+$/.test(values.timeout) || !Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
      throw new Error(`--timeout: "${values.timeout}" is not a whole number of milliseconds > 0`);
    }
  }
  return {
    options: {
      url,
      token: values.token ?? nonEmpty(env['III_WORKER_TOKEN']),
      json: values.json === true,
      timeoutMs,
      all: values.all === true,
    },
    positionals,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

async function dispatch(args: string[], options: OpsOptions, io: OpsIo, deadlineMs: number): Promise<void> {
  const [command, ...rest] = args;
  const arity = (min: number, max: number, usage: string) => {
    if (rest.length < min || rest.length > max) throw new UsageError(`usage: iii-cluster ${usage}`);
  };
  const out = (value: Json | undefined, human: () => string) =>
    io.stdout.write(options.json ? `${JSON.stringify(value ?? null)}\n` : human());
  switch (command) {
    case 'config': {
      if (rest[0] !== 'check' || rest.length !== 2) throw new UsageError('usage: iii-cluster config check <file>');
      return configCheck(rest[1], options, io);
    }
    case 'trigger':
    case 't': {
      arity(1, 2, 'trigger <function_id> [json|-]');
      const functionId = rest[0];
      const payload = await readPayload(rest[1], io, deadlineMs);
      const result = await withEngine(options, deadlineMs, (client) => client.call(functionId, payload));
      // The result is JSON whatever the mode: indented for people, one line for scripts.
      return void io.stdout.write(
        options.json ? `${JSON.stringify(result ?? null)}\n` : `${JSON.stringify(result ?? null, null, 2)}\n`,
      );
    }
    case 'functions': {
      arity(0, 0, 'functions [--all]');
      const answer = await withEngine(options, deadlineMs, (client) =>
        client.call('engine::functions::list', options.all ? { include_internal: true } : {}),
      );
      const functions = records(field(answer, 'functions'));
      return void out(functions, () =>
        formatTable(
          ['FUNCTION', 'NAMESPACE', 'WORKER', 'DESCRIPTION'],
          functions.map((f) => [text(f.function_id), text(f.namespace), text(f.worker_name), text(f.description)]),
        ),
      );
    }
    case 'workers': {
      arity(0, 0, 'workers');
      const { answer, self } = await withEngine(options, deadlineMs, async (client) => ({
        answer: await client.call('engine::workers::list', {}),
        self: client.workerId,
      }));
      // This command's own connection is not one of the operator's workers.
      const workers = records(field(answer, 'workers')).filter((w) => self === undefined || w.id !== self);
      const now = Date.now();
      return void out(workers, () =>
        formatTable(
          ['NAME', 'ID', 'RUNTIME', 'STATUS', 'FUNCTIONS', 'ACTIVE', 'CONNECTED'],
          workers.map((w) => [
            text(w.name),
            text(w.id),
            text(w.runtime),
            text(w.status),
            text(w.function_count),
            text(w.active_invocations),
            typeof w.connected_at_ms === 'number' ? `${formatDuration(now - w.connected_at_ms)} ago` : '',
          ]),
        ),
      );
    }
    case 'nodes': {
      arity(0, 0, 'nodes');
      const nodes = records(
        field(await withEngine(options, deadlineMs, (client) => client.call('engine::cluster::nodes', {})), 'nodes'),
      );
      return void out(nodes, () =>
        formatTable(
          ['NODE', 'STATE', 'UPTIME', 'WORKERS', 'URL'],
          nodes.map((n) => [
            `${text(n.node_id)}${n.self === true ? ' *' : ''}`,
            text(n.state),
            typeof n.uptime_ms === 'number' ? formatDuration(n.uptime_ms) : '',
            text(n.worker_count),
            text(n.url),
          ]),
        ).concat('(* the node that answered)\n'),
      );
    }
    case 'queues': {
      arity(0, 0, 'queues');
      const queues = await withEngine(options, deadlineMs, async (client) => {
        const topics = records(await client.call('engine::queue::list_topics', {}));
        return Promise.all(
          topics.map(async (topic) => {
            const stats = asRecord(await client.call('engine::queue::topic_stats', { topic: topic.name ?? null }));
            return {
              name: topic.name ?? null,
              broker_type: topic.broker_type ?? null,
              depth: stats.depth ?? null,
              consumer_count: stats.consumer_count ?? null,
              dlq_depth: stats.dlq_depth ?? null,
            };
          }),
        );
      });
      return void out(queues, () =>
        formatTable(
          ['QUEUE', 'TYPE', 'DEPTH', 'CONSUMERS', 'DEAD LETTERS'],
          queues.map((q) => [
            text(q.name),
            text(q.broker_type),
            text(q.depth),
            text(q.consumer_count),
            text(q.dlq_depth),
          ]),
        ),
      );
    }
    case 'dlq':
      return dlq(rest, options, io, deadlineMs, out);
    default:
      throw new UsageError(`unknown command "${command ?? ''}"`);
  }
}

async function dlq(
  rest: string[],
  options: OpsOptions,
  io: OpsIo,
  deadlineMs: number,
  out: (value: Json | undefined, human: () => string) => void,
): Promise<void> {
  const [action, queue, id, ...extra] = rest;
  if (action === 'list' && queue !== undefined && id === undefined) {
    const letters = records(
      await withEngine(options, deadlineMs, (client) =>
        client.call('engine::queue::dlq_messages', { topic: queue, limit: MAX_DLQ_PAGE }),
      ),
    );
    return out(letters, () =>
      formatTable(
        ['ID', 'FAILED AT', 'RETRIES', 'ERROR'],
        letters.map((l) => [
          text(l.id),
          typeof l.failed_at === 'number' ? new Date(l.failed_at * 1000).toISOString() : '',
          text(l.retries),
          text(l.error),
        ]),
      ),
    );
  }
  if (action !== 'redrive' || queue === undefined || extra.length > 0)
    throw new UsageError('usage: iii-cluster dlq list <queue> | dlq redrive <queue> [id]');
  if (id === undefined) {
    const answer = asRecord(
      await withEngine(options, deadlineMs, (client) => client.call('iii::queue::redrive', { queue })),
    );
    return out(answer, () => `${text(answer.redriven)} dead letter(s) of ${queue} moved back to the queue\n`);
  }
  const answer = asRecord(
    await withEngine(options, deadlineMs, (client) =>
      client.call('iii::queue::redrive_message', { queue, message_id: id }),
    ),
  );
  out(answer, () => (answer.redriven === 1 ? `dead letter ${id} of ${queue} moved back to the queue\n` : ''));
  if (answer.redriven !== 1) {
    io.stderr.write(`iii-cluster: ${queue} has no dead letter ${id} (see iii-cluster dlq list ${queue})\n`);
    throw new Exit(ExitCode.failed);
  }
}

/** Validates like a starting node (environment overrides included), without starting one. */
function configCheck(file: string, options: OpsOptions, io: OpsIo): void {
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig({ path: file });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (options.json) io.stdout.write(`${JSON.stringify({ file, valid: false, error: err.message })}\n`);
    io.stderr.write(`iii-cluster: ${file} is invalid: ${err.message}\n`);
    throw new Exit(ExitCode.usage);
  }
  const { warnings, notices } = loaded;
  if (options.json) {
    io.stdout.write(`${JSON.stringify({ file, valid: true, warnings, notices })}\n`);
    return;
  }
  for (const notice of notices) io.stderr.write(`note: ${notice}\n`);
  for (const warning of warnings) io.stderr.write(`warning: ${warning}\n`);
  io.stdout.write(
    `${file}: valid${warnings.length > 0 ? ` (${warnings.length} warning${warnings.length === 1 ? '' : 's'})` : ''}\n`,
  );
}

/** Connects, runs `use`, closes: the connection never outlives the command. */
async function withEngine<T>(
  options: OpsOptions,
  deadlineMs: number,
  use: (client: EngineClient) => Promise<T>,
): Promise<T> {
  const client = await EngineClient.connect({
    url: options.url,
    deadlineMs,
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

/** The payload of `trigger`: the argument, or stdin for `-`, parsed as JSON (default `{}`). */
async function readPayload(arg: string | undefined, io: OpsIo, deadlineMs: number): Promise<Json> {
  if (arg === undefined) return {};
  const source = arg === '-' ? await readStdin(io, deadlineMs) : arg;
  try {
    return JSON.parse(source) as Json;
  } catch (err) {
    throw new UsageError(`the payload${arg === '-' ? ' on stdin' : ''} is not JSON: ${(err as Error).message}`);
  }
}

/** All of stdin, or a timeout failure at the deadline (stdin is then let go, so the process can exit). */
function readStdin(io: OpsIo, deadlineMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(
      () => {
        io.stdin.destroy?.();
        reject(
          new ConnectionFailure(
            'timeout',
            'timeout: stdin was not closed before the deadline (--timeout); pipe the payload in, or give it as an argument',
          ),
        );
      },
      Math.max(0, deadlineMs - Date.now()),
    );
    io.stdin.on('data', (chunk: Buffer | string) =>
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk),
    );
    io.stdin.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    io.stdin.once('error', (err: Error) => {
      clearTimeout(timer);
      reject(new UsageError(`cannot read stdin: ${err.message}`));
    });
  });
}

type JsonRecord = Record<string, Json>;

function asRecord(value: Json | undefined): JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
}

function field(value: Json | undefined, key: string): Json | undefined {
  return asRecord(value)[key];
}

function records(value: Json | undefined): JsonRecord[] {
  return Array.isArray(value) ? value.map(asRecord) : [];
}

/** A cell: strings as they are, null/absent empty, anything else as JSON. */
function text(value: Json | undefined): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function processIo(): OpsIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
