import { spawn } from 'node:child_process';
import path from 'node:path';

const BIN = path.resolve(__dirname, '../../bin/iii-cluster.js');
/** A CLI run that has not ended by then is killed and fails the test: every command must end by its deadline. */
const HARD_LIMIT_MS = 20_000;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** From spawn to exit, in ms. */
  elapsedMs: number;
}

/**
 * Runs `node bin/iii-cluster.js <args>` as its own process (it runs `dist/`: build first).
 * The environment is the test's minus III_URL and III_WORKER_TOKEN, plus `env`; `input` is
 * written to its stdin, which is then closed (without `input`, stdin is closed at once, or
 * left open with `holdStdin`, until the process exits).
 */
export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; holdStdin?: boolean; cwd?: string } = {},
): Promise<CliRun> {
  const { III_URL: _url, III_WORKER_TOKEN: _token, ...inherited } = process.env;
  const startedAt = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { ...inherited, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on('error', () => undefined);
  if (options.holdStdin !== true) child.stdin.end(options.input);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `iii-cluster ${args.join(' ')} did not exit within ${HARD_LIMIT_MS} ms; stdout: ${stdout} stderr: ${stderr}`,
        ),
      );
    }, HARD_LIMIT_MS);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, elapsedMs: Date.now() - startedAt });
    });
  });
}
