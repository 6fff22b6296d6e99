import { z } from 'zod';
import { IommuEventSchema } from './catalogue.js';

/**
 * JSON Schema (draft 2020-12) of the event catalogue for producers in other languages (a C or Go
 * collector). Generated from the zod schemas, describing what a producer may send (the input side:
 * short PCI addresses and defaults are accepted). `schemas/json-schema/iommu-event.schema.json` is
 * this, checked in; a test keeps the two in sync.
 */
export const catalogueJsonSchema = (): Record<string, unknown> => {
  const schema = z.toJSONSchema(IommuEventSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  return {
    $id: 'https://iommutrail.dev/schemas/iommu-event.schema.json',
    title: 'iommutrail event',
    description: 'One IOMMU ownership event: envelope plus type-specific data. Generated from schemas/ (zod); do not edit.',
    ...schema,
  };
};
