import { describe, expect, it } from 'vitest';
import { DeciderSpecification } from '../testing/deciderSpecification.js';
import { AUDIO, GPU, NIC, RMRR_USB, op, topology } from '../testing/fixtures.js';
import { legacyDecider } from './legacy.decider.js';
import { stage1Decider, stage2Decider, stage3Decider } from './seed.decider.js';
import { evolveWithDecision } from '../../projections/kernel/decider.js';
import { toRecordedEvents } from '../../projections/kernel/operations.js';
import type { ModelState, Operation, ProtocolDecider } from '../../projections/kernel/types.js';

const vfio = (...d: string[]) => Object.fromEntries(d.map((x) => [x, 'vfio-pci']));
const groupBound = (variantTopology = topology({ drivers: vfio(GPU, AUDIO) })) => [
  variantTopology,
  op.openIommufd('fdA'),
  op.openIommufd('fdB'),
  op.open(GPU, 'g0'),
  op.bind(GPU, 'g0', 'fdA'),
  op.open(AUDIO, 'a0'),
];

describe('seed stage-1 (choices documented beside the rules)', () => {
  const spec = DeciderSpecification.for(stage1Decider);
  it('given a multi-device group, when its device node is opened, then -ENOENT (no node)', () => {
    spec.given(topology({ drivers: vfio(GPU, AUDIO) })).when(op.open(GPU, 'g0')).thenFails('ENOENT', 'stage1.cdev.singleton-only');
  });
  it('given an unbound fd, when accessed, then -EACCES (the seed suggests EACCESS)', () => {
    spec.given(topology({ drivers: vfio(NIC) }), op.open(NIC, 'n0')).when(op.access(NIC, 'n0')).thenFails('EACCES', 'seed.access-before-bind');
  });
  it('given an attached device, when attached again, then -EBUSY (no replace)', () => {
    spec
      .given(topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0'), op.ioas(), op.attach(NIC, 'n0', 2), op.ioas())
      .when(op.attach(NIC, 'n0', 4))
      .thenFails('EBUSY', 'seed.attach.already-attached');
  });
  it('given a singleton, when bound, then the device is on its iommu_fd block_dma domain', () => {
    const state = spec.given(topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0')).when(op.bind(NIC, 'n0')).thenSucceeds({ devId: 1 }, 'seed.bind.first');
    expect(state.devices.get(NIC)?.domain).toEqual({ kind: 'blocking', ictx: 'fdA' });
  });
  it('given an RMRR device, when bound, then -EPERM (2021 intel-iommu)', () => {
    spec.given(topology({ drivers: vfio(RMRR_USB) }), op.openIommufd(), op.open(RMRR_USB, 'u0')).when(op.bind(RMRR_USB, 'u0')).thenFails('EPERM', 'seed.bind.rmrr');
  });
});

describe('seed stage-2', () => {
  const spec = DeciderSpecification.for(stage2Decider);
  it('given a non-viable group, when the first device is bound, then -EPERM', () => {
    spec.given(topology({ drivers: vfio(GPU) }), op.openIommufd(), op.open(GPU, 'g0')).when(op.bind(GPU, 'g0')).thenFails('EPERM', 'seed.bind.not-viable');
  });
  it('given a group bound to another iommu_fd, when bound, then -EBUSY', () => {
    spec.given(...groupBound()).when(op.bind(AUDIO, 'a0', 'fdB')).thenFails('EBUSY', 'seed.bind.other-iommufd');
  });
  it('given a sibling on one IOASID, when attached to another, then -EINVAL', () => {
    spec
      .given(...groupBound(), op.bind(AUDIO, 'a0', 'fdA'), op.ioas('fdA'), op.attach(GPU, 'g0', 3), op.ioas('fdA'))
      .when(op.attach(AUDIO, 'a0', 5))
      .thenFails('EINVAL', 'stage2.attach.single-ioasid');
  });
  it('given a device not attached, when detached, then -EINVAL', () => {
    spec.given(...groupBound()).when(op.detach(GPU, 'g0')).thenFails('EINVAL', 'seed.detach.not-attached');
  });
  it('given a group in use, when a kernel driver binds a member, then the notifier BUG_ON crashes the host', () => {
    const state = spec.given(...groupBound(topology({ drivers: { [GPU]: 'vfio-pci', [AUDIO]: null } }))).when(op.bindDriver(AUDIO, 'snd_hda_intel')).thenCrashes('seed.notifier.bug-on');
    expect(state.crashed?.rule).toBe('seed.notifier.bug-on');
  });
  it('given a bound device, when the iommu_fd closes, then its bindings are torn down', () => {
    const state = spec.given(...groupBound()).when(op.openIommufd('fdC')).thenSucceeds();
    const after = DeciderSpecification.for(stage2Decider).given(...groupBound()).when({ kind: 'closeIommufd', ictx: 'fdA' }).thenSucceeds({}, 'seed.ictx.close-teardown');
    expect(state.groups.get(7)?.owner).not.toBeNull();
    expect(after.groups.get(7)?.owner).toBeNull();
    expect(after.fds.get('g0')?.ictx).toBeNull();
  });
});

describe('seed stage-3', () => {
  const spec = DeciderSpecification.for(stage3Decider);
  const sub = topology({ drivers: vfio(GPU, AUDIO), subGroups: { 7: [[GPU], [AUDIO]] } });
  it('given distinguishable sub-groups, when a sibling attaches to another IOASID, then it succeeds and only its sub-group moves', () => {
    const state = spec
      .given(...groupBound(sub), op.bind(AUDIO, 'a0', 'fdA'), op.ioas('fdA'), op.attach(GPU, 'g0', 3), op.ioas('fdA'))
      .when(op.attach(AUDIO, 'a0', 5))
      .thenSucceeds({ ptId: 6 }, 'seed.attach.first');
    expect(state.devices.get(GPU)?.domain).toEqual({ kind: 'hwpt', ictx: 'fdA', hwpt: 4 });
    expect(state.devices.get(AUDIO)?.domain).toEqual({ kind: 'hwpt', ictx: 'fdA', hwpt: 6 });
  });
  it('given no sub-group topology, then it behaves as stage-2', () => {
    spec
      .given(...groupBound(), op.bind(AUDIO, 'a0', 'fdA'), op.ioas('fdA'), op.attach(GPU, 'g0', 3), op.ioas('fdA'))
      .when(op.attach(AUDIO, 'a0', 5))
      .thenFails('EINVAL', 'stage2.attach.single-ioasid');
  });
});

describe('legacy (pre-v5.19)', () => {
  const spec = DeciderSpecification.for(legacyDecider);
  const containerSet = [
    topology({ drivers: vfio(GPU) }),
    { kind: 'openGroup', group: 7, groupFd: 'grp' } as const,
    { kind: 'openContainer', container: 'c0' } as const,
    { kind: 'setContainer', group: 7, groupFd: 'grp', container: 'c0', containerKind: 'legacy' } as const,
    { kind: 'setIommu', container: 'c0', iommuType: 'type1v2' } as const,
  ];
  it('given a non-viable group in a container, when GET_DEVICE_FD, then -EINVAL (viability at open)', () => {
    spec.given(...containerSet).when({ kind: 'getDeviceFd', group: 7, groupFd: 'grp', device: GPU, newFd: 'g0' }).thenFails('EINVAL', 'legacy.get-device-fd.not-viable');
  });
  it('given no iommufd, when /dev/iommu is opened, then -ENOENT', () => {
    spec.given(topology()).when(op.openIommufd()).thenFails('ENOENT', 'legacy.no-dev-iommu');
  });
  it('given a group with container users, when a kernel driver binds a driver-less member, then BUG_ON', () => {
    spec
      .given(topology({ drivers: { [GPU]: 'vfio-pci', [AUDIO]: null } }), ...containerSet.slice(1))
      .when(op.bindDriver(AUDIO, 'snd_hda_intel'))
      .thenCrashes('legacy.notifier.bug-on');
  });
  it('given pci-stub, when bound into a group in use, then no crash (vfio_driver_allowed)', () => {
    spec.given(topology({ drivers: { [GPU]: 'vfio-pci', [AUDIO]: null } }), ...containerSet.slice(1)).when(op.bindDriver(AUDIO, 'pci-stub')).thenSucceeds({}, 'legacy.probe.ok');
  });
});

describe('issue 16 plan: legacy and the seed stages share the plans of driver unbind and the container', () => {
  const unbind = (decider: ProtocolDecider, ...history: Operation[]): ModelState => {
    const state = decider.initialState(topology({ drivers: vfio(NIC) }));
    for (const o of history) evolveWithDecision(decider, state, decider.decide(o, state));
    expect(decider.decide(op.unbindDriver(NIC), state).outcome).toMatchObject({ ok: false, blocks: expect.any(String) });
    for (const e of toRecordedEvents(op.unbindDriver(NIC), { ok: true })) decider.evolve(state, e);
    return state;
  };

  it('issue 16 plan: a recorded unbind of vfio-pci with a device fd open (the model: blocks) is followed on legacy and stage-2: the driver goes', () => {
    const legacy = unbind(
      legacyDecider,
      { kind: 'openContainer', container: 'c1' },
      { kind: 'openGroup', group: 12, groupFd: 'g12' },
      { kind: 'setContainer', group: 12, groupFd: 'g12', container: 'c1', containerKind: 'legacy' },
      { kind: 'setIommu', container: 'c1', iommuType: 'type1v2' },
      { kind: 'getDeviceFd', group: 12, groupFd: 'g12', device: NIC, newFd: 'd0' },
    );
    expect(legacy.fds.get('d0')).toMatchObject({ via: 'group', accessGranted: true });
    expect(legacy.devices.get(NIC)?.driver).toBeNull();
    expect(unbind(stage2Decider, op.open(NIC, 'n0')).devices.get(NIC)?.driver).toBeNull();
  });
});
