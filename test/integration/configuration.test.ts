import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IIIClient } from 'iii-sdk';
import { WATCH_DEBOUNCE_MS } from '../../src/modules/configuration/adapters/fs';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { call, failure, type Any } from '../support/calls';

/**
 * The `configuration` module driven by a real iii-sdk worker: register/get/set/list/schema, the
 * `configuration` trigger type, JSON Schema validation by ajv, and the fs store in the
 * original's layout (`<directory>/<id>.yaml`), watched for outside edits.
 */

const PORT_SCHEMA = {
  type: 'object',
  required: ['port'],
  additionalProperties: false,
  properties: { port: { type: 'integer', minimum: 1, maximum: 65535 }, host: { type: 'string' } },
};

/** `configuration::list` without the engine's own ids (its workers' settings, `iii-*`). */
function ownEntries(listed: Any): Any[] {
  return (listed.configurations as Any[]).filter((c) => !c.id.startsWith('iii-'));
}

function withConfiguration(config: Record<string, unknown>) {
  const base = testConfig();
  return { modules: { ...base.modules, configuration: { enabled: true, config } } };
}

function fsStore(directory: string, extra: Record<string, unknown> = {}) {
  return withConfiguration({ adapter: { name: 'fs', config: { directory } }, ...extra });
}

/** Registers `functionId` on `worker`, recording each payload, bound to a live `configuration` trigger. */
async function recordChanges(
  t: TestEngine,
  worker: IIIClient,
  functionId: string,
  config: Record<string, unknown>,
): Promise<Any[]> {
  const seen: Any[] = [];
  worker.registerFunction(functionId, async (payload: Any) => void seen.push(payload));
  await functionRegistered(t.engine, functionId);
  worker.registerTrigger({ type: 'configuration', function_id: functionId, config });
  await waitFor(
    () => t.engine.registry.triggersOfType('configuration', 'live').some((b) => b.function_id === functionId),
    `a live configuration binding for ${functionId}`,
  );
  return seen;
}

