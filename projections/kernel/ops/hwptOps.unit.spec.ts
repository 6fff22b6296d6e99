import { describe, it } from 'vitest';
import { DeciderSpecification } from '../../../replay/testing/deciderSpecification.js';
import { AUDIO, GPU, NIC, op, topology } from '../../../replay/testing/fixtures.js';
import type { Observation, Operation } from '../types.js';
import { upstreamDecider } from '../upstream.decider.js';

/*
 * What the 6.12.118 kernel answered in the oracle (deploy/kernel-oracle/scenarios): s15 on QEMU's VT-d (a real
 * e1000e bound to vfio-pci; GET_HW_INFO: type intel-vtd, no capability) and s16 on the CONFIG_IOMMUFD_TEST mock
 * devices (virtio machines). The mock devices are no PCI function, so the catalogue records none of their calls:
 * here they are stand-in devices with the mock's capabilities (NIC: dirty tracking, like a mock device; GPU: none,
 * like one made with MOCK_FLAGS_DEVICE_NO_DIRTY), and each expectation is the errno the kernel returned.
 */
const spec = DeciderSpecification.for(upstreamDecider);
const vfio = (...d: string[]) => Object.fromEntries(d.map((x) => [x, 'vfio-pci']));
type Caps = readonly string[] | undefined;
/** a 6.12 snapshot where GET_HW_INFO's answer is known for some devices (`hwInfo`, as toEvents records it) */
const snapshot = (caps: Readonly<Record<string, Caps>>, release = '6.12.118'): Observation => {
  const topo = topology({ drivers: vfio(NIC, GPU, AUDIO) });
  const data = topo.data as { capabilities: object; devices: { device: string }[] };
  const devices = data.devices.map((d) => (caps[d.device] ? { ...d, hwInfo: { type: 'intel-vtd', capabilities: caps[d.device], maxPasidLog2: 0 } } : d));
  return { ...topo, data: { ...data, capabilities: { ...data.capabilities, kernelRelease: release }, devices } } as Observation;
};
const hwpt = (ptId: number, flags: number, more: Partial<Extract<Operation, { kind: 'allocHwpt' }>> = {}): Operation => ({ kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId, flags, ...more });
const destroy = (objectId: number): Operation => ({ kind: 'destroy', ictx: 'fdA', objectId });
const fault = (flags = 0, faultFd = 'fq'): Operation => ({ kind: 'allocFaultQueue', ictx: 'fdA', flags, faultFd });
const closeFault = (fd = 'fq'): Operation => ({ kind: 'closeEventFd', ictx: 'fdA', fd, fdKind: 'fault' });
const invalidate = (hwptId: number, dataType = 'vtd-s1', entryLen = 24, entryNum = 1): Operation => ({ kind: 'invalidateHwpt', ictx: 'fdA', hwptId, dataType, entryLen, entryNum });
const bitmap = (hwptId: number, iova: bigint, length: bigint, noClear?: boolean): Operation => ({ kind: 'getDirtyBitmap', ictx: 'fdA', hwptId, iova, length, pageSize: 4096n, noClear });
/** NIC bound (devId 1) and an IOAS (2), on a snapshot with the given capabilities */
const nicBound = (caps: Caps, release?: string) => [snapshot({ [NIC]: caps }, release), op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0'), op.ioas()];

describe('upstream decider > kernel oracle 6.12 (s15, real VT-d device): hwpt flags that depend on the device', () => {
  it('kernel oracle mock #2: IOMMU_HWPT_ALLOC_DIRTY_TRACKING for a device whose IOMMU has no dirty tracking is -EOPNOTSUPP (QEMU VT-d: the model accepted it)', () => {
    spec.given(...nicBound([])).when(hwpt(2, 0x2)).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.dirty-unsupported');
    spec.given(...nicBound(['dirty-tracking'])).when(hwpt(2, 0x2)).thenSucceeds({ hwptId: 3 }, 'upstream.hwpt-alloc.ok');
    // a host that never reported GET_HW_INFO: not known, allowed (as before)
    spec.given(...nicBound(undefined)).when(hwpt(2, 0x2)).thenSucceeds({ hwptId: 3 }, 'upstream.hwpt-alloc.ok');
  });

  it('kernel oracle mock #3: IOMMU_HWPT_FAULT_ID_VALID on an IOAS (a paging hwpt) is -EOPNOTSUPP on 6.12: iommufd_hwpt_paging_alloc valid_flags is NEST_PARENT | DIRTY_TRACKING (the model accepted it from 6.11)', () => {
    spec.given(...nicBound([]), fault()).when(hwpt(2, 0x4, { faultId: 3 })).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.flags');
    spec.given(...nicBound([], '6.11.0'), fault()).when(hwpt(2, 0x4, { faultId: 3 })).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.flags');
  });
});

describe('upstream decider > kernel oracle 6.12: IOMMU_GET_HW_INFO, IOMMU_HWPT_INVALIDATE, IOMMU_HWPT_GET_DIRTY_BITMAP', () => {
  it('kernel oracle mock #4: GET_HW_INFO answers for a device object and is -ENOENT for an IOAS id; before 6.6 the command does not exist', () => {
    spec.given(...nicBound([])).when({ kind: 'getHwInfo', ictx: 'fdA', devId: 1 }).thenSucceeds({}, 'upstream.hw-info.ok');
    spec.given(...nicBound([])).when({ kind: 'getHwInfo', ictx: 'fdA', devId: 2 }).thenFails('ENOENT', 'upstream.hw-info.enoent');
    spec.given(snapshot({}, '6.5.0'), op.openIommufd()).when({ kind: 'getHwInfo', ictx: 'fdA', devId: 1 }).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
  });

  it('kernel oracle mock #4: HWPT_INVALIDATE of a paging hwpt or a missing id is -ENOENT (iommufd_get_hwpt_nested), entry_num without entry_len -EINVAL, 6.7 has no such command', () => {
    const plain = [...nicBound([]), hwpt(2, 0)];
    spec.given(...plain).when(invalidate(3)).thenFails('ENOENT', 'upstream.invalidate.enoent');
    spec.given(...plain).when(invalidate(99)).thenFails('ENOENT', 'upstream.invalidate.enoent');
    spec.given(...plain).when(invalidate(3, 'vtd-s1', 0, 1)).thenFails('EINVAL', 'upstream.invalidate.einval');
    spec.given(...nicBound([], '6.7.0'), hwpt(2, 0)).when(invalidate(3)).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
  });

  it('kernel oracle mock #4 (s16): a nested hwpt takes its own invalidation type, writes back the entries handled, 0 entries is fine, another type is -EINVAL', () => {
    const nested = [...nicBound(['dirty-tracking']), hwpt(2, 0x1), hwpt(3, 0, { dataType: 'vtd-s1' })];
    spec.given(...nested).when(invalidate(4)).thenSucceeds({ entryNum: 1 }, 'upstream.invalidate.ok');
    spec.given(...nested).when(invalidate(4, 'vtd-s1', 24, 0)).thenSucceeds({ entryNum: 0 }, 'upstream.invalidate.ok');
    spec.given(...nested).when(invalidate(4, 'vtd-s1', 0, 1)).thenFails('EINVAL', 'upstream.invalidate.einval');
    spec.given(...nested).when(invalidate(3)).thenFails('ENOENT', 'upstream.invalidate.enoent');
    spec.given(...nested).when(invalidate(4, 'viommu-arm-smmuv3')).thenFails('EINVAL', 'upstream.invalidate.data-type');
  });

  it('kernel oracle mock #4: GET_DIRTY_BITMAP of a hwpt without dirty tracking is -EOPNOTSUPP, a zero length -EINVAL (checked first), a missing id -ENOENT; a DIRTY_TRACKING hwpt answers, NO_CLEAR too (s16)', () => {
    const plain = [...nicBound([]), hwpt(2, 0)];
    spec.given(...plain).when(bitmap(3, 0x100000n, 0x1000n)).thenFails('EOPNOTSUPP', 'upstream.dirty-bitmap.eopnotsupp');
    spec.given(...plain).when(bitmap(3, 0x100000n, 0n)).thenFails('EINVAL', 'upstream.dirty-bitmap.einval');
    spec.given(...plain).when(bitmap(99, 0x100000n, 0x1000n)).thenFails('ENOENT', 'upstream.dirty-bitmap.enoent');
    spec.given(...plain).when(bitmap(2, 0x100000n, 0x1000n)).thenFails('ENOENT', 'upstream.dirty-bitmap.enoent');
    const dirty = [...nicBound(['dirty-tracking']), hwpt(2, 0x2), { kind: 'setDirtyTracking', ictx: 'fdA', hwptId: 3, enable: true } as Operation];
    spec.given(...dirty).when(bitmap(3, 0x1000000n, 0x4000n)).thenSucceeds({}, 'upstream.dirty-bitmap.ok');
    spec.given(...dirty).when(bitmap(3, 0x1000000n, 0x4000n, true)).thenSucceeds({}, 'upstream.dirty-bitmap.ok');
    spec.given(...dirty).when(bitmap(3, 0x1000000n, 0n)).thenFails('EINVAL', 'upstream.dirty-bitmap.einval');
  });
});

describe('upstream decider > kernel oracle 6.12: fault queues (6.11)', () => {
  it('kernel oracle mock #5: FAULT_QUEUE_ALLOC returns an object and its fd; any flag is -EOPNOTSUPP; the open fd makes IOMMU_DESTROY -EBUSY, after its close the destroy works (s15)', () => {
    spec.given(...nicBound([])).when(fault()).thenSucceeds({ faultId: 3, faultFd: 'fq' }, 'upstream.fault-queue.ok');
    spec.given(...nicBound([])).when(fault(1)).thenFails('EOPNOTSUPP', 'upstream.fault-queue.eopnotsupp');
    spec.given(...nicBound([]), fault()).when(destroy(3)).thenFails('EBUSY', 'upstream.destroy.fault-busy');
    spec.given(...nicBound([]), fault()).when(closeFault()).thenSucceeds({}, 'upstream.fault-fd.closed');
    spec.given(...nicBound([]), fault(), closeFault()).when(destroy(3)).thenSucceeds({}, 'upstream.destroy.ok');
    spec.given(...nicBound([]), fault(), closeFault()).when(closeFault()).thenFails('EBADF', 'common.fd.ebadf');
    spec.given(...nicBound([], '6.10.0')).when(fault()).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
  });

  it('kernel oracle mock #5 (s16): a nested hwpt with FAULT_ID_VALID holds its fault queue; a fault_id naming an IOAS is -ENOENT; destroying the nested hwpt and closing the fd frees it', () => {
    const parent = [...nicBound(['dirty-tracking']), fault(), hwpt(2, 0x1)];
    spec.given(...parent).when(hwpt(4, 0x4, { dataType: 'vtd-s1', faultId: 3 })).thenSucceeds({ hwptId: 5 }, 'upstream.hwpt-alloc.nested');
    spec.given(...parent).when(hwpt(4, 0x4, { dataType: 'vtd-s1', faultId: 2 })).thenFails('ENOENT', 'upstream.hwpt-alloc.fault-enoent');
    const nested = [...parent, hwpt(4, 0x4, { dataType: 'vtd-s1', faultId: 3 }), closeFault()];
    spec.given(...nested).when(destroy(3)).thenFails('EBUSY', 'upstream.destroy.fault-busy');
    spec.given(...nested, destroy(5)).when(destroy(3)).thenSucceeds({}, 'upstream.destroy.ok');
  });

  it('kernel oracle mock #5: an open fault fd holds the ctx: closing /dev/iommu leaves it alive until the fd closes', () => {
    spec.given(snapshot({}), op.openIommufd(), fault()).when({ kind: 'closeIommufd', ictx: 'fdA' }).thenSucceeds({}, 'upstream.ictx.close-deferred');
    spec.given(snapshot({}), op.openIommufd(), fault(), { kind: 'closeIommufd', ictx: 'fdA' }).when(closeFault()).thenSucceeds({}, 'upstream.fault-fd.closed');
  });
});

describe('upstream decider > kernel oracle 6.12 (s16): the CONFIG_IOMMUFD_TEST mock devices, on stand-ins with their capabilities', () => {
  it('kernel oracle mock #6: nesting parent, nested hwpt and its refusals, dirty tracking with a capable and an incapable device, answered as the mock devices were', () => {
    // NIC ≈ mock device m (dirty tracking), GPU ≈ mock device nd (MOCK_FLAGS_DEVICE_NO_DIRTY); devIds 1 and 2, IOAS 3
    const both = [snapshot({ [NIC]: ['dirty-tracking'], [GPU]: [] }), op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0'), op.open(GPU, 'g0'), op.bind(GPU, 'g0'), op.ioas()];
    const m = (ptId: number, flags: number, more: Partial<Extract<Operation, { kind: 'allocHwpt' }>> = {}): Operation => hwpt(ptId, flags, more);
    spec.given(...both).when(m(3, 0x1)).thenSucceeds({ hwptId: 4 }, 'upstream.hwpt-alloc.ok');
    const parent = [...both, m(3, 0x1)];
    spec.given(...parent).when(m(4, 0, { dataType: 'vtd-s1' })).thenSucceeds({ hwptId: 5 }, 'upstream.hwpt-alloc.nested');
    spec.given(...parent).when(m(4, 0)).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.nested-eopnotsupp');
    spec.given(...parent).when(m(4, 0x1, { dataType: 'vtd-s1' })).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.nested-eopnotsupp');
    const nested = [...parent, m(4, 0, { dataType: 'vtd-s1' })];
    spec.given(...nested).when(m(5, 0, { dataType: 'vtd-s1' })).thenFails('EINVAL', 'upstream.hwpt-alloc.parent-einval');
    spec.given(...nested).when(destroy(4)).thenFails('EBUSY', 'upstream.destroy.hwpt-parent-busy');
    spec.given(...both).when(m(3, 0x2)).thenSucceeds({ hwptId: 4 }, 'upstream.hwpt-alloc.ok');
    spec.given(...both).when({ ...hwpt(3, 0x2), devId: 2 } as Operation).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.dirty-unsupported');
    spec.given(...both, fault()).when(m(3, 0x4, { faultId: 4 })).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.flags');
  });
});
