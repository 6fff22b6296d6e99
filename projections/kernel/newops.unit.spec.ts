import { describe, it } from 'vitest';
import { DeciderSpecification } from '../../replay/testing/deciderSpecification.js';
import { AUDIO, GPU, NIC, op, topology } from '../../replay/testing/fixtures.js';
import type { Observation, Operation } from './types.js';
import { upstreamDecider } from './upstream.decider.js';

// issue 19: the 6.7–7.3 answers, decided per release (kernel-changes-6.7-to-7.3.md; each rule cites its kernel function)
const spec = DeciderSpecification.for(upstreamDecider);
const vfio = (...d: string[]) => Object.fromEntries(d.map((x) => [x, 'vfio-pci']));
const onRelease = (kernelRelease: string, options: Parameters<typeof topology>[0]): Observation => {
  const topo = topology(options);
  const capabilities = { ...(topo.data as { capabilities: object }).capabilities, kernelRelease };
  return { ...topo, data: { ...topo.data, capabilities } } as Observation;
};
const nicBoundOn = (release: string) => [onRelease(release, { drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0'), op.ioas()];
const hwpt = (ptId: number, flags: number, dataType?: string, faultId?: number): Operation => ({ kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId, flags, dataType, faultId });
const fault: Operation = { kind: 'allocFaultQueue', ictx: 'fdA', flags: 0, faultFd: 'fq' };

describe('upstream decider > issue 19: IOMMU_HWPT_ALLOC per release', () => {
  it('issue 19 #1: KNOWN_HWPT_FLAGS was 0x7 "NEST_PARENT | DIRTY_TRACKING | PASID": PASID is 1<<3, refused before 6.15 and accepted from 6.15; FAULT_ID_VALID (1<<2) on a paging hwpt from 6.13; NEST_PARENT and DIRTY_TRACKING from 6.7', () => {
    spec.given(...nicBoundOn('6.15.0')).when(hwpt(2, 0x8)).thenSucceeds({ hwptId: 3 }, 'upstream.hwpt-alloc.ok');
    spec.given(...nicBoundOn('6.14.0')).when(hwpt(2, 0x8)).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.flags');
    // kernel oracle mock #3: a paging hwpt takes FAULT_ID_VALID only from 6.13 (date-derived); 6.11 and 6.12 refuse it (6.12.118 did)
    spec.given(...nicBoundOn('6.13.0'), fault).when(hwpt(2, 0x4, undefined, 3)).thenSucceeds({ hwptId: 4 }, 'upstream.hwpt-alloc.ok');
    spec.given(...nicBoundOn('6.12.0'), fault).when(hwpt(2, 0x4, undefined, 3)).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.flags');
    spec.given(...nicBoundOn('6.10.0')).when(hwpt(2, 0x4)).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.flags');
    spec.given(...nicBoundOn('6.7.0')).when(hwpt(2, 0x3)).thenSucceeds({ hwptId: 3 }, 'upstream.hwpt-alloc.ok');
    spec.given(...nicBoundOn('6.15.0')).when(hwpt(2, 0x10)).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.flags');
  });

  it('issue 19 #1: v6.6 checks the flags before the device and looks pt_id up as an IOAS (-ENOENT); from 6.7 dev → pt (-EINVAL) → flags', () => {
    spec.given(...nicBoundOn('6.6.0')).when({ kind: 'allocHwpt', ictx: 'fdA', devId: 9, ptId: 2, flags: 1 }).thenFails('EOPNOTSUPP', 'release.hwpt-alloc.flags-first');
    spec.given(...nicBoundOn('6.6.0')).when(hwpt(9, 0)).thenFails('ENOENT', 'release.hwpt-alloc.pt-enoent');
    spec.given(...nicBoundOn('6.7.0')).when({ kind: 'allocHwpt', ictx: 'fdA', devId: 9, ptId: 2, flags: 1 << 9 }).thenFails('ENOENT', 'upstream.hwpt-alloc.dev-enoent');
    spec.given(...nicBoundOn('6.7.0')).when(hwpt(9, 1 << 9)).thenFails('EINVAL', 'upstream.hwpt-alloc.pt-einval');
  });

  it('issue 19 #1: a paging hwpt as pt_id is the nested path (was -EINVAL): no user data -EOPNOTSUPP, a parent without NEST_PARENT -EINVAL, a data_type the release has no driver for -EOPNOTSUPP', () => {
    const parent = [...nicBoundOn('6.12.0'), hwpt(2, 1)];
    spec.given(...parent).when(hwpt(3, 0)).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.nested-eopnotsupp');
    spec.given(...parent).when(hwpt(3, 0, 'vtd-s1')).thenSucceeds({ hwptId: 4 }, 'upstream.hwpt-alloc.nested');
    // FAULT_ID_VALID needs a fault queue: iommufd_get_fault (kernel oracle mock #5)
    spec.given(...parent, fault).when(hwpt(3, 0x4, 'vtd-s1', 4)).thenSucceeds({ hwptId: 5 }, 'upstream.hwpt-alloc.nested');
    spec.given(...parent).when(hwpt(3, 0x4, 'vtd-s1')).thenFails('ENOENT', 'upstream.hwpt-alloc.fault-enoent');
    spec.given(...parent).when(hwpt(3, 0x1, 'vtd-s1')).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.nested-eopnotsupp');
    spec.given(...parent).when(hwpt(3, 0, 'amd-guest')).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.nested-eopnotsupp');
    spec.given(...nicBoundOn('7.0.0'), hwpt(2, 1)).when(hwpt(3, 0, 'amd-guest')).thenSucceeds({ hwptId: 4 }, 'upstream.hwpt-alloc.nested');
    spec.given(...nicBoundOn('6.12.0'), hwpt(2, 0)).when(hwpt(3, 0, 'vtd-s1')).thenFails('EINVAL', 'upstream.hwpt-alloc.parent-einval');
    // a nested hwpt is not a paging hwpt: it cannot parent another one
    spec.given(...parent, hwpt(3, 0, 'vtd-s1')).when(hwpt(4, 0, 'vtd-s1')).thenFails('EINVAL', 'upstream.hwpt-alloc.parent-einval');
  });

  it('issue 19 #1: objects are destroyed in the kernel order: the nesting parent is -EBUSY while its nested hwpt holds it, then both go', () => {
    const nested = [...nicBoundOn('6.12.0'), hwpt(2, 1), hwpt(3, 0, 'vtd-s1')];
    spec.given(...nested).when({ kind: 'destroy', ictx: 'fdA', objectId: 3 }).thenFails('EBUSY', 'upstream.destroy.hwpt-parent-busy');
    spec.given(...nested).when({ kind: 'destroy', ictx: 'fdA', objectId: 2 }).thenFails('EBUSY', 'upstream.destroy.ioas-busy');
    spec.given(...nested, { kind: 'destroy', ictx: 'fdA', objectId: 4 }).when({ kind: 'destroy', ictx: 'fdA', objectId: 3 }).thenSucceeds({}, 'upstream.destroy.ok');
  });
});

describe('upstream decider > issue 19: PASID attach (6.15)', () => {
  const pasidGroup = (release: string, audioPasids: number) => [
    onRelease(release, { drivers: vfio(GPU, AUDIO), devices: { [GPU]: { maxPasids: 16, pasidAttach: true }, [AUDIO]: { maxPasids: audioPasids, pasidAttach: true } } }),
    op.openIommufd(),
    op.open(GPU, 'g0'),
    op.bind(GPU, 'g0'),
    op.open(AUDIO, 'a0'),
    op.bind(AUDIO, 'a0'),
    op.ioas(),
  ];

  // two devices bound (ids 1, 2): the IOAS is 3, its first auto hwpt 4
  const IOAS = 3;

  it('issue 19 #1: before 6.15 the PASID flag of ATTACH/DETACH_IOMMUFD_PT is unknown (-EINVAL, as the 6.12 oracle answers any flag)', () => {
    spec.given(...pasidGroup('6.12.0', 16)).when(op.attach(GPU, 'g0', IOAS, 1)).thenFails('EINVAL', 'release.pasid.flag-einval');
    spec.given(...pasidGroup('6.12.0', 16)).when({ kind: 'detachPt', device: GPU, deviceFd: 'g0', pasid: 1 }).thenFails('EINVAL', 'release.pasid.flag-einval');
    spec.given(...pasidGroup('6.15.0', 16)).when(op.attach(GPU, 'g0', IOAS, 1)).thenSucceeds({ ptId: 4 }, 'upstream.attach.pasid');
  });

  it('issue 19 #1: a group member with max_pasids 0 no longer fails the range check (b3f6fcd8, 6.15-rc7); a PASID-capable member still does', () => {
    spec.given(...pasidGroup('6.15.0', 0)).when(op.attach(GPU, 'g0', IOAS, 5)).thenSucceeds({ ptId: 4 }, 'upstream.attach.pasid');
    spec.given(...pasidGroup('6.15.0', 4)).when(op.attach(GPU, 'g0', IOAS, 5)).thenFails('EINVAL', 'upstream.attach.pasid-range');
  });

  it('issue 19 #1: a second device on the same (group, pasid) gets 0 on the same hwpt and -EINVAL on another (was -EBUSY); the same device again replaces to the same hwpt (0)', () => {
    const held = [...pasidGroup('6.15.0', 16), op.attach(GPU, 'g0', IOAS, 1)];
    spec.given(...held).when(op.attach(AUDIO, 'a0', IOAS, 1)).thenSucceeds({ ptId: 4 }, 'upstream.attach.pasid-join');
    spec.given(...held).when(op.attach(AUDIO, 'a0', 4, 1)).thenSucceeds({ ptId: 4 }, 'upstream.attach.pasid-join');
    spec.given(...held).when(op.attach(GPU, 'g0', IOAS, 1)).thenSucceeds({ ptId: 4 }, 'upstream.attach.pasid-join');
    spec.given(...held, op.ioas('fdA')).when(op.attach(AUDIO, 'a0', 5, 1)).thenFails('EINVAL', 'upstream.attach.pasid-other-hwpt');
  });
});

describe('upstream decider > issue 19: legacy container', () => {
  const legacyGroup = (release: string): (Observation | Operation)[] => [
    onRelease(release, { drivers: vfio(NIC) }),
    { kind: 'openContainer', container: 'c' },
    { kind: 'openGroup', group: 12, groupFd: 'g' },
    { kind: 'setContainer', group: 12, groupFd: 'g', container: 'c', containerKind: 'legacy' },
  ];
  it('issue 19 #1: VFIO_TYPE1_NESTING_IOMMU was accepted on every release; from 6.13 no backend claims it (-ENODEV), after the -EINVAL checks', () => {
    spec.given(...legacyGroup('6.12.0')).when({ kind: 'setIommu', container: 'c', iommuType: 'type1-nesting' }).thenSucceeds({}, 'upstream.container.set-iommu');
    spec.given(...legacyGroup('6.13.0')).when({ kind: 'setIommu', container: 'c', iommuType: 'type1-nesting' }).thenFails('ENODEV', 'release.set-iommu.type1-nesting-enodev');
    spec.given(...legacyGroup('6.13.0')).when({ kind: 'setIommu', container: 'c', iommuType: 'type1v2' }).thenSucceeds({}, 'upstream.container.set-iommu');
    spec.given(onRelease('6.13.0', { drivers: vfio(NIC) }), { kind: 'openContainer', container: 'c' }).when({ kind: 'setIommu', container: 'c', iommuType: 'type1-nesting' }).thenFails('EINVAL', 'upstream.container.no-groups');
  });
});

describe('upstream decider > issue 19: dirty tracking (6.7), vIOMMU and vDEVICE (6.13, 6.17)', () => {
  const dirty = (hwptId: number, enable = true): Operation => ({ kind: 'setDirtyTracking', ictx: 'fdA', hwptId, enable });
  const viommu = (hwptId: number, viommuType = 'arm-smmuv3', flags = 0): Operation => ({ kind: 'allocViommu', ictx: 'fdA', devId: 1, hwptId, viommuType, flags });
  const vdevice = (viommuId: number, virtId = '0x10', devId = 1): Operation => ({ kind: 'allocVdevice', ictx: 'fdA', viommuId, devId, virtId });
  const destroy = (objectId: number): Operation => ({ kind: 'destroy', ictx: 'fdA', objectId });

  it('issue 19 #2: IOMMU_HWPT_SET_DIRTY_TRACKING is -ENOTTY before 6.7; from 6.7 it needs a DIRTY_TRACKING paging hwpt (-EOPNOTSUPP otherwise, -ENOENT for a nested one)', () => {
    spec.given(...nicBoundOn('6.6.0')).when(dirty(2)).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
    spec.given(...nicBoundOn('6.7.0'), hwpt(2, 0x2)).when(dirty(3)).thenSucceeds({}, 'upstream.dirty.set');
    spec.given(...nicBoundOn('6.7.0'), hwpt(2, 0x1)).when(dirty(3)).thenFails('EOPNOTSUPP', 'upstream.dirty.eopnotsupp');
    spec.given(...nicBoundOn('6.7.0'), hwpt(2, 0x1), hwpt(3, 0, 'vtd-s1')).when(dirty(4)).thenFails('ENOENT', 'upstream.dirty.enoent');
  });

  it('issue 19 #2: IOMMU_VIOMMU_ALLOC is -ENOTTY before 6.13; it needs a NEST_PARENT paging hwpt (-EINVAL), a known type (DEFAULT -EOPNOTSUPP; Tegra241 CMDQV from 6.17)', () => {
    const parent = (release: string) => [...nicBoundOn(release), hwpt(2, 0x1)];
    spec.given(...parent('6.12.0')).when(viommu(3)).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
    spec.given(...parent('6.13.0')).when(viommu(3)).thenSucceeds({ viommuId: 4 }, 'upstream.viommu.ok');
    spec.given(...parent('6.13.0')).when(viommu(3, 'default')).thenFails('EOPNOTSUPP', 'upstream.viommu.eopnotsupp');
    spec.given(...parent('6.13.0')).when(viommu(3, 'tegra241-cmdqv')).thenFails('EOPNOTSUPP', 'upstream.viommu.eopnotsupp');
    spec.given(...parent('6.17.0')).when(viommu(3, 'tegra241-cmdqv')).thenSucceeds({ viommuId: 4 }, 'upstream.viommu.ok');
    spec.given(...parent('6.13.0'), hwpt(2, 0)).when(viommu(4)).thenFails('EINVAL', 'upstream.viommu.not-nest-parent');
    spec.given(...parent('6.13.0')).when(viommu(2)).thenFails('ENOENT', 'upstream.viommu.enoent');
  });

  it('issue 19 #2: one vDEVICE per device and per virt_id (-EEXIST); each object holds the one below it, so IOMMU_DESTROY goes vDEVICE, vIOMMU, parent hwpt, IOAS (-EBUSY out of order)', () => {
    const built = [...nicBoundOn('6.13.0'), hwpt(2, 0x1), viommu(3), vdevice(4)];
    spec.given(...built).when(vdevice(4, '0x20')).thenFails('EEXIST', 'upstream.vdevice.eexist');
    spec.given(...built).when(vdevice(3)).thenFails('ENOENT', 'upstream.vdevice.enoent');
    spec.given(...built).when(destroy(3)).thenFails('EBUSY', 'upstream.destroy.hwpt-viommu-busy');
    spec.given(...built).when(destroy(4)).thenFails('EBUSY', 'upstream.destroy.viommu-busy');
    spec.given(...built).when(destroy(2)).thenFails('EBUSY', 'upstream.destroy.ioas-busy');
    spec.given(...built, destroy(5), destroy(4), destroy(3)).when(destroy(2)).thenSucceeds({}, 'upstream.destroy.ok');
  });

  it('issue 19 #2: from 6.17 closing the device destroys its vDEVICE (its id stays taken: IOMMU_DESTROY -ENOENT, the next object gets a new id); on 6.13–6.16 the vDEVICE outlives the device', () => {
    const closed = (release: string) => [...nicBoundOn(release), hwpt(2, 0x1), viommu(3), vdevice(4), op.close(NIC, 'n0')];
    spec.given(...closed('6.17.0')).when(destroy(5)).thenFails('ENOENT', 'upstream.destroy.enoent');
    spec.given(...closed('6.17.0')).when(destroy(4)).thenSucceeds({}, 'upstream.destroy.ok');
    spec.given(...closed('6.17.0')).when(op.ioas()).thenSucceeds({ ioasId: 1 }, 'common.ioas.alloc');
    spec.given(...closed('6.17.0'), op.ioas()).when(op.ioas()).thenSucceeds({ ioasId: 6 }, 'common.ioas.alloc');
    spec.given(...closed('6.16.0')).when(destroy(4)).thenFails('EBUSY', 'upstream.destroy.viommu-busy');
    spec.given(...closed('6.16.0')).when(destroy(5)).thenSucceeds({}, 'upstream.destroy.ok');
  });
});

describe('upstream decider > issue 19: IOAS_MAP_FILE and IOAS_CHANGE_PROCESS (6.13)', () => {
  const mapFile = (iova: bigint): Operation => ({ kind: 'mapFile', ictx: 'fdA', ioasId: 2, iova, length: 0x2000n, fd: 'memfd', start: '0x0' });
  const mapAnon = (iova: bigint): Operation => ({ kind: 'mapIoas', ictx: 'fdA', ioasId: 2, iova, length: 0x2000n });
  const unmap = (iova: bigint): Operation => ({ kind: 'unmapIoas', ictx: 'fdA', ioasId: 2, iova, length: 0x2000n });
  const change: Operation = { kind: 'changeProcess', ictx: 'fdA' };

  it('issue 19 #2: both are -ENOTTY before 6.13; MAP_FILE maps as IOAS_MAP does (-EEXIST on an overlap, -ENOENT on a non-IOAS id)', () => {
    spec.given(...nicBoundOn('6.12.0')).when(mapFile(0x100000n)).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
    spec.given(...nicBoundOn('6.12.0')).when(change).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
    spec.given(...nicBoundOn('6.13.0')).when(mapFile(0x100000n)).thenSucceeds({ iova: '0x0000000000100000' }, 'upstream.map-file.ok');
    spec.given(...nicBoundOn('6.13.0'), mapAnon(0x100000n)).when(mapFile(0x101000n)).thenFails('EEXIST', 'upstream.map.eexist');
    spec.given(...nicBoundOn('6.13.0')).when({ ...mapFile(0x100000n), ioasId: 1 } as Operation).thenFails('ENOENT', 'upstream.ioas.enoent');
  });

  it('issue 19 #2: CHANGE_PROCESS is -EINVAL while any area was mapped from anonymous memory, and succeeds once only file areas are left', () => {
    const mixed = [...nicBoundOn('6.13.0'), mapFile(0x100000n), mapAnon(0x200000n)];
    spec.given(...nicBoundOn('6.13.0'), mapFile(0x100000n)).when(change).thenSucceeds({}, 'upstream.change-process.ok');
    spec.given(...mixed).when(change).thenFails('EINVAL', 'upstream.change-process.non-file');
    spec.given(...mixed, unmap(0x200000n)).when(change).thenSucceeds({}, 'upstream.change-process.ok');
    // an unmapped file area leaves no mark: an anonymous map at the same IOVA is not a file area
    spec.given(...mixed, unmap(0x100000n), unmap(0x200000n), mapAnon(0x100000n)).when(change).thenFails('EINVAL', 'upstream.change-process.non-file');
  });
});
