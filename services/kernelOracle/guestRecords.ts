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
  // the collector's inputs, raw: a trace_pipe line, a uevent datagram (hex), a sysfs entry (file text as
  // hex, a link's target, or a directory) and the end of one sysfs dump
  z.object({ t: z.literal('trace'), line: z.string() }),
  z.object({ t: z.literal('signals'), uevents: z.boolean(), tracePipe: z.boolean() }),
  z.object({ t: z.literal('uevent'), hex: z.string().regex(/^(?:[0-9a-f]{2})*$/) }),
  z.object({ t: z.literal('sysfs'), path: z.string().min(1), hex: z.string().regex(/^(?:[0-9a-f]{2})*$/).optional(), link: z.string().optional(), dir: z.literal(true).optional(), errno: z.number().int().optional() }),
  z.object({ t: z.literal('sysfs-end') }),
  z.object({ t: z.literal('end'), scenario: z.string(), ops: z.number().int() }),
  z.object({ t: z.literal('error'), scenario: z.string(), message: z.string() }),
  z.object({ t: z.literal('done') }),
]);
export type GuestRecord = z.infer<typeof GuestRecordSchema>;
export type BeginRecord = z.infer<typeof BeginRecordSchema>;
export type OpRecord = z.infer<typeof OpRecordSchema>;
export type SysfsRecord = Extract<GuestRecord, { t: 'sysfs' }>;
