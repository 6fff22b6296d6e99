// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// the functional core (schemas, projections, replay) never does I/O and never reaches into the shell
const coreBans = {
  patterns: [
    { group: ['**/services/**', '../services/*', '../../services/*'], message: 'the core must not import services/ (dependencies point services → replay → projections → schemas)' },
    { group: ['kafkajs', 'better-sqlite3', '@eventstore/*', '@kurrent/*', '@clickhouse/*', 'chdb', 'chdb/*', 'express', 'pino', 'prom-client'], message: 'I/O libraries belong in services/' },
    { group: ['node:fs', 'node:fs/*', 'node:net', 'node:http', 'node:https', 'node:child_process', 'node:worker_threads', 'node:dgram', 'node:os', 'node:process', 'fs', 'net', 'http', 'child_process'], message: 'no I/O in the core' },
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/peer/**', 'bench/results/**', 'coverage/**', '.data/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': ['error', { allow: ['error', 'warn'] }],
    },
  },
  {
    files: ['schemas/**/*.ts', 'projections/**/*.ts', 'replay/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/testing/**'],
    rules: { 'no-restricted-imports': ['error', coreBans] },
  },
  {
    files: ['schemas/**/*.ts', 'projections/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/testing/**'],
    rules: { 'no-restricted-imports': ['error', { ...coreBans, patterns: [...coreBans.patterns, { group: ['**/replay/**', '../replay/*'], message: 'projections and schemas must not import replay/' }] }] },
  },
  {
    // services/shared/ is what every program builds on (stores, ingest, Kafka, config, times): it knows none of them
    files: ['services/shared/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/testing/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/serve/**', '**/cli/**', '**/collector/**', '**/simulator/**', '**/diagnose/**', '**/kernelOracle/**'], message: 'services/shared/ must not import a program (serve, cli, collector, simulator, diagnose, kernelOracle)' }] },
      ],
    },
  },
  {
    files: ['services/cli/**/*.ts', 'bench/**/*.ts', 'deploy/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
