import { evolveWithDecision } from './decider.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../schemas/index.js';
import { VARIANTS } from '../../replay/variants.js';
import { fdsOfDevice, fdsOnHwpt, groupPathFdCount, groupsOwnedBy } from './fdIndex.js';
import { groupHwpt, hwptInUse } from './iommufdCore.js';
import { VARIANT_NAMES, type DeviceFdState, type GroupState, type ModelState, type Observation, type Operation } from './types.js';

// a small host: a singleton group, a two-device group, a second singleton (random calls rebind drivers)
const DEVICES = ['0000:01:00.0', '0000:02:00.0', '0000:02:00.1', '0000:03:00.0'] as const;
const topology = createEventBuilder({ host: 'prop' }).raw('TopologySnapshotTaken', {
  capabilities: { iommu: true, interruptRemapping: true },
  groups: [
    { group: 1, devices: [DEVICES[0]] },
    { group: 2, devices: [DEVICES[1], DEVICES[2]] },
    { group: 3, devices: [DEVICES[3]] },
  ],
  devices: [
    { device: DEVICES[0], vendorId: '8086', deviceId: '1521', classCode: '020000', driver: 'vfio-pci', group: 1, maxPasids: 4, pasidAttach: true },
    { device: DEVICES[1], vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'vfio-pci', group: 2 },
    { device: DEVICES[2], vendorId: '10de', deviceId: '10f8', classCode: '040300', driver: 'vfio-pci', group: 2 },
    { device: DEVICES[3], vendorId: '8086', deviceId: '1521', classCode: '020000', driver: 'vfio-pci', group: 3 },
  ],
}) as Observation;

const device = fc.constantFrom(...DEVICES);
const ictx = fc.constantFrom('ictx1', 'ictx1', 'ictx1', 'ictx2');
const id = fc.integer({ min: 1, max: 6 });
const group = fc.constantFrom(1, 2, 3);
const groupFd = fc.constantFrom('gfd1', 'gfd2');
const container = fc.constantFrom('cont1', 'ictx1');
const pasid = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 5 }) });
// two handles per device, shared by the cdev and group paths: most calls name an fd of their device
const onFd = fc.tuple(device, fc.constantFrom(1, 1, 1, 2)).map(([d, n]) => ({ device: d, deviceFd: `fd${n}@${d}` }));

/**
 * any call, valid or not, with handles and ids from small pools so that they collide often; the calls of
 * the iommufd lifecycle weigh more, so that most runs reach attached (and replaced, shared) hwpts
 */
const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
const operation: fc.Arbitrary<Operation> = fc.oneof(
  w(2, fc.record({ kind: fc.constant('bindDriver' as const), device, driver: fc.constantFrom('vfio-pci', 'snd_hda_intel', 'pci-stub') })),
  w(1, fc.record({ kind: fc.constant('unbindDriver' as const), device })),
  w(6, onFd.map((f) => ({ kind: 'openDevice' as const, ...f }))),
  w(6, fc.tuple(onFd, ictx).map(([f, i]) => ({ kind: 'bindIommufd' as const, ...f, ictx: i }))),
  w(10, fc.tuple(onFd, id, pasid).map(([f, ptId, p]) => ({ kind: 'attachPt' as const, ...f, ptId, pasid: p }))),
  w(3, fc.tuple(onFd, pasid).map(([f, p]) => ({ kind: 'detachPt' as const, ...f, pasid: p }))),
  w(2, onFd.map((f) => ({ kind: 'closeDevice' as const, ...f }))),
  w(4, fc.record({ kind: fc.constant('openIommufd' as const), ictx })),
  w(1, fc.record({ kind: fc.constant('closeIommufd' as const), ictx })),
  w(5, fc.record({ kind: fc.constant('allocIoas' as const), ictx })),
  w(2, fc.record({ kind: fc.constant('allocHwpt' as const), ictx, devId: id, ptId: id, flags: fc.constant(0) })),
  w(1, fc.record({ kind: fc.constant('destroy' as const), ictx, objectId: id })),
  w(2, fc.record({ kind: fc.constant('openGroup' as const), group, groupFd })),
  w(1, fc.record({ kind: fc.constant('closeGroup' as const), group, groupFd })),
  w(2, fc.record({ kind: fc.constant('setContainer' as const), group, groupFd, container, containerKind: fc.constantFrom('legacy' as const, 'iommufd' as const) })),
  w(1, fc.record({ kind: fc.constant('unsetContainer' as const), group, groupFd })),
  w(3, fc.tuple(group, groupFd, onFd).map(([g, gfd, f]) => ({ kind: 'getDeviceFd' as const, group: g, groupFd: gfd, device: f.device, newFd: f.deviceFd }))),
  w(1, fc.record({ kind: fc.constant('openContainer' as const), container: fc.constant('cont1') })),
  w(1, fc.record({ kind: fc.constant('setIommu' as const), container: fc.constant('cont1'), iommuType: fc.constant('VFIO_TYPE1v2_IOMMU') })),
);

