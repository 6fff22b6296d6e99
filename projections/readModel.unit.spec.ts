import { describe, expect, it } from 'vitest';
import { CORPUS } from '../replay/testing/scenarios.js';
import { readModelDifferences } from '../replay/testing/readModelAgreement.js';
import { createFleetProjection } from './fleetProjection.js';
import { generateHistory } from './testing/generateHistory.js';
import type { FleetState } from './types.js';
import type { IommuEvent } from '../schemas/index.js';

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

  it('given a state written before the model was folded (no kernel: a format-1 snapshot) at any point of a history, when the fold goes on, then its model is rebuilt from its read model and the read model ends as the unbroken fold\'s', () => {
    // what an old read model never held is not rebuilt: a noiommu cdev fd (S49), IOVA areas (S57), the objects after 6.6 (S43)
    const histories = [...CORPUS.filter((c) => !NOT_IN_OLD_READ_MODEL.includes(c.name)).map((c) => c.events), generateHistory({ events: 600, hosts: 2, finishCycles: true })];
    for (const events of histories) {
      const whole = readModelOf(fold(events));
      for (let cut = 1; cut < events.length; cut += Math.max(1, Math.floor(events.length / 12))) {
        const old = fold(events.slice(0, cut));
        for (const h of Object.values(old.hosts)) delete h.kernel;
        const restored = fold(events.slice(cut), JSON.parse(JSON.stringify(old)) as FleetState);
        expect(readModelOf(restored)).toBe(whole);
        for (const h of Object.values(restored.hosts)) if (h.kernel) expect(readModelDifferences(h).filter((d) => !d.startsWith('iommufds.fdA.objects'))).toEqual([]);
      }
    }
  });
});