describe('configuration functions (memory store)', () => {
  let t: TestEngine;
  let w: IIIClient;
  beforeAll(async () => {
    t = await startEngine();
    w = t.worker('config-user');
  });
  afterAll(async () => {
    await t.close();
  });

  test('register returns the stored entry; get, schema and list read it back; list is sorted and has no values', async () => {
    const entry = await call(w, 'configuration::register', {
      id: 'web',
      name: 'Web server',
      description: 'Where it listens',
      schema: PORT_SCHEMA,
      initial_value: { port: 8080 },
      metadata: { team: 'edge' },
    });
    expect(entry).toEqual({
      id: 'web',
      name: 'Web server',
      description: 'Where it listens',
      schema: PORT_SCHEMA,
      value: { port: 8080 },
      metadata: { team: 'edge' },
    });
    await call(w, 'configuration::register', { id: 'a-first', name: 'A', schema: { type: 'number' } });
    expect(await call(w, 'configuration::get', { id: 'web' })).toEqual({ id: 'web', value: { port: 8080 } });
    expect(await call(w, 'configuration::get', { id: 'a-first' })).toEqual({ id: 'a-first', value: null });
    expect(await call(w, 'configuration::schema', { id: 'web' })).toEqual({
      id: 'web',
      name: 'Web server',
      description: 'Where it listens',
      schema: PORT_SCHEMA,
      metadata: { team: 'edge' },
    });
    const { configurations } = await call(w, 'configuration::list', {});
    expect(configurations.map((c: Any) => c.id)).toEqual(['a-first', 'web']);
    expect(configurations[1]).toEqual({
      id: 'web',
      name: 'Web server',
      description: 'Where it listens',
      schema: PORT_SCHEMA,
      metadata: { team: 'edge' },
    });
    expect(configurations[0]).toEqual({ id: 'a-first', name: 'A', description: '', schema: { type: 'number' } });
  });

  test('set validates against the schema and returns {old_value, new_value}; a violation is SCHEMA_INVALID naming each one', async () => {
    await call(w, 'configuration::register', {
      id: 'api',
      name: 'API',
      schema: PORT_SCHEMA,
      initial_value: { port: 1 },
    });
    expect(await call(w, 'configuration::set', { id: 'api', value: { port: 2, host: 'h' } })).toEqual({
      old_value: { port: 1 },
      new_value: { port: 2, host: 'h' },
    });
    const err = await failure(w, 'configuration::set', { id: 'api', value: { port: 'x', extra: true } });
    expect(err.code).toBe('SCHEMA_INVALID');
    expect(err.message).toMatch(/\/port must be integer/);
    expect(err.message).toMatch(/must NOT have additional properties \(extra\)/);
    expect(await call(w, 'configuration::get', { id: 'api' })).toEqual({ id: 'api', value: { port: 2, host: 'h' } });
    const initial = await failure(w, 'configuration::register', {
      id: 'api2',
      name: 'x',
      schema: PORT_SCHEMA,
      initial_value: { port: 0 },
    });
    expect(initial.code).toBe('SCHEMA_INVALID');
    expect((await failure(w, 'configuration::get', { id: 'api2' })).code).toBe('NOT_FOUND');
  });

  test('re-register replaces name, schema and metadata and keeps the value unless initial_value is given', async () => {
    await call(w, 'configuration::register', { id: 'keep', name: 'v1', schema: { type: 'integer' }, initial_value: 5 });
    const again = await call(w, 'configuration::register', {
      id: 'keep',
      name: 'v2',
      description: 'd',
      schema: { type: 'integer', maximum: 10 },
    });
    expect(again).toEqual({
      id: 'keep',
      name: 'v2',
      description: 'd',
      schema: { type: 'integer', maximum: 10 },
      value: 5,
    });
    expect(
      (
        await call(w, 'configuration::register', {
          id: 'keep',
          name: 'v3',
          schema: { type: 'integer' },
          initial_value: 9,
        })
      ).value,
    ).toBe(9);
  });

  test('errors: NOT_REGISTERED, INVALID_ID, NOT_FOUND, an uncompilable schema, missing fields', async () => {
    expect((await failure(w, 'configuration::set', { id: 'nobody', value: 1 })).code).toBe('NOT_REGISTERED');
    for (const id of ['Upper', 'has space', 'x'.repeat(65), '../etc', '']) {
      const err = await failure(w, 'configuration::get', { id });
      expect({ id, code: err.code }).toEqual({ id, code: 'INVALID_ID' });
    }
    expect((await failure(w, 'configuration::get', { id: 'unknown' })).code).toBe('NOT_FOUND');
    expect((await failure(w, 'configuration::schema', { id: 'unknown' })).code).toBe('NOT_FOUND');
    const bad = await failure(w, 'configuration::register', {
      id: 'bad',
      name: 'bad',
      schema: { type: 'no-such-type' },
    });
    expect(bad.code).toBe('SCHEMA_INVALID');
    expect(bad.message).toMatch(/not a valid JSON Schema/);
    expect((await failure(w, 'configuration::register', { id: 'bad', name: 'bad' })).code).toBe(
      'deserialization_error',
    );
    expect((await failure(w, 'configuration::set', { id: 'keep' })).code).toBe('deserialization_error');
  });

  test('${VAR} and ${VAR:default} in strings are expanded on every read against the live environment; raw: true reads them as stored', async () => {
    delete process.env['III_TEST_CONFIG_HOST'];
    await call(w, 'configuration::register', {
      id: 'env',
      name: 'env',
      schema: { type: 'object' },
      initial_value: { url: 'http://${III_TEST_CONFIG_HOST:localhost}:${III_TEST_CONFIG_UNSET}/' },
    });
    expect((await call(w, 'configuration::get', { id: 'env' })).value).toEqual({
      url: 'http://localhost:${III_TEST_CONFIG_UNSET}/',
    });
    process.env['III_TEST_CONFIG_HOST'] = 'db.internal';
    try {
      expect((await call(w, 'configuration::get', { id: 'env' })).value).toEqual({
        url: 'http://db.internal:${III_TEST_CONFIG_UNSET}/',
      });
      expect((await call(w, 'configuration::get', { id: 'env', raw: true })).value).toEqual({
        url: 'http://${III_TEST_CONFIG_HOST:localhost}:${III_TEST_CONFIG_UNSET}/',
      });
    } finally {
      delete process.env['III_TEST_CONFIG_HOST'];
    }
  });

  test('schemas of draft-07 and 2020-12 are both understood', async () => {
    const draft7 = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'array',
      items: [{ type: 'string' }],
      additionalItems: false,
    };
    await call(w, 'configuration::register', { id: 'tuple7', name: 't', schema: draft7, initial_value: ['a'] });
    expect((await failure(w, 'configuration::set', { id: 'tuple7', value: ['a', 'b'] })).code).toBe('SCHEMA_INVALID');
    const draft2020 = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'array',
      prefixItems: [{ type: 'string' }],
      items: false,
    };
    await call(w, 'configuration::register', { id: 'tuple2020', name: 't', schema: draft2020, initial_value: ['a'] });
    expect((await failure(w, 'configuration::set', { id: 'tuple2020', value: ['a', 'b'] })).code).toBe(
      'SCHEMA_INVALID',
    );
  });

  test('the configuration trigger fires on registered and updated, filtered by configuration_id and event_types', async () => {
    const all = await recordChanges(t, w, 'cfg::all', {});
    const updatesOfFeed = await recordChanges(t, w, 'cfg::feed-updates', {
      configuration_id: 'feed',
      event_types: ['configuration:updated'],
    });
    await call(w, 'configuration::register', {
      id: 'feed',
      name: 'Feed',
      description: 'd',
      schema: { type: 'integer' },
      initial_value: 1,
    });
    await call(w, 'configuration::set', { id: 'feed', value: 2 });
    await call(w, 'configuration::register', { id: 'other', name: 'Other', schema: {} });
    await waitFor(() => all.length >= 3 && updatesOfFeed.length >= 1, 'the change events');
    await sleep(100);
    expect(all).toEqual([
      {
        type: 'configuration',
        event_type: 'configuration:registered',
        id: 'feed',
        name: 'Feed',
        description: 'd',
        schema: { type: 'integer' },
        old_value: null,
        new_value: 1,
      },
      {
        type: 'configuration',
        event_type: 'configuration:updated',
        id: 'feed',
        name: 'Feed',
        description: 'd',
        schema: { type: 'integer' },
        old_value: 1,
        new_value: 2,
      },
      {
        type: 'configuration',
        event_type: 'configuration:registered',
        id: 'other',
        name: 'Other',
        description: '',
        schema: {},
        old_value: null,
        new_value: null,
      },
    ]);
    expect(updatesOfFeed).toEqual([all[1]]);
  });

  test('a binding with a bad config is refused with the field named', async () => {
    const err = await failure(w, 'engine::register_trigger', {
      trigger_type: 'configuration',
      function_id: 'any::fn',
      config: { event_types: ['configuration:renamed'] },
    });
    expect(err.code).toBe('trigger_registration_failed');
    expect(err.message).toMatch(
      /event_types must be a list of configuration:registered, configuration:updated, configuration:deleted/,
    );
  });
});

