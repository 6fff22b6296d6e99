import { z } from 'zod';
import { canonicalObject } from './canonicalObject.js';
import { envelopeShape } from './envelope.js';

export type EventFamily = 'topology' | 'driver' | 'vfio-cdev' | 'iommufd' | 'vfio-group' | 'trace' | 'report';

export interface EventMeta {
  readonly family: EventFamily;
  /** true when the event records a call with an outcome that a protocol model can re-decide */
  readonly operation: boolean;
  /** one line: what happened and which kernel path it comes from */
  readonly doc: string;
  /**
   * the first upstream release whose uAPI has this call or signal (kernel-changes-6.7-to-7.3.md, §1);
   * absent for what every release the project models (5.x on) has
   */
  readonly since?: KernelSince;
}

/** an upstream release as `major.minor` */
export type KernelSince = `${number}.${number}`;

/** one catalogue entry: the envelope plus a strict `data` object, with a literal type and version */
export const defineEvent = <const T extends string, const V extends number, Shape extends z.ZodRawShape>(
  type: T,
  version: V,
  data: Shape,
  meta: EventMeta,
) => {
  const schema = canonicalObject({
    ...envelopeShape,
    type: z.literal(type),
    schemaVersion: z.literal(version, { error: (iss) => `expected schemaVersion ${version} of ${type}, got ${JSON.stringify(iss.input)}` }),
    data: canonicalObject(data),
  });
  return { type, version, schema, meta: { ...meta } };
};
