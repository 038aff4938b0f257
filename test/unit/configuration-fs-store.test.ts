import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsConfigurationStore, MAX_FILE_BYTES } from '../../src/modules/configuration/adapters/fs';
import pino from 'pino';

/** The fs store's own rules: the one-time move from the old location, and files it refuses to read. */

let dir: string;
const warnings: string[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iii-config-store-'));
  warnings.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('files in the old location move over once; a name present in both stays where it is, with a warning', async () => {
  const old = join(dir, 'data', 'configuration');
  await mkdir(old, { recursive: true });
  await writeFile(join(old, 'moved.yaml'), 'a: 1\n');
  await writeFile(join(old, 'both.yaml'), 'old: true\n');
  await writeFile(join(old, 'Not An Id.yaml'), 'x: 1\n');
  await mkdir(join(dir, 'config'));
  await writeFile(join(dir, 'config', 'both.yaml'), 'new: true\n');

  const store = new FsConfigurationStore({ directory: join(dir, 'config'), migrateFrom: old, logger });
  await store.open(() => undefined);
  try {
    expect(await store.value('moved')).toEqual({ a: 1 });
    expect(await store.value('both')).toEqual({ new: true });
    expect(existsSync(join(old, 'moved.yaml'))).toBe(false);
    expect(await readFile(join(old, 'both.yaml'), 'utf8')).toBe('old: true\n');
    expect(existsSync(join(old, 'Not An Id.yaml'))).toBe(true);
    expect(warnings.join('\n')).toMatch(/both\.yaml exists in both/);
  } finally {
    await store.close();
  }
});

test(`a file that is not YAML, or larger than ${MAX_FILE_BYTES} bytes, is skipped with a warning; the others load`, async () => {
  await writeFile(join(dir, 'good.yaml'), '- 1\n- 2\n');
  await writeFile(join(dir, 'broken.yaml'), 'a: [1\n');
  await writeFile(join(dir, 'huge.yaml'), `x: "${'y'.repeat(MAX_FILE_BYTES)}"\n`);
  await writeFile(join(dir, 'empty.yaml'), '');
  const store = new FsConfigurationStore({ directory: dir, logger });
  await store.open(() => undefined);
  try {
    expect((await store.entries()).map((e) => e.id).sort()).toEqual(['empty', 'good']);
    expect(await store.value('empty')).toBeNull();
    expect(warnings.join('\n')).toMatch(/broken\.yaml; it is ignored/);
    expect(warnings.join('\n')).toMatch(/huge\.yaml is larger than/);
  } finally {
    await store.close();
  }
});