describe('configuration with the fs store', () => {
  let dir: string;
  const engines: TestEngine[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'iii-configuration-'));
  });
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((e) => e.close()));
    await rm(dir, { recursive: true, force: true });
  });
  async function start(extra: Record<string, unknown> = {}): Promise<TestEngine> {
    const t = await startEngine(fsStore(join(dir, 'config'), extra));
    engines.push(t);
    return t;
  }

  test('each value is <directory>/<id>.yaml; the directory appears with the first write; values outlive a restart, schemas wait for their worker', async () => {
    let t = await start();
    let w = t.worker('fs-user');
    await expect(stat(join(dir, 'config'))).rejects.toThrow(/ENOENT/);
    await call(w, 'configuration::register', {
      id: 'db',
      name: 'DB',
      schema: { type: 'object', properties: { pool: { type: 'integer' } } },
      initial_value: { pool: 4 },
    });
    await call(w, 'configuration::set', { id: 'db', value: { pool: 8, url: '${DB_URL:postgres://localhost}' } });
    expect(await readFile(join(dir, 'config', 'db.yaml'), 'utf8')).toBe(
      'pool: 8\nurl: ${DB_URL:postgres://localhost}\n',
    );
    await engines.pop()!.close();

    t = await start();
    w = t.worker('fs-user');
    expect(await call(w, 'configuration::get', { id: 'db' })).toEqual({
      id: 'db',
      value: { pool: 8, url: 'postgres://localhost' },
    });
    expect((await failure(w, 'configuration::set', { id: 'db', value: { pool: 1 } })).code).toBe('SCHEMA_UNAVAILABLE');
    expect((await failure(w, 'configuration::schema', { id: 'db' })).code).toBe('SCHEMA_UNAVAILABLE');
    const listed = await call(w, 'configuration::list', {});
    expect(ownEntries(listed)).toEqual([{ id: 'db', name: 'db', description: '', schema: null }]);
    // With the fs store the engine's workers' settings are ids too, sorted among the others.
    const ids = (listed.configurations as Any[]).map((c) => c.id);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining(['iii-http', 'iii-state']));
    const seen = await recordChanges(t, w, 'cfg::db', { configuration_id: 'db' });
    const again = await call(w, 'configuration::register', { id: 'db', name: 'DB', schema: { type: 'object' } });
    expect(again.value).toEqual({ pool: 8, url: 'postgres://localhost' });
    await waitFor(() => seen.length === 1, 'the registered event');
    expect(seen[0]).toMatchObject({
      event_type: 'configuration:registered',
      old_value: null,
      new_value: { pool: 8, url: 'postgres://localhost' },
    });
    expect(await call(w, 'configuration::set', { id: 'db', value: { pool: 1 } })).toEqual({
      old_value: { pool: 8, url: 'postgres://localhost' },
      new_value: { pool: 1 },
    });
  });

  test('outside edits fire the same events; an edit failing the schema is refused and the last good value stays; removing the file deletes', async () => {
    const t = await start();
    const w = t.worker('fs-editor');
    const file = join(dir, 'config', 'limits.yaml');
    await call(w, 'configuration::register', {
      id: 'limits',
      name: 'Limits',
      schema: { type: 'object', properties: { max: { type: 'integer' } } },
      initial_value: { max: 1 },
    });
    const seen = await recordChanges(t, w, 'cfg::limits', { configuration_id: 'limits' });

    await writeFile(file, 'max: 2\n');
    await waitFor(() => seen.length === 1, 'the outside edit', 5000);
    expect(seen[0]).toMatchObject({
      event_type: 'configuration:updated',
      id: 'limits',
      name: 'Limits',
      old_value: { max: 1 },
      new_value: { max: 2 },
    });
    expect((await call(w, 'configuration::get', { id: 'limits' })).value).toEqual({ max: 2 });

    await writeFile(file, 'max: many\n');
    await sleep(WATCH_DEBOUNCE_MS * 3);
    expect(seen).toHaveLength(1);
    expect((await call(w, 'configuration::get', { id: 'limits' })).value).toEqual({ max: 2 });

    await writeFile(file, 'max: [unclosed\n');
    await sleep(WATCH_DEBOUNCE_MS * 3);
    expect((await call(w, 'configuration::get', { id: 'limits' })).value).toEqual({ max: 2 });

    await rm(file);
    await waitFor(() => seen.length === 2, 'the removal', 5000);
    expect(seen[1]).toMatchObject({ event_type: 'configuration:deleted', old_value: { max: 2 }, new_value: null });
    // The registration stays: the id still has its schema and reads as null.
    expect(await call(w, 'configuration::get', { id: 'limits' })).toEqual({ id: 'limits', value: null });
  });

  test('our own writes do not come back as outside edits', async () => {
    const t = await start();
    const w = t.worker('fs-writer');
    await call(w, 'configuration::register', { id: 'quiet', name: 'q', schema: { type: 'integer' }, initial_value: 0 });
    const seen = await recordChanges(t, w, 'cfg::quiet', { configuration_id: 'quiet' });
    for (let i = 1; i <= 5; i++) await call(w, 'configuration::set', { id: 'quiet', value: i });
    await sleep(WATCH_DEBOUNCE_MS * 3);
    expect(seen.map((e) => e.new_value)).toEqual([1, 2, 3, 4, 5]);
  });

  test('ttl_seconds: an id whose last binding went away is deleted that long after', async () => {
    const t = await start({ ttl_seconds: 1 });
    const w = t.worker('fs-ttl');
    await call(w, 'configuration::register', { id: 'temp', name: 't', schema: {}, initial_value: 'x' });
    const watcher = t.worker('fs-ttl-watcher');
    await recordChanges(t, watcher, 'cfg::temp', { configuration_id: 'temp' });
    await sleep(1500);
    expect((await call(w, 'configuration::get', { id: 'temp' })).value).toBe('x');
    await watcher.shutdown();
    const gone = () =>
      call(w, 'configuration::get', { id: 'temp' }).then(
        () => false,
        (err: Any) => err.code === 'NOT_FOUND',
      );
    await waitFor(gone, 'the id to expire', 5000);
    // The file goes right after the id (the removal is written through once memory is updated).
    await waitFor(
      () =>
        stat(join(dir, 'config', 'temp.yaml')).then(
          () => false,
          (err: Any) => err.code === 'ENOENT',
        ),
      'temp.yaml to go',
      2000,
    );
  });
});
