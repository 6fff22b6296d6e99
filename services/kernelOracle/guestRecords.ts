import { z } from 'zod';

/** what deploy/kernel-oracle/guest/itguest.c writes, one JSON object per line */
const SnapshotGroup = z.object({ group: z.number().int(), type: z.string(), devices: z.array(z.string()) });
const SnapshotDevice = z.object({
  device: z.string(),
  vendor: z.string(),
  deviceId: z.string(),
  class: z.string(),
  headerType: z.number().int(),
  group: z.number().int(),
  driver: z.string().nullable(),
  cdev: z.string().nullable(),
});

export const BeginRecordSchema = z.object({
  t: z.literal('begin'),
  scenario: z.string(),
  release: z.string(),
  cmdline: z.string(),
  real: z.number(),
  mono: z.number(),
  groups: z.array(SnapshotGroup),
  devices: z.array(SnapshotDevice),
});

/** one step: argv as written in the scenario (roles resolved in the context members), errno 0 on success */
export const OpRecordSchema = z
  .object({
    t: z.literal('op'),
    line: z.number().int(),
    mistake: z.boolean(),
    mono: z.number(),
    real: z.number(),
    argv: z.array(z.string()).min(1),
    errno: z.number().int().min(0),
  })
  .catchall(z.unknown());

export const GuestRecordSchema = z.discriminatedUnion('t', [
  BeginRecordSchema,
  OpRecordSchema,
  z.object({ t: z.literal('trace'), line: z.string() }),
  z.object({ t: z.literal('end'), scenario: z.string(), ops: z.number().int() }),
  z.object({ t: z.literal('error'), scenario: z.string(), message: z.string() }),
  z.object({ t: z.literal('done') }),
]);
export type GuestRecord = z.infer<typeof GuestRecordSchema>;
export type BeginRecord = z.infer<typeof BeginRecordSchema>;
export type OpRecord = z.infer<typeof OpRecordSchema>;
