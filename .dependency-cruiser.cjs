/**
 * The layering of docs/ARCHITECTURE.md ("Layers"), checked by `npm run lint`: a file may import
 * from its own layer and the layers below it, never above, and no import circle is allowed
 * (type-only imports included: they are how a circle starts).
 */
const LAYERS = [
  ['protocol', 'store'],
  ['observability', 'registry', 'config'],
  ['transport'],
  ['router', 'console'],
  ['cluster'],
  ['engine'],
  ['modules'],
  // The composition of a node and its entry points: src/cli.ts, src/create-engine.ts, src/cli/.
  ['cli', 'cli.ts', 'create-engine.ts'],
];

const path = (dirs) => `^src/(${dirs.map((d) => d.replace('.', '\\.')).join('|')})($|/)`;

/**
 * Known exceptions, as [importing file, imported file, reason]: remove one by moving the code,
 * never add one lightly.
 */
const ALLOWED_UPWARD = [
  // Config load checks the Redis URL (and Sentinel settings) with the very parser the cluster
  // connects with, so a config that loads is one that connects.
  ['src/config/load.ts', 'src/cluster/redis-options.ts'],
];

const exact = (file) => `^${file.replace(/\./g, '\\.')}$`;

const layerRules = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer[0]}`,
  comment: `${layer.join('/')} must not import a layer above it (${LAYERS.slice(i + 1)
    .flat()
    .join(', ')})`,
  severity: 'error',
  from: { path: path(layer), pathNot: ALLOWED_UPWARD.map(([from]) => exact(from)) },
  to: { path: path(LAYERS.slice(i + 1).flat()) },
}));
// The files with an exception keep every other rule of their layer.
const exceptionRules = ALLOWED_UPWARD.map(([from, to]) => {
  const i = LAYERS.findIndex((layer) => new RegExp(path(layer)).test(from));
  return {
    name: `layer-${LAYERS[i][0]}-except`,
    severity: 'error',
    from: { path: exact(from) },
    to: { path: path(LAYERS.slice(i + 1).flat()), pathNot: exact(to) },
  };
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'no import circles, type-only imports included',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    ...exceptionRules,
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
  },
};
