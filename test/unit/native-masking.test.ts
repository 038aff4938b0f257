/**
 * ws masks every frame a client sends and unmasks every frame a server receives. Without the
 * native `bufferutil` it does so in a JavaScript loop: 1.8 ms of CPU per 256 KiB frame on this
 * project's bench machine (docs/BENCHMARKS.md, issue 12 change 4). The engine ships it as an
 * optional dependency with a prebuilt binary; this test fails when the binary does not load.
 */
import { createRequire } from 'node:module';

const load = createRequire(__filename);

describe('native WebSocket masking', () => {
  it('loads the prebuilt bufferutil binary, not its JavaScript fallback', () => {
    let bufferutil: { mask: unknown; unmask: unknown };
    try {
      bufferutil = load('bufferutil');
    } catch (err) {
      throw new Error(
        `bufferutil is missing (${(err as Error).message}): run \`npm install\` (it is an optionalDependency)`,
      );
    }
    const fallback: unknown = load('bufferutil/fallback');
    expect(bufferutil).not.toBe(fallback);
    expect(bufferutil.mask).not.toBe((fallback as { mask: unknown }).mask);
  });

  it('masks and unmasks as the JavaScript loop does', () => {
    const native = load('bufferutil') as {
      mask(s: Buffer, m: Buffer, o: Buffer, off: number, len: number): void;
      unmask(b: Buffer, m: Buffer): void;
    };
    const source = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff));
    const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    const output = Buffer.alloc(source.length);
    native.mask(source, key, output, 0, source.length);
    expect(output.equals(Buffer.from(source.map((b, i) => b ^ key[i % 4])))).toBe(true);
    native.unmask(output, key);
    expect(output.equals(source)).toBe(true);
  });
});
