// Bundles the web console (ui/console) into dist/console/app.js and app.css with esbuild, so the
// console server ships everything it serves and fetches nothing at run time. `npm run build` runs it.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/console');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, 'ui/console/main.ts')],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'iife',
  target: ['es2020'],
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
  legalComments: 'eof',
});
copyFileSync(join(root, 'ui/console/app.css'), join(out, 'app.css'));
