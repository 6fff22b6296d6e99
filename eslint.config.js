// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The dependency picture (README "Architecture"): services → replay → projections → schemas. The core (schemas,
// projections, replay) never does I/O and never reaches into the shell; each layer imports only the layers to its
// right. The pure programs in services/ (the simulator but its sinks, diagnose but its corpus files) and the
// collector's parsers get the same I/O bans. No production file imports a test fixture (testing/, fixtures/).
// services/layout.int.spec.ts holds this file and the README's picture to the real imports.
const ban = {
  services: { group: ['**/services/**', '../services/*', '../../services/*'], message: 'the core must not import services/ (dependencies point services → replay → projections → schemas)' },
  replay: { group: ['**/replay/**', '../replay/*'], message: 'projections and schemas must not import replay/ (dependencies point services → replay → projections → schemas)' },
  projections: { group: ['**/projections/**', '../projections/*'], message: 'schemas must not import projections/ (dependencies point services → replay → projections → schemas)' },
  ioLibraries: { group: ['kafkajs', 'better-sqlite3', '@eventstore/*', '@kurrent/*', '@clickhouse/*', 'chdb', 'chdb/*', 'express', 'pino', 'prom-client'], message: 'I/O libraries belong in services/' },
  nodeIo: { group: ['node:fs', 'node:fs/*', 'node:net', 'node:http', 'node:https', 'node:child_process', 'node:worker_threads', 'node:dgram', 'node:os', 'node:process', 'fs', 'net', 'http', 'child_process'], message: 'no I/O in the core' },
  testFixtures: { group: ['**/testing/**', '**/fixtures/**'], message: 'production code must not import a test fixture (testing/, fixtures/)' },
  programs: { group: ['**/serve/**', '**/cli/**', '**/collector/**', '**/simulator/**', '**/diagnose/**', '**/kernelOracle/**'], message: 'services/shared/ must not import a program (serve, cli, collector, simulator, diagnose, kernelOracle)' },
};
const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
// deciders and folds never read the clock, random numbers or the environment (style G3)
const pureGlobals = {
  'no-restricted-globals': ['error', { name: 'process', message: 'the pure core reads no environment: pass it in' }],
  'no-restricted-properties': [
    'error',
    { object: 'Date', property: 'now', message: 'the pure core reads no clock: `now` arrives with the command or event' },
    { object: 'Math', property: 'random', message: 'the pure core draws no random numbers: take a seeded generator' },
  ],
};
const notProduction = ['**/*.spec.ts', '**/*.features.ts', '**/testing/**'];
const PURE_SERVICES = ['services/simulator/**/*.ts', 'services/diagnose/**/*.ts', 'services/collector/parsers/**/*.ts'];
const PURE_SERVICES_IO = ['services/simulator/sinks.ts', 'services/diagnose/corpus/**'];

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
  // later blocks replace the rule of earlier ones for the files they match, so each lists every ban it needs
  { files: ['services/**/*.ts'], ignores: notProduction, rules: restrict(ban.testFixtures) },
  { files: PURE_SERVICES, ignores: [...notProduction, ...PURE_SERVICES_IO], rules: { ...restrict(ban.ioLibraries, ban.nodeIo, ban.testFixtures), ...pureGlobals } },
  { files: ['replay/**/*.ts'], ignores: notProduction, rules: { ...restrict(ban.services, ban.ioLibraries, ban.nodeIo, ban.testFixtures), ...pureGlobals } },
  { files: ['projections/**/*.ts'], ignores: notProduction, rules: { ...restrict(ban.services, ban.replay, ban.ioLibraries, ban.nodeIo, ban.testFixtures), ...pureGlobals } },
  { files: ['schemas/**/*.ts'], ignores: notProduction, rules: { ...restrict(ban.services, ban.replay, ban.projections, ban.ioLibraries, ban.nodeIo, ban.testFixtures), ...pureGlobals } },
  // services/shared/ is what every program builds on (stores, ingest, Kafka, config, times): it knows none of them
  { files: ['services/shared/**/*.ts'], ignores: notProduction, rules: restrict(ban.programs, ban.testFixtures) },
  // the store-independent formats (canonical JSON and hash chain, Merkle tree, signed checkpoint note) are pure: hashing only
  { files: ['services/shared/eventStore/format/**/*.ts'], ignores: notProduction, rules: { ...restrict(ban.programs, ban.ioLibraries, ban.nodeIo, ban.testFixtures), ...pureGlobals } },
  {
    files: ['services/cli/**/*.ts', 'bench/**/*.ts', 'deploy/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
