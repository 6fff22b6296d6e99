import { z } from 'zod';

/**
 * Every object of the catalogue: strict (unknown keys are errors) and with its shape's keys in UTF-16
 * code-unit order. zod builds a parsed object in shape order, so a parsed event's JSON.stringify is already its
 * RFC 8785 canonical form, the bytes the store hashes: it serialises them natively instead of sorting keys per
 * event (services/shared/eventStore/format/chain.ts checks the order and falls back for any other object).
 */
export const canonicalObject = <Shape extends z.ZodRawShape>(shape: Shape) => {
  // the default sort compares UTF-16 code units, RFC 8785's key order
  const sorted = Object.fromEntries(Object.keys(shape).sort().map((k) => [k, shape[k]])) as Shape;
  return z.strictObject(sorted);
};
