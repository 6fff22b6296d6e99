import { writeFileSync } from 'node:fs';
import { catalogueJsonSchema } from '../../../schemas/index.js';
import { EXIT } from '../exitCodes.js';
import type { RegisterCommand } from '../program.js';

export const JSON_SCHEMA_PATH = 'schemas/json-schema/iommu-event.schema.json';

export const renderCatalogueJsonSchema = (): string => `${JSON.stringify(catalogueJsonSchema(), null, 2)}\n`;

/** `iommutrail json-schema [--out file]`: the catalogue as JSON Schema for producers in other languages */
export const registerJsonSchema: RegisterCommand = (program, run) => {
  program
    .command('json-schema')
    .description(`print the event catalogue as JSON Schema (draft 2020-12); the checked-in copy is ${JSON_SCHEMA_PATH}`)
    .option('--out <file>', 'write to a file instead of stdout')
    .action((opts: { out?: string }) =>
      run(async () => {
        const text = renderCatalogueJsonSchema();
        if (opts.out) writeFileSync(opts.out, text);
        else process.stdout.write(text);
        return EXIT.ok;
      }),
    );
};
