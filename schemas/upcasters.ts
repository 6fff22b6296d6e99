import { z } from 'zod';
import { canonicalObject } from './canonicalObject.js';
import { envelopeShape } from './envelope.js';
import { DeviceNameSchema, HandleSchema, ObjectIdSchema } from './ids.js';
import { outcomeOf } from './outcome.js';

/**
 * Older versions of event types, each with the function that lifts it one version up. Stored events are
 * never rewritten (G2): they are upcast on read, so every path sees the current shape.
 */
export interface Upcaster {
  readonly type: string;
  readonly fromVersion: number;
  /** the strict shape of that old version, so a malformed old event is named as such */
  readonly schema: z.ZodType;
  /** the same event one version up; the result is validated again against the next schema */
  readonly up: (old: Record<string, unknown>) => Record<string, unknown>;
}

/**
 * VfioDeviceAttachPtIssued v1 came from the first iommufd VFIO series, where a device attached only to an
 * IOAS (`ioasId`) and the kernel returned the auto hwpt as `hwptId`. v2 follows the merged uapi
 * (`vfio_device_attach_iommufd_pt.pt_id`: IOAS or HWPT in, hwpt actually attached out).
 */
const AttachPtV1 = canonicalObject({
  ...envelopeShape,
  type: z.literal('VfioDeviceAttachPtIssued'),
  schemaVersion: z.literal(1),
  data: canonicalObject({
    device: DeviceNameSchema,
    deviceFd: HandleSchema,
    ioasId: ObjectIdSchema,
    outcome: outcomeOf({ hwptId: ObjectIdSchema }),
  }),
});

export const UPCASTERS: readonly Upcaster[] = [
  {
    type: 'VfioDeviceAttachPtIssued',
    fromVersion: 1,
    schema: AttachPtV1,
    up: (old) => {
      const data = old.data as { device: string; deviceFd: string; ioasId: number; outcome: { ok: boolean; hwptId?: number; errno?: string } };
      const outcome = data.outcome.ok ? { ok: true, ptId: data.outcome.hwptId } : { ok: false, errno: data.outcome.errno };
      return { ...old, schemaVersion: 2, data: { device: data.device, deviceFd: data.deviceFd, ptId: data.ioasId, outcome } };
    },
  },
];

const index = new Map(UPCASTERS.map((u) => [`${u.type}@${u.fromVersion}`, u]));
export const upcasterFor = (type: string, fromVersion: number): Upcaster | undefined => index.get(`${type}@${fromVersion}`);
