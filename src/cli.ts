import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { ExitCode } from './cli/exit-codes';
import { isOpsCommand, OPS_USAGE, runOps } from './cli/ops';
import { ConfigError, loadConfig } from './config/load';
import { ENGINE_VERSION } from './config/version';
import { createEngine } from './create-engine';
import { SettingsReloader } from './engine/settings-reloader';
import { createLogger } from './observability/logger';
import { isClusterMode } from './cluster/redis-target';

/**
 * The `iii-cluster` command. Without a subcommand: load the configuration, start one engine
 * node, stop it on SIGINT/SIGTERM. With one (`trigger`, `functions`, `workers`, `nodes`,
 * `queues`, `dlq`, `config check`): an operator command against a running engine (cli/ops.ts).
 *
 * Exit codes of a node: 0 after a clean stop (or --help/--version); 1 when the engine fails to
 * start or to stop; 2 for a bad command line or configuration (the message goes to stderr, no
 * stack trace); 130 when a second signal arrives while stopping. Those of the operator
 * commands are in cli/exit-codes.ts.
 */

const USAGE = `Usage: iii-cluster [--config|-c <file>] [--help|-h] [--version|-v]
       iii-cluster <command> [arguments] [--url <ws://host:port>] [--token <token>] [--json] [--timeout <ms>]

Runs one node of an iii v0.22 wire-compatible engine.

Options:
  -c, --config <file>  configuration in the iii config.yaml format. Without it, ./config.yaml
                       is used if it exists, else the built-in defaults (every module on, in
                       memory, workers on port 49134; see config/default.yaml).
  -h, --help           print this help
  -v, --version        print the version

Environment overrides: III_WS_PORT, III_HTTP_PORT, III_STREAM_PORT, III_METRICS_PORT,
III_NODE_ID, LOG_LEVEL, III_REDIS_URL (cluster mode), III_DRAIN_GRACE_MS. See
src/config/load.ts.

Signals: the first SIGTERM/SIGINT drains the node (/readyz 503, new connections refused,
calls in flight finish within engine.drain_grace_ms, default 25 s) and exits 0; a second
one exits at once with 130.

${OPS_USAGE}`;

/** The file read when no --config is given, as the iii binary does. */
const DEFAULT_CONFIG_FILE = 'config.yaml';

/** How long after the drain grace a stopping node may take to close everything before it exits anyway, in ms. */
export const STOP_SLACK_MS = 5000;

/** Exit code for a bad command line or configuration. */
const EXIT_USAGE = ExitCode.usage;
/** Exit code when a second signal cuts the shutdown short (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

interface CliOptions {
  config?: string;
  help: boolean;
  version: boolean;
}

function parseCommandLine(argv: readonly string[]): CliOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'v', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const options: CliOptions = { help: values.help === true, version: values.version === true };
  if (values.config !== undefined) options.config = values.config;
  return options;
}

export async function main(argv: readonly string[]): Promise<void> {
  if (isOpsCommand(argv)) {
    // process.exitCode, not process.exit(): a piped stdout is flushed before the process ends.
    process.exitCode = await runOps(argv);
    return;
  }
  let options: CliOptions;
  try {
    options = parseCommandLine(argv);
  } catch (err) {
    process.stderr.write(`iii-cluster: ${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (options.version) {
    process.stdout.write(`iii-cluster ${ENGINE_VERSION}\n`);
    return;
  }

  const path = options.config ?? (fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(path === undefined ? {} : { path });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`iii-cluster: ${err.message}\n`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  const { config, warnings, notices } = loaded;

  // The engine puts the node id on its own log lines.
  const logger = createLogger(config.logLevel);
  logger.info(
    { node: config.nodeId, config: config.source ?? 'built-in defaults', cluster: isClusterMode(config.cluster) },
    'configuration loaded',
  );
  for (const notice of notices) logger.info(notice);
  for (const warning of warnings) logger.warn(warning);

  // A promise nobody awaited must not take the node (and every worker on it) down: log it, serve on.
  process.on('unhandledRejection', (reason) =>
    logger.error({ err: reason }, 'unhandled promise rejection (a bug: please report it)'),
  );

  const engine = createEngine(config, { logger });
  const reloader = new SettingsReloader(engine, path, logger);
  const started = engine.start().then(() => reloader.start());

  // First signal: drain and stop (after start has settled, so stop never races it). The drain
  // lasts at most engine.drain_grace_ms plus the module and cluster shutdown: keep the
  // orchestrator's kill timeout (Kubernetes terminationGracePeriodSeconds, 30 s by default)
  // above it. Second signal: the operator does not want to wait.
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while stopping, exiting at once');
      process.exit(EXIT_INTERRUPTED);
    }
    stopping = true;
    logger.info(
      { signal, drainGraceMs: config.drainGraceMs },
      'draining, then stopping (send the signal again to exit at once)',
    );
    // Whatever Redis, the workers or a module do, one signal ends the process in bounded time.
    setTimeout(() => {
      logger.error(
        { deadlineMs: config.drainGraceMs + STOP_SLACK_MS },
        'the engine did not stop within drain_grace_ms + 5 s; exiting',
      );
      process.exit(1);
    }, config.drainGraceMs + STOP_SLACK_MS).unref();
    started
      .catch(() => undefined)
      .then(() => reloader.stop())
      .then(() => engine.stop())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'engine failed to stop cleanly');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await started;
  } catch (err) {
    if (stopping) return;
    logger.fatal({ err }, 'engine failed to start');
    await engine.stop().catch(() => undefined);
    process.exit(1);
  }
}
