// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Dependencies point inward (see README "Code layout"): the pure core imports nothing with I/O,
// and the injector (src/) and the exporter (exporter/) never import each other.
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
    { group: ['../*', '!../core/*'], message: 'src/core imports only src/core.' },
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
