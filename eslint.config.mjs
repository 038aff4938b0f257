// Type-aware lint (`npm run lint`): typescript-eslint's recommended rules with type information,
// promises that are neither awaited nor handled are errors, and so is unused code.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'ui/**', 'loadtest/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // An async method that does not await keeps the Promise contract of the interface it implements.
      '@typescript-eslint/require-await': 'off',
      // Error messages quote what a stranger sent, whatever its type, through String() on purpose.
      '@typescript-eslint/no-base-to-string': 'off',
      // A `let` set once after the closures that read it (a server's handlers) stays a `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests and benches read answers of any shape (what an SDK resolved, a parsed log line).
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      // Bench children load the engine lazily (`require`), so the relay child holds none of it.
      '@typescript-eslint/no-require-imports': 'off',
      // `trigger(...) as Promise<Answer>` names the answer a test expects.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
);
