#!/usr/bin/env node
import { createMain } from './program.js';
import { registerJsonSchema } from './commands/jsonSchema.js';
import { registerValidate } from './commands/validate.js';

// each subcommand lives in commands/<name>.ts and registers itself here, one line each
export const main = createMain([
  registerValidate,
  registerJsonSchema,
]);

const isEntry = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry || process.argv[1]?.endsWith('/cli/main.ts') || process.argv[1]?.endsWith('/cli/main.js')) {
  process.exitCode = await main(process.argv.slice(2));
}
