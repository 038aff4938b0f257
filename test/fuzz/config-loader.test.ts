import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { MAX_CONFIG_VALUES } from '../../src/config/expand';
import { ConfigError, loadConfig } from '../../src/config/load';
import { prototypeSnapshot, prototypeUnchanged } from './arbitraries/hostile-json';
import { FUZZ_TEST_TIMEOUT_MS, fuzzParams, scaledRuns } from './arbitraries/runs';
import { aliasBomb, hostileEnv, mutatedConfig, yamlSoup } from './arbitraries/yaml-config';

/**
 * The config loader (`loadConfig`: file, `${VAR}` expansion, env overrides, validation) against
 * 6,500 hostile files and environments. It returns a config or throws its own ConfigError
 * (never a TypeError, RangeError or stack overflow), in bounded time, and leaves
 * Object.prototype alone.
 */
jest.setTimeout(FUZZ_TEST_TIMEOUT_MS);

/** One load may take this long at most, in ms: generous for a shared 2-core machine. */
const MAX_LOAD_MS = 2_000;

let dir: string;
let file: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-fuzz-config-'));
  file = path.join(dir, 'config.yaml');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Loads `text` as the config file; the outcome must be a config or a ConfigError, in time. */
function checkLoad(text: string, env: NodeJS.ProcessEnv = {}): 'loaded' | ConfigError {
  fs.writeFileSync(file, text);
  const started = performance.now();
  let outcome: 'loaded' | ConfigError;
  try {
    const { config } = loadConfig({ path: file, env });
    expect(config.listeners.length).toBeGreaterThan(0);
    outcome = 'loaded';
  } catch (err) {
    if (!(err instanceof ConfigError))
      throw new Error(`loadConfig threw ${String(err)} instead of a ConfigError`, { cause: err });
    expect(err.message.length).toBeGreaterThan(0);
    outcome = err;
  }
  expect(performance.now() - started).toBeLessThan(MAX_LOAD_MS);
  return outcome;
}

describe('config loader fuzzing (6,500 runs)', () => {
  const before = prototypeSnapshot();

  it('answers 2,000 texts of YAML punctuation soup with a config or a ConfigError', () => {
    fc.assert(
      fc.property(yamlSoup, (text) => void checkLoad(text)),
      fuzzParams(scaledRuns(2_000)),
    );
  });

  it('answers 3,000 mutated shipped configs (wrong kinds, unknown and prototype keys, huge numbers, placeholders)', () => {
    fc.assert(
      fc.property(mutatedConfig, hostileEnv, (text, env) => void checkLoad(text, env)),
      fuzzParams(scaledRuns(3_000)),
    );
  });

  it('answers 1,000 hostile environments without a file', () => {
    fc.assert(
      fc.property(hostileEnv, (env) => {
        try {
          loadConfig({ env });
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
        }
      }),
      fuzzParams(scaledRuns(1_000)),
    );
  });

  it('refuses 500 alias bombs quickly instead of expanding them', () => {
    fc.assert(
      fc.property(aliasBomb, ({ text, leaves }) => {
        const outcome = checkLoad(text);
        if (leaves > MAX_CONFIG_VALUES) expect(outcome).toBeInstanceOf(ConfigError);
      }),
      fuzzParams(scaledRuns(500)),
    );
  });

  it('left Object.prototype as it was', () => {
    expect(prototypeUnchanged(before)).toBe(true);
  });
});

describe('config loader regressions found by fuzzing', () => {
  /** The ConfigError of loading `text` (fails if it loads or throws anything else). */
  function refusal(text: string, env: NodeJS.ProcessEnv = {}): string {
    const outcome = checkLoad(text, env);
    if (outcome === 'loaded') throw new Error('the config loaded; expected a ConfigError');
    return outcome.message;
  }

  it('refuses the classic billion-laughs document (9 levels of 9 aliases) in bounded time', () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const [name, below] = [String.fromCharCode(97 + i), String.fromCharCode(96 + i)];
      lines.push(`${name}: &${name} [${Array(9).fill(`*${below}`).join(',')}]`);
    }
    const message = refusal(
      `workers:\n  - name: iii-state\n    config:\n      adapter:\n        name: kv\n        config:\n${lines.map((l) => `          ${l}`).join('\n')}\n`,
    );
    expect(message).toBe(
      `${file}: the document expands to more than ${MAX_CONFIG_VALUES} values (YAML aliases are copied at every use; write the values out or use fewer aliases)`,
    );
  });

  it('refuses aliases nesting past 128 levels (each level one alias deeper)', () => {
    const lines = ['l0: &l0 [x]'];
    for (let i = 1; i < 140; i++) lines.push(`l${i}: &l${i} [*l${i - 1}]`);
    expect(refusal(lines.join('\n') + '\n')).toBe(`${file}: lists and mappings nest deeper than 128 levels`);
  });

  it('refuses a "__proto__" key instead of silently dropping it', () => {
    expect(refusal('engine:\n  __proto__: {node_id: "x"}\n')).toBe(
      `${file}: engine.__proto__: "__proto__" cannot be a key`,
    );
    expect(refusal('workers:\n  - name: iii-http\n    config:\n      __proto__: {port: 99}\n')).toContain(
      '"__proto__" cannot be a key',
    );
  });

  it('does not take Object.prototype members for environment variables in ${...}', () => {
    expect(refusal('engine:\n  node_id: ${constructor}\n')).toBe(
      `${file}: environment variable 'constructor' is not set and has no default (at engine.node_id)`,
    );
    expect(refusal('engine:\n  node_id: ${toString}\n', { HOME: '/root' })).toContain(
      "environment variable 'toString' is not set",
    );
  });

  it('names an inherited member used as a key an unknown key, listing the known ones', () => {
    expect(refusal('engine:\n  constructor: {a: 1}\n')).toBe(
      `${file}: engine.constructor: unknown key (expected one of: node_id, log_level, invocation_timeout_ms, drain_grace_ms, metrics, console, channels)`,
    );
    expect(
      refusal('workers:\n  - name: iii-http\n    config:\n      middleware: [{function_id: f, toString: 1}]\n'),
    ).toContain('toString: unknown key');
  });
});
