import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JSON_SCHEMA_PATH, renderCatalogueJsonSchema } from '../services/cli/commands/jsonSchema.js';
import { EVENT_TYPES } from './index.js';

describe('JSON Schema export', () => {
  it('the checked-in schema is what the zod catalogue generates (run `npm run schema:json` after changing schemas/)', () => {
    expect(readFileSync(JSON_SCHEMA_PATH, 'utf8')).toBe(renderCatalogueJsonSchema());
  });

  it('describes every event type', () => {
    const schema = JSON.parse(renderCatalogueJsonSchema()) as { oneOf?: { properties: { type: { const: string } } }[]; anyOf?: { properties: { type: { const: string } } }[] };
    const variants = schema.oneOf ?? schema.anyOf ?? [];
    expect(variants.map((v) => v.properties.type.const).sort()).toEqual([...EVENT_TYPES].sort());
  });
});
