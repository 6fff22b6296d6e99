#!/usr/bin/env node
import { createMain } from './program.js';
import { registerJsonSchema } from './commands/jsonSchema.js';
import { registerIngest } from './commands/ingest.js';
import { registerQuery } from './commands/query.js';
import { registerServe } from './commands/serve.js';
import { registerValidate } from './commands/validate.js';
import { registerReplay } from './commands/replay.js';
import { registerVerify } from './commands/verify.js';
import { registerExport } from './commands/export.js';
import { registerIngestKafka } from './commands/ingestKafka.js';
import { registerDiagnose } from './commands/diagnose.js';
import { registerCollect } from './commands/collect.js';
import { registerSimulate } from './commands/simulate.js';
import { registerToken } from './commands/token.js';
import { registerWitness } from './commands/witness.js';
import { registerKeys } from './commands/keys.js';
import { registerReport } from './commands/report.js';

// each subcommand lives in commands/<name>.ts and registers itself here, one line each
export const main = createMain([
  registerServe,
  registerIngest,
  registerQuery,
  registerValidate,
  registerReplay,
  registerVerify,
  registerExport,
  registerIngestKafka,
  registerJsonSchema,
  registerDiagnose,
  registerCollect,
  registerSimulate,
  registerToken,
  registerWitness,
  registerKeys,
  registerReport,
]);

const isEntry = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry || process.argv[1]?.endsWith('/cli/main.ts') || process.argv[1]?.endsWith('/cli/main.js')) {
  process.exitCode = await main(process.argv.slice(2));
}
