// @ts-check
import js from '@eslint/js';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

// Dependencies point inward (see README "Where things live"): common/ (the toolbox every program
// shares) and the pure core import nothing with I/O, the injector (src/) and the exporter
// (exporter/) never import each other, and no module imports itself back through a cycle.
const noIoInCore = {
  patterns: [
    {
      group: ['node:*', 'fs', 'path', 'http', 'https', 'os', 'child_process'],
      message: 'src/core is pure: no Node.js I/O.',
    },
    {
      group: [
        'fastify',
        'fastify/*',
        '@fastify/*',
        'yaml',
        'pino',
        'prom-client',
        '@kubernetes/*',
        'selfsigned',
      ],
      message: 'src/core is pure: keep I/O libraries in the shells.',
    },
    { regex: '^\\.\\./(?!core/|\\.\\./common/)', message: 'src/core imports only src/core and common/.' },
    { group: ['**/exporter/**'], message: 'src and exporter never import each other.' },
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  { files: ['src/core/**/*.ts'], rules: { 'no-restricted-imports': ['error', noIoInCore] } },
  {
    // The shared toolbox is pure and self-contained, so any program can take it.
    files: ['common/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...noIoInCore.patterns.slice(0, 2).map((p) => ({ ...p, message: 'common/ is pure: no I/O.' })),
            { group: ['../*'], message: 'common/ imports only common/.' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver': { node: { extensions: ['.ts', '.js'] } },
    },
    // Type-only imports count too: a cycle of types still ties two modules' meanings together.
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/core/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/exporter/**'], message: 'src and exporter never import each other.' }] },
      ],
    },
  },
  {
    // The demo app shares the image, not the code: it imports only its own modules.
    files: ['src/sample-app/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../*', '**/exporter/**'], message: 'src/sample-app imports only src/sample-app.' },
          ],
        },
      ],
    },
  },
  {
    files: ['exporter/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/src/**'], message: 'src and exporter never import each other.' }] },
      ],
    },
  },
);