/** ctxs, fds bound where the variant allows, IOASes: the random calls start where attaches can succeed */
const SETUP: readonly Operation[] = [
  { kind: 'openIommufd', ictx: 'ictx1' },
  { kind: 'openIommufd', ictx: 'ictx2' },
  ...DEVICES.flatMap((d): Operation[] => [
    { kind: 'openDevice', device: d, deviceFd: `fd1@${d}` },
    { kind: 'bindIommufd', device: d, deviceFd: `fd1@${d}`, ictx: 'ictx1' },
  ]),
  { kind: 'allocIoas', ictx: 'ictx1' },
  { kind: 'allocIoas', ictx: 'ictx1' },
  { kind: 'allocIoas', ictx: 'ictx2' },
];

// ---- the scans the index replaces, as they were written before it --------------------------------------

const naiveFdsOfDevice = (state: ModelState, d: string): DeviceFdState[] => [...state.fds.values()].filter((f) => f.device === d);
const naiveFdsOnHwpt = (state: ModelState, i: string, h: number): string[] => [...state.fds.values()].filter((f) => f.ictx === i && f.hwpt === h).map((f) => f.handle);
const naiveGroupHwpt = (state: ModelState, g: GroupState, devices: readonly string[] = g.attached): { ictx: string; hwpt: number } | null => {
  for (const fd of state.fds.values()) {
    if (fd.ictx !== null && fd.hwpt !== null && devices.includes(fd.device) && g.attached.includes(fd.device)) return { ictx: fd.ictx, hwpt: fd.hwpt };
  }
  return null;
};
const naiveHwptInUse = (state: ModelState, i: string, h: number): boolean =>
  [...state.fds.values()].some((fd) => fd.ictx === i && fd.hwpt === h) ||
  [...state.groups.values()].some((g) => g.owner?.kind === 'ictx' && g.owner.ictx === i && Object.values(g.pasids).includes(h));
const naiveGroupPathFds = (state: ModelState, g: GroupState): DeviceFdState[] => [...state.fds.values()].filter((f) => f.via === 'group' && g.devices.includes(f.device));

const byHandle = (a: DeviceFdState, b: DeviceFdState): number => (a.handle < b.handle ? -1 : a.handle > b.handle ? 1 : 0);
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** where the indexed lookups and the scans disagree (plain comparisons: this runs after every call) */
const disagreements = (state: ModelState): string[] => {
  const out: string[] = [];
  for (const d of DEVICES) if (!same([...fdsOfDevice(state, d)].sort(byHandle), naiveFdsOfDevice(state, d).sort(byHandle))) out.push(`fdsOfDevice ${d}`);
  // no stale entries: every indexed fd is open, and nothing else is indexed
  const devices = [...state.fdIndex.byDevice.values()];
  if (devices.some((m) => m.length === 0) || devices.reduce((n, m) => n + m.length, 0) !== state.fds.size) out.push('byDevice size');
  const onHwpt = [...state.fdIndex.byHwpt.values()].flatMap((m) => [...m.values()]);
  const attachedFds = [...state.fds.values()].filter((f) => f.ictx !== null && f.hwpt !== null).length;
  if (onHwpt.some((m) => m.length === 0) || onHwpt.reduce((n, m) => n + m.length, 0) !== attachedFds) out.push('byHwpt size');
  for (const i of ['ictx1', 'ictx2']) {
    for (let h = 1; h <= 6; h++) {
      if (!same(fdsOnHwpt(state, i, h).map((f) => f.handle).sort(), naiveFdsOnHwpt(state, i, h).sort())) out.push(`fdsOnHwpt ${i} ${h}`);
      if (hwptInUse(state, i, h, []) !== naiveHwptInUse(state, i, h)) out.push(`hwptInUse ${i} ${h}`);
    }
  }
  for (const i of ['ictx1', 'ictx2']) {
    if (groupsOwnedBy(state, i) !== [...state.groups.values()].filter((g) => g.owner?.kind === 'ictx' && g.owner.ictx === i).length) out.push(`groupsOwnedBy ${i}`);
  }
  if ([...state.fdIndex.ownedGroups.values()].some((n) => n <= 0)) out.push('ownedGroups count');
  for (const g of state.groups.values()) {
    for (const devices of [undefined, ...(g.subGroups ?? [g.devices])]) {
      if (!same(groupHwpt(state, g, devices), naiveGroupHwpt(state, g, devices))) out.push(`groupHwpt ${g.id} ${String(devices)}`);
    }
    if (groupPathFdCount(state, g) !== naiveGroupPathFds(state, g).length) out.push(`groupPathFdCount ${g.id}`);
  }
  return out;
};

