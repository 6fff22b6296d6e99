import { describe, expect, it } from 'vitest';
import { CORPUS } from '../replay/testing/scenarios.js';
import { readModelDifferences } from '../replay/testing/readModelAgreement.js';
import { createFleetProjection } from './fleetProjection.js';
import { generateHistory } from './testing/generateHistory.js';
import type { FleetState } from './types.js';
import { DEFAULT_MANAGED_DMA_DRIVERS, type IommuEvent } from '../schemas/index.js';
import { deriveReadModel, newDevice, newGroup } from './readModel.js';
import { createRecorder } from './testing/recorder.js';

const PARTS = ['groups', 'devices', 'iommufds', 'containers', 'deviceFds', 'groupFds'] as const;
const readModelOf = (state: FleetState): string => JSON.stringify(Object.fromEntries(Object.entries(state.hosts).map(([name, h]) => [name, PARTS.map((p) => h[p])])));

const fold = (events: readonly IommuEvent[], state?: FleetState): FleetState => {
  const projection = createFleetProjection();
  const s = state ?? projection.initialState();
  for (const e of events) projection.evolve(s, e);
  return s;
};

const NOT_IN_OLD_READ_MODEL = ['s43-veventq-hw-queue', 's49-noiommu-cdev', 's57-ioas-get-pa'];

describe('the read model derived from the upstream model (projections/readModel.ts, issue 16 step c)', () => {
  it('issue 16 derive: a closed iommufd ctx that an open vEVENTQ fd still holds stays in the read model until that fd closes (S43; the projection\'s own transition dropped it with its last bound device)', () => {
    const s43 = CORPUS.find((c) => c.name === 's43-veventq-hw-queue')!.events;
    const closed = s43.findIndex((e) => e.type === 'IommufdClosed');
    const fdClosed = s43.findIndex((e) => e.type === 'IommufdEventFdClosed');
    expect(closed).toBeGreaterThan(0);
    expect(fdClosed).toBeGreaterThan(closed);
    const host = s43[0]!.host;
    const atClose = fold(s43.slice(0, closed + 1));
    // iommufd_fops_release runs once every reference is gone: the vEVENTQ's file holds the ctx (ops/veventq.ts ictxHeld)
    expect(atClose.hosts[host]!.iommufds.fdA).toMatchObject({ handle: 'fdA', open: false });
    const afterFd = fold(s43.slice(closed + 1, fdClosed + 1), atClose);
    expect(afterFd.hosts[host]!.iommufds.fdA).toBeUndefined();
  });

  it('issue 16 derive: an iommufd set as a legacy group\'s container holds its compat IOAS in the read model (S23; drivers/vfio/group.c vfio_group_ioctl_set_container → iommufd_vfio_compat_ioas_create; the projection\'s own transition showed no object)', () => {
    const s23 = CORPUS.find((c) => c.name === 's23-iommufd-as-container')!.events;
    const set = s23.findIndex((e) => e.type === 'VfioGroupSetContainerIssued');
    expect(set).toBeGreaterThan(0);
    const state = fold(s23.slice(0, set + 1));
    const objects = Object.values(state.hosts[s23[0]!.host]!.iommufds.fdA!.objects);
    expect(objects).toEqual([expect.objectContaining({ kind: 'ioas', auto: false })]);
  });

  it('issue 16 derive4: a hwpt destroyed and its id allocated again (an auto hwpt) before the ctx records are read does not carry the old hwpt\'s device (S37; readModel.ts Pending.ictxRecords)', () => {
    const s37 = CORPUS.find((c) => c.name === 's37-explicit-hwpt')!.events;
    const destroyed = s37.findIndex((e) => e.type === 'IommufdDestroyIssued' && e.data.outcome.ok && e.data.objectId === 3);
    expect(destroyed).toBeGreaterThan(0);
    const last = s37[destroyed]!;
    const at = (seq: number, type: string, data: unknown): IommuEvent => ({ ...last, id: `${last.id.slice(0, -4)}${String(seq).padStart(4, '0')}`, seq, type, schemaVersion: 2, data }) as unknown as IommuEvent;
    // the device leaves its auto hwpt 4 (destroyed with it) and attaches to IOAS 2 again: a new auto hwpt, id 3 (xa_alloc: the lowest free)
    const events = [
      ...s37.slice(0, destroyed + 1),
      at(last.seq + 1, 'VfioDeviceDetachPtIssued', { device: '0000:03:00.0', deviceFd: 'nic0', outcome: { ok: true } }),
      at(last.seq + 2, 'VfioDeviceAttachPtIssued', { device: '0000:03:00.0', deviceFd: 'nic0', ptId: 2, outcome: { ok: true, ptId: 3 } }),
    ];
    const host = s37[0]!.host;
    const readAtEnd = fold(events).hosts[host]!;
    const projection = createFleetProjection();
    const state = projection.initialState();
    for (const e of events) {
      projection.evolve(state, e);
      void state.hosts[host]!.iommufds;
    }
    expect(state.hosts[host]!.iommufds.fdA!.objects[3]).toEqual(expect.objectContaining({ kind: 'hwpt', auto: true, device: null }));
    expect(readAtEnd.iommufds).toEqual(state.hosts[host]!.iommufds);
  });

  it('fast16: the whole-host derivation (the agreement test\'s reference) builds new records, it never updates the host\'s own (deriveGroup/deriveDevice `inPlace` is the fold\'s alone)', () => {
    // given a host folded half way and the kernel model of the same host folded to the end (other groups and devices)
    const events = generateHistory({ events: 2_000, hosts: 1, finishCycles: true });
    const half = fold(events.slice(0, 1_000));
    const host = Object.values(half.hosts)[0]!;
    const later = fold(events.slice(0, 1_500)).hosts[host.host]!.kernel!;
    const before = JSON.stringify([host.groups, host.devices]);
    // when the later model is derived whole with the half-way host as the previous records
    const managed = new Set(DEFAULT_MANAGED_DMA_DRIVERS);
    const derived = deriveReadModel(later, host, (d) => d !== null && !managed.has(d), { group: newGroup, device: newDevice });
    // then the derivation differs from the host (the test can tell), and the host's records are as they were
    expect(JSON.stringify([derived.groups, derived.devices])).not.toBe(before);
    expect(JSON.stringify([host.groups, host.devices])).toBe(before);
  });

  it('given a state written before the model was folded (no kernel: a format-1 snapshot) at any point of a history, when the fold goes on, then its model is rebuilt from its read model and the read model ends as the unbroken fold\'s', () => {
    // what an old read model never held is not rebuilt: a noiommu cdev fd (S49), IOVA areas (S57), the objects after 6.6 (S43)
    const histories = [...CORPUS.filter((c) => !NOT_IN_OLD_READ_MODEL.includes(c.name)).map((c) => c.events), generateHistory({ events: 600, hosts: 2, finishCycles: true })];
    for (const events of histories) {
      const whole = readModelOf(fold(events));
      for (let cut = 1; cut < events.length; cut += Math.max(1, Math.floor(events.length / 12))) {
        // the state as a writer without the model wrote it: its read model, no kernel
        const old = JSON.parse(JSON.stringify(fold(events.slice(0, cut)))) as FleetState;
        for (const h of Object.values(old.hosts)) delete h.kernel;
        const restored = fold(events.slice(cut), old);
        expect(readModelOf(restored)).toBe(whole);
        for (const h of Object.values(restored.hosts)) if (h.kernel) expect(readModelDifferences(h).filter((d) => !d.startsWith('iommufds.fdA.objects'))).toEqual([]);
      }
    }
  });
});

describe('the records marked to derive again (readModel.ts Pending: lists kept without repeats by the facts flag)', () => {
  it('issue 23: given a device marked, unplugged, and plugged back after a new device while nothing read the records, when they are read, then the new device comes before it, as when every record is derived after each event', () => {
    const r = createRecorder('pending-host');
    const snapshot = r.topology();
    const a = snapshot.data.devices[0]?.device;
    const group = snapshot.data.groups.find((g) => g.devices.includes(a!))!.group;
    const read = r.events.length;
    r.bindDriver(a!, 'vfio-pci');
    r.event('DeviceRemovedFromGroup', { device: a!, group });
    r.deviceAdded('0000:7f:00.0', group);
    r.deviceAdded(a!, group);
    const keysEveryEvent = (() => {
      const projection = createFleetProjection();
      const s = projection.initialState();
      for (const e of r.events) {
        projection.evolve(s, e);
        void s.hosts['pending-host']!.devices;
      }
      return Object.keys(s.hosts['pending-host']!.devices);
    })();
    const projection = createFleetProjection();
    const s = projection.initialState();
    r.events.forEach((e, i) => {
      projection.evolve(s, e);
      if (i === read - 1) void s.hosts['pending-host']!.devices;
    });
    const keys = Object.keys(s.hosts['pending-host']!.devices);
    expect(keys.slice(-2)).toEqual(['0000:7f:00.0', a]);
    expect(keys).toEqual(keysEveryEvent);
  });
});