describe('fd index (state.fdIndex)', () => {
  /** folds random call sequences, checking the index after every call; how often the runs reached the states the index matters for */
  const foldRandomCalls = (params: fc.Parameters<[string, unknown[]]>): { attached: number; shared: number } => {
    let attached = 0;
    let shared = 0;
    fc.assert(
      fc.property(fc.constantFrom(...VARIANT_NAMES), fc.array(operation, { minLength: 10, maxLength: 60, size: 'max' }), (variant, ops) => {
        const decider = VARIANTS[variant];
        const state = decider.initialState(topology);
        for (const op of [...SETUP, ...ops]) {
          if (state.crashed) break;
          evolveWithDecision(decider, state, decider.decide(op, state));
          expect(disagreements(state)).toEqual([]);
          const buckets = [...state.fdIndex.byHwpt.values()].flatMap((m) => [...m.values()]);
          if (buckets.length > 0) attached += 1;
          if (buckets.some((m) => m.length > 1)) shared += 1;
        }
      }),
      params,
    );
    return { attached, shared };
  };

  it('given random call sequences on every variant, when each decision is folded, then every indexed lookup agrees with a scan of all open fds', () => {
    foldRandomCalls({ numRuns: 200 });
  });

  it('given the call sequences of a fixed seed, when folded as above, then they reach attached and shared hwpts (what keeps the check above able to fail)', () => {
    // a fixed seed: how often random runs reach shared hwpts is bursty (0 in some runs of 200), so a coverage check
    // on the random runs above was flaky; this one checks that the generator can reach them at all
    const { attached, shared } = foldRandomCalls({ numRuns: 200, seed: 16 });
    expect(attached).toBeGreaterThan(250);
    expect(shared).toBeGreaterThan(0);
  });

  it('inplace: given a state copied mid-history as cloneState copies (structuredClone), when the original folds on, then the copy\'s fds and index are as they were and agree with its scans', () => {
    // the index's lists are updated in place: a copy must not share them with the state it was taken from
    fc.assert(
      fc.property(fc.array(operation, { minLength: 10, maxLength: 60, size: 'max' }), fc.array(operation, { minLength: 10, maxLength: 60, size: 'max' }), (before, after) => {
        const decider = VARIANTS.upstream;
        const state = decider.initialState(topology);
        for (const op of [...SETUP, ...before]) evolveWithDecision(decider, state, decider.decide(op, state));
        const copy = structuredClone(state);
        const seen = JSON.stringify([...copy.fds.values()]);
        const indexed = DEVICES.map((d) => fdsOfDevice(copy, d).map((f) => f.handle).join());
        for (const op of [...after, ...SETUP.filter((o) => o.kind === 'openDevice' || o.kind === 'bindIommufd')]) evolveWithDecision(decider, state, decider.decide(op, state));
        expect(JSON.stringify([...copy.fds.values()])).toBe(seen);
        expect(DEVICES.map((d) => fdsOfDevice(copy, d).map((f) => f.handle).join())).toEqual(indexed);
        expect(disagreements(copy)).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});
