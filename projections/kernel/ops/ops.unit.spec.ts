import { describe, expect, it } from 'vitest';
import { DeciderSpecification } from '../../../replay/testing/deciderSpecification.js';
import { AUDIO, DEV_A, DEV_B, GPU, NIC, RMRR_USB, op, topology } from '../../../replay/testing/fixtures.js';
import type { ModelOutcome, ModelState, Observation, Operation } from '../types.js';
import { toRecordedEvents } from '../operations.js';
import { evolveWithDecision } from '../decider.js';
import { upstreamDecider } from '../upstream.decider.js';
import { createFleetProjection } from '../../fleetProjection.js';
import { CORPUS } from '../../../replay/testing/scenarios.js';
import { factsOfProjection } from '../../../replay/testing/crossModel.js';

// issue 19: the rest of the kernel's operations, decided per release (each rule cites its kernel function in rules.ts)
const spec = DeciderSpecification.for(upstreamDecider);
const vfio = (...d: string[]) => Object.fromEntries(d.map((x) => [x, 'vfio-pci']));
type Snapshot = { data: { capabilities: object; groups: { group: number; devices: string[] }[]; devices: { device: string }[] } };
/** the reference topology on `kernelRelease`, with per-device and per-group fields patched in */
const onRelease = (
  kernelRelease: string,
  options: Parameters<typeof topology>[0],
  patch: { devices?: Record<string, object>; groups?: Record<number, object> } = {},
): Observation => {
  const topo = topology(options) as unknown as Snapshot;
  const data = {
    ...topo.data,
    capabilities: { ...topo.data.capabilities, kernelRelease },
    devices: topo.data.devices.map((d) => ({ ...d, ...(patch.devices?.[d.device] ?? {}) })),
    groups: topo.data.groups.map((g) => ({ ...g, ...(patch.groups?.[g.group] ?? {}) })),
  };
  return { ...topo, data } as unknown as Observation;
};

/** NIC bound (dev 1), IOAS 2, a NEST_PARENT hwpt 3 and a vIOMMU 4 of `viommuType` */
const withViommu = (release: string, viommuType = 'arm-smmuv3'): (Observation | Operation)[] => [
  onRelease(release, { drivers: vfio(NIC) }),
  op.openIommufd(),
  op.open(NIC, 'n0'),
  op.bind(NIC, 'n0'),
  op.ioas(),
  { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 1 },
  { kind: 'allocViommu', ictx: 'fdA', devId: 1, hwptId: 3, viommuType, flags: 0 },
];
const veventq = (viommuId = 4, o: Partial<Extract<Operation, { kind: 'allocVeventq' }>> = {}): Operation => ({
  kind: 'allocVeventq',
  ictx: 'fdA',
  viommuId,
  veventqType: 'arm-smmuv3',
  depth: 64,
  flags: 0,
  veventqFd: 'q0',
  ...o,
});
const closeQ = (fd = 'q0'): Operation => ({ kind: 'closeEventFd', ictx: 'fdA', fd, fdKind: 'veventq' });

describe('upstream decider > issue 19: vEVENTQ (6.15)', () => {
  it('issue 19 ops: IOMMU_VEVENTQ_ALLOC is -ENOTTY before 6.15; from 6.15 flags/type DEFAULT -EOPNOTSUPP, depth 0 -EINVAL, no vIOMMU -ENOENT, a second queue of a type -EEXIST', () => {
    spec.given(...withViommu('6.14.0')).when(veventq()).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
    spec.given(...withViommu('6.15.0')).when(veventq()).thenSucceeds({ veventqId: 5, veventqFd: 'q0' }, 'upstream.veventq.ok');
    spec.given(...withViommu('6.15.0')).when(veventq(4, { veventqType: 'default' })).thenFails('EOPNOTSUPP', 'upstream.veventq.eopnotsupp');
    spec.given(...withViommu('6.15.0')).when(veventq(4, { flags: 1 })).thenFails('EOPNOTSUPP', 'upstream.veventq.eopnotsupp');
    spec.given(...withViommu('6.15.0')).when(veventq(4, { depth: 0 })).thenFails('EINVAL', 'upstream.veventq.depth-einval');
    spec.given(...withViommu('6.15.0')).when(veventq(3)).thenFails('ENOENT', 'upstream.veventq.enoent');
    spec.given(...withViommu('6.15.0'), veventq()).when(veventq(4, { veventqFd: 'q1' })).thenFails('EEXIST', 'upstream.veventq.eexist');
    spec.given(...withViommu('6.17.0'), veventq()).when(veventq(4, { veventqType: 'tegra241-cmdqv', veventqFd: 'q1' })).thenSucceeds({ veventqId: 6, veventqFd: 'q1' }, 'upstream.veventq.ok');
  });

  it('issue 19 ops: destroy order: the vIOMMU is -EBUSY while its vEVENTQ lives, the vEVENTQ is -EBUSY while its fd is open; after the close both go', () => {
    const queued = [...withViommu('6.15.0'), veventq()];
    spec.given(...queued).when(op.destroy(4)).thenFails('EBUSY', 'upstream.destroy.viommu-queue-busy');
    spec.given(...queued).when(op.destroy(5)).thenFails('EBUSY', 'upstream.destroy.veventq-fd-busy');
    spec.given(...queued, closeQ()).when(op.destroy(5)).thenSucceeds({}, 'upstream.destroy.ok');
    spec.given(...queued, closeQ(), op.destroy(5)).when(op.destroy(4)).thenSucceeds({}, 'upstream.destroy.ok');
  });

  it('issue 19 ops: the vEVENTQ fd keeps the context alive after /dev/iommu is closed (iommufd_ctx_get), and its close ends it', () => {
    const closedCtx = [...withViommu('6.15.0'), veventq(), op.close(NIC, 'n0'), { kind: 'closeIommufd', ictx: 'fdA' } as Operation];
    const alive = spec.given(...closedCtx).when(closeQ()).thenSucceeds({}, 'upstream.event-fd.closed');
    expect(alive.ictxs.has('fdA')).toBe(false);
    const before = spec.given(...withViommu('6.15.0'), veventq(), op.close(NIC, 'n0')).when({ kind: 'closeIommufd', ictx: 'fdA' }).thenSucceeds({}, 'upstream.ictx.close-deferred');
    expect(before.ictxs.get('fdA')?.open).toBe(false);
    spec.given(...closedCtx, closeQ()).when(closeQ()).thenFails('EBADF', 'common.fd.ebadf');
  });
});

describe('upstream decider > issue 19: HW queue (6.17)', () => {
  const hwQueue = (o: Partial<Extract<Operation, { kind: 'allocHwQueue' }>> = {}): Operation => ({
    kind: 'allocHwQueue',
    ictx: 'fdA',
    viommuId: 4,
    hwQueueType: 'tegra241-cmdqv',
    index: 0,
    iova: 0x80000000n,
    length: 0x10000n,
    flags: 0,
    ...o,
  });
  it('issue 19 ops: IOMMU_HW_QUEUE_ALLOC is -ENOTTY before 6.17; type DEFAULT or a vIOMMU without HW queues -EOPNOTSUPP, length 0 -EINVAL, iova+length overflowing -EOVERFLOW, no vIOMMU -ENOENT', () => {
    spec.given(...withViommu('6.16.0', 'tegra241-cmdqv')).when(hwQueue()).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
    spec.given(...withViommu('6.17.0', 'tegra241-cmdqv')).when(hwQueue()).thenSucceeds({ hwQueueId: 5 }, 'upstream.hw-queue.ok');
    spec.given(...withViommu('6.17.0', 'tegra241-cmdqv')).when(hwQueue({ hwQueueType: 'default' })).thenFails('EOPNOTSUPP', 'upstream.hw-queue.eopnotsupp');
    spec.given(...withViommu('6.17.0', 'arm-smmuv3')).when(hwQueue()).thenFails('EOPNOTSUPP', 'upstream.hw-queue.eopnotsupp');
    spec.given(...withViommu('6.17.0', 'tegra241-cmdqv')).when(hwQueue({ length: 0n })).thenFails('EINVAL', 'upstream.hw-queue.length-einval');
    spec.given(...withViommu('6.17.0', 'tegra241-cmdqv')).when(hwQueue({ iova: 0xffffffffffff0000n, length: 0x10001n })).thenFails('EOVERFLOW', 'upstream.hw-queue.eoverflow');
    spec.given(...withViommu('6.17.0', 'tegra241-cmdqv')).when(hwQueue({ iova: 0xffffffffffff0000n, length: 0x10000n })).thenSucceeds({ hwQueueId: 5 }, 'upstream.hw-queue.ok');
    spec.given(...withViommu('6.17.0', 'tegra241-cmdqv')).when(hwQueue({ viommuId: 3 })).thenFails('ENOENT', 'upstream.hw-queue.enoent');
  });

  it('issue 19 ops: a HW queue lives under its vIOMMU: the vIOMMU is -EBUSY until the queue is destroyed', () => {
    spec.given(...withViommu('6.17.0', 'tegra241-cmdqv'), hwQueue()).when(op.destroy(4)).thenFails('EBUSY', 'upstream.destroy.viommu-queue-busy');
    spec.given(...withViommu('6.17.0', 'tegra241-cmdqv'), hwQueue(), op.destroy(5)).when(op.destroy(4)).thenSucceeds({}, 'upstream.destroy.ok');
  });
});

describe('upstream decider > issue 19: VF token on the cdev bind (6.17)', () => {
  /** NIC is a VF of DEV_A (a PF with 8 VFs); `pfDriver` drives the PF */
  const sriov = (release: string, pfDriver: string | null, nicPatch: object = { physfn: DEV_A }): Observation =>
    onRelease(release, { drivers: { ...vfio(NIC, GPU), [DEV_A]: pfDriver, [DEV_B]: null } }, { devices: { [NIC]: nicPatch, [DEV_A]: { sriovTotalVfs: 8 } } });
  const bindVf = (vfToken?: boolean): Operation => ({ kind: 'bindIommufd', device: NIC, deviceFd: 'n0', ictx: 'fdA', ...(vfToken === undefined ? {} : { vfToken }) });
  const opened = (release: string, pfDriver: string | null, nicPatch?: object) => [sriov(release, pfDriver, nicPatch), op.openIommufd(), op.open(NIC, 'n0')];

  it('issue 19 ops: a VF whose PF is bound to vfio-pci, bound without a token, is -EACCES from 6.17 (was bound before); with the token it binds', () => {
    spec.given(...opened('6.16.0', 'vfio-pci')).when(bindVf()).thenSucceeds({ devId: 1 }, 'upstream.claim.take');
    spec.given(...opened('6.17.0', 'vfio-pci')).when(bindVf()).thenFails('EACCES', 'upstream.bind.vf-token-required');
    spec.given(...opened('6.17.0', 'vfio-pci')).when(bindVf(true)).thenSucceeds({ devId: 1 }, 'upstream.claim.take');
    spec.given(...opened('6.17.0', 'ixgbe')).when(bindVf()).thenSucceeds({ devId: 1 }, 'upstream.claim.take');
  });

  it('issue 19 ops: a PF on vfio-pci whose VF is in use by a vfio user needs the token too (-EACCES without it); with no VF in use it binds without one', () => {
    const vfInUse = [sriov('6.17.0', 'vfio-pci'), op.openIommufd(), op.open(NIC, 'n0'), bindVf(true), op.open(DEV_A, 'p0')];
    const bindPf = (vfToken?: boolean): Operation => ({ kind: 'bindIommufd', device: DEV_A, deviceFd: 'p0', ictx: 'fdA', ...(vfToken === undefined ? {} : { vfToken }) });
    spec.given(...vfInUse).when(bindPf()).thenFails('EACCES', 'upstream.bind.pf-vf-token-required');
    spec.given(...vfInUse).when(bindPf(true)).thenSucceeds({ devId: 2 }, 'upstream.claim.take');
    spec.given(sriov('6.17.0', 'vfio-pci'), op.openIommufd(), op.open(NIC, 'n0'), op.open(DEV_A, 'p0')).when(bindPf()).thenSucceeds({ devId: 1 }, 'upstream.claim.take');
    // the VF's close drops its user (vfio_pci_vf_token_user_add(vdev, -1)); its device id is free again
    spec.given(...vfInUse.slice(0, 4), op.close(NIC, 'n0'), op.open(DEV_A, 'p0')).when(bindPf()).thenSucceeds({ devId: 1 }, 'upstream.claim.take');
  });

  it('issue 19 ops: a token is -EINVAL before 6.17 (unknown flag), for a VF whose PF is not on vfio-pci, and for a device that is neither PF nor VF', () => {
    spec.given(...opened('6.16.0', 'vfio-pci')).when(bindVf(true)).thenFails('EINVAL', 'release.bind.token-flag-einval');
    spec.given(...opened('6.17.0', 'ixgbe')).when(bindVf(true)).thenFails('EINVAL', 'upstream.bind.vf-token-pf-not-vfio');
    spec.given(...opened('6.17.0', 'ixgbe', {})).when(bindVf(true)).thenFails('EINVAL', 'upstream.bind.vf-token-not-sriov');
    spec.given(sriov('6.17.0', 'vfio-pci'), op.openIommufd(), op.open(DEV_A, 'p0')).when({ kind: 'bindIommufd', device: DEV_A, deviceFd: 'p0', ictx: 'fdA', vfToken: true }).thenSucceeds({ devId: 1 }, 'upstream.claim.take');
  });
});

describe('upstream decider > issue 19: device reset fences the IOMMU (7.0)', () => {
  const fence = (device: string, phase: 'prepare' | 'done'): Observation => ({ type: 'TraceDeviceResetFence', data: { device, phase } }) as unknown as Observation;
  const bound = (release: string) => [
    onRelease(release, { drivers: vfio(GPU, AUDIO) }),
    op.openIommufd(),
    op.open(GPU, 'g0'),
    op.bind(GPU, 'g0'),
    op.open(AUDIO, 'a0'),
    op.bind(AUDIO, 'a0'),
    op.ioas(),
  ];
  it('issue 19 ops: an ATTACH while the device or a group sibling is between reset prepare and done is -EBUSY from 7.0 (0 before, 0 after done)', () => {
    spec.given(...bound('7.0.0'), fence(AUDIO, 'prepare')).when(op.attach(GPU, 'g0', 3)).thenFails('EBUSY', 'upstream.attach.reset-ebusy');
    spec.given(...bound('7.0.0'), fence(GPU, 'prepare')).when(op.attach(GPU, 'g0', 3)).thenFails('EBUSY', 'upstream.attach.reset-ebusy');
    spec.given(...bound('6.19.0'), fence(AUDIO, 'prepare')).when(op.attach(GPU, 'g0', 3)).thenSucceeds({ ptId: 4 }, 'upstream.attach.first');
    spec.given(...bound('7.0.0'), fence(AUDIO, 'prepare'), fence(AUDIO, 'done')).when(op.attach(GPU, 'g0', 3)).thenSucceeds({ ptId: 4 }, 'upstream.attach.first');
  });

  it('issue 19 ops: a replace to another page table is fenced too; a sibling joining the group page table calls no iommu op and is not', () => {
    const attached = [...bound('7.0.0'), op.attach(GPU, 'g0', 3)];
    spec.given(...attached, fence(GPU, 'prepare')).when(op.attach(AUDIO, 'a0', 3)).thenSucceeds({ ptId: 4 }, 'upstream.attach.join');
    spec.given(...attached, op.ioas(), fence(AUDIO, 'prepare')).when(op.attach(GPU, 'g0', 5)).thenFails('EBUSY', 'upstream.attach.reset-ebusy');
  });

  it('issue 19 ops: the fence and its two attach_device_to_domain lines (corpus s47) move no ownership in the fleet projection and open no violation', () => {
    const history = CORPUS.find((c) => c.name === 's47-reset-fence')!.events;
    const projection = createFleetProjection();
    const fleet = projection.initialState();
    let before: ReturnType<typeof factsOfProjection> | undefined;
    for (const e of history) {
      const fenceLine = e.type === 'TraceDeviceResetFence' || (e.type === 'TraceAttachDeviceToDomain' && e.data.resetFence !== undefined);
      if (fenceLine) before ??= structuredClone(factsOfProjection(fleet.hosts[e.host]));
      projection.evolve(fleet, e);
      if (fenceLine) expect(factsOfProjection(fleet.hosts[e.host])).toEqual(before);
    }
    expect(before).toBeDefined();
    expect(Object.keys(fleet.violations.open)).toEqual([]);
  });

  it('issue 19 ops: VFIO_DEVICE_RESET itself is decided (0 with access, -EINVAL on an unbound cdev fd) and moves no ownership', () => {
    const s = spec.given(...bound('7.0.0')).when({ kind: 'resetDevice', device: GPU, deviceFd: 'g0', reset: 'device' }).thenSucceeds({}, 'upstream.reset.ok');
    expect(s.groups.get(7)?.owner).toEqual({ kind: 'ictx', ictx: 'fdA' });
    spec.given(onRelease('7.0.0', { drivers: vfio(GPU) }), op.open(GPU, 'g0')).when({ kind: 'resetDevice', device: GPU, deviceFd: 'g0', reset: 'device' }).thenFails('EINVAL', 'upstream.cdev.access-before-bind');
  });
});

describe('upstream decider > issue 19: EPROBE_DEFER without a default domain (item 18)', () => {
  it('issue 19 ops: binding a DMA-API driver into a group whose type reads "unknown" (no default domain yet) is -EAGAIN (EPROBE_DEFER) from 6.15; vfio-pci (driver_managed_dma) is not deferred', () => {
    const noDefault = (release: string) => onRelease(release, { drivers: { [NIC]: null } }, { groups: { 12: { defaultDomainType: 'unknown' } } });
    spec.given(noDefault('6.15.0')).when(op.bindDriver(NIC, 'igb')).thenFails('EAGAIN', 'upstream.probe.no-default-domain');
    spec.given(noDefault('6.14.0')).when(op.bindDriver(NIC, 'igb')).thenSucceeds({}, 'upstream.probe.dma-api-user');
    spec.given(noDefault('6.15.0')).when(op.bindDriver(NIC, 'vfio-pci')).thenSucceeds({}, 'upstream.probe.managed-dma');
    spec.given(noDefault('6.15.0'), onRelease('6.15.0', { drivers: { [NIC]: null } })).when(op.bindDriver(NIC, 'igb')).thenSucceeds({}, 'upstream.probe.dma-api-user');
  });
});

describe('upstream decider > issue 19: noiommu through iommufd (7.3)', () => {
  const noiommu = (release: string) => onRelease(release, { drivers: vfio(NIC) }, { devices: { [NIC]: { group: null } }, groups: { 12: { devices: [] } } });
  const openNoiommu: Operation = { kind: 'openDevice', device: NIC, deviceFd: 'n0', cdev: 'noiommu-vfio0' };
  it('issue 19 ops: /dev/vfio/devices/noiommu-vfioN does not exist before 7.3 (-ENOENT); on 7.3 it opens and binds to an iommufd without a group', () => {
    spec.given(noiommu('7.2.0'), op.openIommufd()).when(openNoiommu).thenFails('ENOENT', 'release.cdev.noiommu-no-node');
    spec.given(noiommu('7.3.0'), op.openIommufd()).when(openNoiommu).thenSucceeds({}, 'upstream.cdev.open');
    spec.given(noiommu('7.3.0'), op.openIommufd(), openNoiommu).when(op.bind(NIC, 'n0')).thenSucceeds({ devId: 1 }, 'upstream.bind.noiommu');
    spec.given(noiommu('7.3.0'), op.openIommufd(), op.open(NIC, 'n0')).when(op.bind(NIC, 'n0')).thenFails('ENODEV', 'upstream.bind.no-group');
  });

  it('issue 19 ops: on 7.3 a bound noiommu fd attaches to an IOAS through a software-only hwpt (was -ENODEV: no group), detaches, and its close frees the hwpt so the IOAS can go', () => {
    const bound = [noiommu('7.3.0'), op.openIommufd(), openNoiommu, op.bind(NIC, 'n0'), op.ioas()];
    spec.given(...bound).when(op.attach(NIC, 'n0', 2)).thenSucceeds({ ptId: 3 }, 'upstream.attach.noiommu');
    spec.given(...bound, op.attach(NIC, 'n0', 2)).when(op.attach(NIC, 'n0', 2)).thenSucceeds({ ptId: 3 }, 'upstream.attach.replace-same');
    spec.given(...bound, op.attach(NIC, 'n0', 2)).when(op.destroy(2)).thenFails('EBUSY', 'upstream.destroy.ioas-busy');
    const detached = spec.given(...bound, op.attach(NIC, 'n0', 2)).when(op.detach(NIC, 'n0')).thenSucceeds({}, 'upstream.detach.noiommu');
    expect(detached.ictxs.get('fdA')?.objects.has(3)).toBe(false);
    spec.given(...bound, op.attach(NIC, 'n0', 2), op.close(NIC, 'n0')).when(op.destroy(2)).thenSucceeds({}, 'upstream.destroy.ok');
  });

  const getPa = (iova: bigint, o: Partial<Extract<Operation, { kind: 'getPa' }>> = {}): Operation => ({ kind: 'getPa', ictx: 'fdA', ioasId: 2, iova, length: 0x1000n, phys: '0x0000000123456000', ...o });
  const mapped = (release: string): (Observation | Operation)[] => [
    noiommu(release),
    op.openIommufd(),
    openNoiommu,
    op.bind(NIC, 'n0'),
    op.ioas(),
    op.attach(NIC, 'n0', 2),
    { kind: 'mapIoas', ictx: 'fdA', ioasId: 2, iova: 0x100000n, length: 0x200000n },
  ];
  it('issue 19 ops #16: IOMMU_IOAS_GET_PA is -ENOTTY before 7.3; on 7.3 a missing IOAS is -ENOENT, an IOVA no area maps fails (-ENOENT, inferred), a mapped IOVA answers its phys', () => {
    spec.given(...mapped('7.2.0').slice(0, 2), op.ioas()).when(getPa(0x100000n)).thenFails('ENOTTY', 'release.iommufd-cmd.enotty');
    spec.given(...mapped('7.3.0')).when(getPa(0x100000n)).thenSucceeds({ phys: '0x0000000123456000' }, 'upstream.get-pa.ok');
    spec.given(...mapped('7.3.0')).when(getPa(0x2ff000n)).thenSucceeds({ phys: '0x0000000123456000' }, 'upstream.get-pa.ok');
    spec.given(...mapped('7.3.0')).when(getPa(0x100000n, { ioasId: 9 })).thenFails('ENOENT', 'upstream.ioas.enoent');
    spec.given(...mapped('7.3.0')).when(getPa(0x300000n)).thenFails('ENOENT', 'upstream.get-pa.unmapped');
    spec.given(...mapped('7.3.0'), { kind: 'unmapIoas', ictx: 'fdA', ioasId: 2, iova: 0x100000n, length: 0x200000n }).when(getPa(0x100000n)).thenFails('ENOENT', 'upstream.get-pa.unmapped');
  });

  it('issue 19 ops #16: IOMMU_IOAS_GET_PA is a read: the state after it is the state before', () => {
    const before = spec.given(...mapped('7.3.0')).when({ kind: 'allocIoas', ictx: 'fdA' }).thenSucceeds({ ioasId: 4 }, 'common.ioas.alloc');
    const after = spec.given(...mapped('7.3.0'), getPa(0x100000n)).when({ kind: 'allocIoas', ictx: 'fdA' }).thenSucceeds({ ioasId: 4 }, 'common.ioas.alloc');
    expect(after).toEqual(before);
  });
});

describe('upstream decider > issue 19: VFIO dma-buf (6.19)', () => {
  const dmaBuf = (o: Partial<Extract<Operation, { kind: 'createDmaBuf' }>> = {}): Operation => ({ kind: 'createDmaBuf', device: NIC, deviceFd: 'n0', dmaBufFd: 'b0', regionIndex: 0, nrRanges: 1, ...o });
  const opened = (release: string) => [onRelease(release, { drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0')];
  it('issue 19 ops #11: VFIO_DEVICE_FEATURE_DMA_BUF is -ENOTTY before 6.19 (vfio_pci_core_ioctl_feature: unknown feature); from 6.19 a device fd with access gets a dma-buf, one without access -EINVAL, an unknown fd -EBADF', () => {
    spec.given(...opened('6.18.0'), op.bind(NIC, 'n0')).when(dmaBuf()).thenFails('ENOTTY', 'release.dma-buf.enotty');
    spec.given(...opened('6.19.0'), op.bind(NIC, 'n0')).when(dmaBuf()).thenSucceeds({ dmaBufFd: 'b0' }, 'upstream.dma-buf.ok');
    spec.given(...opened('6.19.0')).when(dmaBuf()).thenFails('EINVAL', 'upstream.cdev.access-before-bind');
    spec.given(...opened('6.19.0')).when(dmaBuf({ deviceFd: 'n9' })).thenFails('EBADF', 'common.fd.ebadf');
  });
});

/** the history folded twice: each call decided, and each call's recorded events evolved (the plan of the recorded outcome) */
const foldBothWays = (...history: (Observation | Operation)[]): { decided: ModelState; recorded: ModelState } => {
  const decided = upstreamDecider.initialState();
  const recorded = upstreamDecider.initialState();
  for (const step of history) {
    if (!('kind' in step)) {
      upstreamDecider.evolve(decided, step);
      upstreamDecider.evolve(recorded, step);
      continue;
    }
    const decision = upstreamDecider.decide(step, decided);
    evolveWithDecision(upstreamDecider, decided, decision);
    for (const e of decision.events) upstreamDecider.evolve(recorded, e);
  }
  return { decided, recorded };
};

/** the state `history` leaves when each call is decided, then `last` evolved as recorded with `outcome` (whatever the model decides) */
const followed = (last: Operation, outcome: ModelOutcome, ...history: (Observation | Operation)[]): { state: ModelState; decided: ModelOutcome } => {
  const state = foldBothWays(...history).decided;
  const decided = upstreamDecider.decide(last, state).outcome;
  for (const e of toRecordedEvents(last, outcome)) upstreamDecider.evolve(state, e);
  return { state, decided };
};

describe('upstream decider > issue 16 with issue 19: a recorded history of the new operations evolves to the state deciding it reaches', () => {
  const noiommu = onRelease('7.3.0', { drivers: vfio(NIC) }, { devices: { [NIC]: { group: null } }, groups: { 12: { devices: [] } } });
  const openNoiommu: Operation = { kind: 'openDevice', device: NIC, deviceFd: 'n0', cdev: 'noiommu-vfio0' };

  it('issue 16 merge: a recorded noiommu open, bind, attach, re-attach to a second IOAS and detach keep the fd noiommu and free its software hwpts as deciding them does', () => {
    const opened = [noiommu, op.openIommufd(), openNoiommu, op.bind(NIC, 'n0'), op.ioas(), op.ioas(), op.attach(NIC, 'n0', 2)];
    const attached = foldBothWays(...opened);
    expect(attached.recorded.fds.get('n0')).toMatchObject({ noiommu: true, hwpt: 4 });
    expect(attached.recorded).toEqual(attached.decided);
    const moved = foldBothWays(...opened, op.attach(NIC, 'n0', 3));
    expect(moved.recorded.ictxs.get('fdA')?.objects.has(4)).toBe(false);
    expect(moved.recorded).toEqual(moved.decided);
    const detached = foldBothWays(...opened, op.detach(NIC, 'n0'), op.close(NIC, 'n0'), op.destroy(2));
    expect(detached.recorded.ictxs.get('fdA')?.objects.has(2)).toBe(false);
    expect(detached.recorded).toEqual(detached.decided);
  });

  it('issue 16 merge: a recorded close of /dev/iommu while a vEVENTQ fd holds it leaves the ctx alive, closed, as deciding it does', () => {
    const both = foldBothWays(...withViommu('6.15.0'), veventq(), op.close(NIC, 'n0'), { kind: 'closeIommufd', ictx: 'fdA' });
    expect(both.recorded.ictxs.get('fdA')?.open).toBe(false);
    expect(both.recorded).toEqual(both.decided);
  });

  it('issue 16 merge: a recorded nested hwpt alloc with FAULT_ID_VALID holds its fault queue as deciding it does', () => {
    const nested: Operation = { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 3, flags: 0x4, dataType: 'vtd-s1', faultId: 4 };
    const parentAndQueue: (Observation | Operation)[] = [
      onRelease('6.12.118', { drivers: vfio(NIC) }),
      op.openIommufd(),
      op.open(NIC, 'n0'),
      op.bind(NIC, 'n0'),
      op.ioas(),
      { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 0x1 },
      { kind: 'allocFaultQueue', ictx: 'fdA', flags: 0, faultFd: 'fq' },
    ];
    const both = foldBothWays(...parentAndQueue, nested);
    expect(both.recorded.ictxs.get('fdA')?.objects.get(5)).toMatchObject({ kind: 'hwpt', parent: 3, fault: 4, dataType: 'vtd-s1' });
    expect(both.recorded).toEqual(both.decided);
  });
});

describe('upstream decider > issue 16 plan: driver unbind, the legacy container, reads and df->access_granted as check and plan', () => {
  const legacyNic: (Observation | Operation)[] = [
    topology({ drivers: vfio(NIC) }),
    { kind: 'openContainer', container: 'c1' },
    { kind: 'openGroup', group: 12, groupFd: 'g12' },
    { kind: 'setContainer', group: 12, groupFd: 'g12', container: 'c1', containerKind: 'legacy' },
    { kind: 'setIommu', container: 'c1', iommuType: 'type1v2' },
    { kind: 'getDeviceFd', group: 12, groupFd: 'g12', device: NIC, newFd: 'd0' },
  ];

  it('issue 16 plan: df->access_granted is on the model fds: a cdev fd gets it at BIND, a group-path fd at its open, and access is decided on it', () => {
    const cdev = foldBothWays(topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'));
    expect(cdev.recorded.fds.get('n0')).toMatchObject({ via: 'cdev', accessGranted: false });
    expect(upstreamDecider.decide(op.access(NIC, 'n0'), cdev.decided).outcome).toMatchObject({ ok: false, errno: 'EINVAL' });
    const bound = foldBothWays(topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0'), op.access(NIC, 'n0'));
    expect(bound.recorded.fds.get('n0')).toMatchObject({ ictx: 'fdA', accessGranted: true });
    expect(bound.recorded).toEqual(bound.decided);
    const group = foldBothWays(...legacyNic, op.access(NIC, 'd0'), { kind: 'groupStatus', group: 12, groupFd: 'g12' });
    expect(group.recorded.fds.get('d0')).toMatchObject({ via: 'group', ictx: null, accessGranted: true });
    expect(group.recorded).toEqual(group.decided);
  });

  it('issue 16 plan: a recorded access granted on an fd never bound (the kernel: -EINVAL) changes no state: the fd stays without access_granted, for the projection to find', () => {
    const { state, decided } = followed(op.access(NIC, 'n0'), { ok: true }, topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'));
    expect(decided).toMatchObject({ ok: false, errno: 'EINVAL' });
    expect(state.fds.get('n0')).toMatchObject({ ictx: null, accessGranted: false });
  });

  it('issue 16 plan: a recorded unbind of vfio-pci while its device fd is open (the model: blocks until the close) is followed: the driver goes, the fd stays', () => {
    const { state, decided } = followed(op.unbindDriver(NIC, 'vfio-pci'), { ok: true }, topology({ drivers: vfio(NIC) }), op.open(NIC, 'n0'));
    expect(decided).toMatchObject({ ok: false, blocks: expect.any(String) });
    expect(state.devices.get(NIC)?.driver).toBeNull();
    expect(state.fds.has('n0')).toBe(true);
  });

  it('issue 16 plan: a recorded SET_CONTAINER and SET_IOMMU of a group with an RMRR device (the kernel: -EINVAL both, S33) are followed: the container owns the group and its backend moves the group to its domain', () => {
    const rmrr: (Observation | Operation)[] = [topology({ drivers: vfio(RMRR_USB) }), { kind: 'openContainer', container: 'c1' }, { kind: 'openGroup', group: 15, groupFd: 'g15' }];
    const setContainer: Operation = { kind: 'setContainer', group: 15, groupFd: 'g15', container: 'c1', containerKind: 'legacy' };
    const setIommu: Operation = { kind: 'setIommu', container: 'c1', iommuType: 'type1v2' };
    const contained = followed(setContainer, { ok: true }, ...rmrr);
    expect(contained.decided).toMatchObject({ ok: false, errno: 'EINVAL' });
    const { state } = contained;
    expect(upstreamDecider.decide(setIommu, state)).toMatchObject({ outcome: { ok: false, errno: 'EINVAL' }, rule: 'upstream.container.require-direct' });
    for (const e of toRecordedEvents(setIommu, { ok: true })) upstreamDecider.evolve(state, e);
    expect(state.containers.get('c1')).toMatchObject({ iommuType: 'type1v2', open: true });
    expect(state.groups.get(15)?.owner).toEqual({ kind: 'container', container: 'c1' });
    expect(state.devices.get(RMRR_USB)?.domain).toEqual({ kind: 'container', container: 'c1' });
  });

  it('issue 16 plan: a recorded second close of a container (the kernel: -EBADF) is followed: a container no group holds goes', () => {
    const closed = [...legacyNic, op.close(NIC, 'd0'), { kind: 'closeContainer', container: 'c1' } as Operation];
    const before = foldBothWays(...closed);
    expect(before.recorded.containers.get('c1')).toMatchObject({ open: false, iommuType: 'type1v2' });
    expect(before.recorded).toEqual(before.decided);
    const { state, decided } = followed({ kind: 'closeContainer', container: 'c1' }, { ok: true }, ...closed, { kind: 'unsetContainer', group: 12, groupFd: 'g12' });
    expect(decided).toMatchObject({ ok: false, errno: 'EBADF' });
    expect(state.containers.has('c1')).toBe(false);
  });

  it('issue 16 plan: a legacy history (container, group, backend, device fd, status, close, unbind) evolves as recorded to the state deciding it reaches', () => {
    const both = foldBothWays(
      ...legacyNic,
      { kind: 'groupStatus', group: 12, groupFd: 'g12' },
      op.close(NIC, 'd0'),
      { kind: 'unsetContainer', group: 12, groupFd: 'g12' },
      { kind: 'closeContainer', container: 'c1' },
      { kind: 'closeGroup', group: 12, groupFd: 'g12' },
      op.unbindDriver(NIC),
      op.bindDriver(NIC, 'e1000e'),
      op.unbindDriver(NIC),
    );
    expect(both.recorded.devices.get(NIC)?.driver).toBeNull();
    expect(both.recorded.containers.size).toBe(0);
    expect(both.recorded).toEqual(both.decided);
  });
});

describe('upstream decider > issue 16 plan: the IOAS mappings and the 6.7+ objects as check and plan', () => {
  const map = (iova: bigint, length: bigint, kind: 'mapIoas' | 'unmapIoas' = 'mapIoas'): Operation => ({ kind, ictx: 'fdA', ioasId: 2, iova, length });
  const mapFile = (iova: bigint): Operation => ({ kind: 'mapFile', ictx: 'fdA', ioasId: 2, iova, length: 0x1000n, fd: 'm0', start: '0x0' });
  const ioas = (state: ModelState) => state.ictxs.get('fdA')?.objects.get(2);
  const nicIoas = (release = '6.13.0'): (Observation | Operation)[] => [onRelease(release, { drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0'), op.ioas()];

  it('issue 16 plan: maps, a crossing UNMAP (-ENOENT part-way), an UNMAP and a MAP_FILE evolve as recorded to the state deciding them reaches, the IOAS counting its mappings', () => {
    const both = foldBothWays(
      ...nicIoas(),
      map(0x100000n, 0x1000n),
      map(0x101000n, 0x1000n),
      map(0x200000n, 0x1000n),
      map(0x100000n, 0x1800n, 'unmapIoas'),
      map(0x200000n, 0x1000n, 'unmapIoas'),
      mapFile(0x300000n),
      { kind: 'getPa', ictx: 'fdA', ioasId: 2, iova: 0x300000n, length: 0x1000n },
      { kind: 'changeProcess', ictx: 'fdA' },
    );
    expect(ioas(both.recorded)).toEqual({ kind: 'ioas', compat: false, areas: [[0x101000n, 0x101fffn], [0x300000n, 0x300fffn]], fileAreas: [String(0x300000n)], mappings: 2 });
    expect(both.recorded).toEqual(both.decided);
  });

  it('issue 16 plan: a recorded MAP over a mapped range (the kernel: -EEXIST) is followed: both areas, two mappings', () => {
    const { state, decided } = followed(map(0x100000n, 0x2000n), { ok: true, iova: '0x0000000000100000' }, ...nicIoas(), map(0x101000n, 0x1000n));
    expect(decided).toMatchObject({ ok: false, errno: 'EEXIST' });
    expect(ioas(state)).toMatchObject({ areas: [[0x100000n, 0x101fffn], [0x101000n, 0x101fffn]], mappings: 2 });
  });

  it('issue 16 plan: a recorded UNMAP across an area edge (the kernel: -ENOENT after the areas before it) is followed: every area inside the range goes, one mapping less', () => {
    const history = [...nicIoas(), map(0x100000n, 0x1000n), map(0x101000n, 0x2000n), map(0x104000n, 0x1000n)];
    const { state, decided } = followed(map(0x100000n, 0x2000n, 'unmapIoas'), { ok: true, length: '0x0000000000001000' }, ...history);
    expect(decided).toMatchObject({ ok: false, errno: 'ENOENT' });
    expect(ioas(state)).toMatchObject({ areas: [[0x101000n, 0x102fffn], [0x104000n, 0x104fffn]], mappings: 2 });
  });

  it('issue 16 plan: a recorded SET_DIRTY_TRACKING on a hwpt allocated without DIRTY_TRACKING (the kernel: -EOPNOTSUPP) is followed', () => {
    const history = [...nicIoas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 0 } as Operation];
    const set: Operation = { kind: 'setDirtyTracking', ictx: 'fdA', hwptId: 3, enable: true };
    const { state, decided } = followed(set, { ok: true }, ...history);
    expect(decided).toMatchObject({ ok: false, errno: 'EOPNOTSUPP' });
    expect(state.ictxs.get('fdA')?.objects.get(3)).toMatchObject({ kind: 'hwpt', dirtyTracking: true });
    const dirty = foldBothWays(...nicIoas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 0x2 }, set);
    expect(dirty.recorded).toEqual(dirty.decided);
  });

  it('issue 16 plan: recorded vIOMMU, vDEVICE, vEVENTQ, HW queue and fault queue allocs the kernel refuses are followed, at the recorded ids', () => {
    const viommu = followed({ kind: 'allocViommu', ictx: 'fdA', devId: 1, hwptId: 3, viommuType: 'arm-smmuv3', flags: 0 }, { ok: true, viommuId: 7 }, ...nicIoas(), {
      kind: 'allocHwpt',
      ictx: 'fdA',
      devId: 1,
      ptId: 2,
      flags: 0,
    });
    expect(viommu.decided).toMatchObject({ ok: false });
    expect(viommu.state.ictxs.get('fdA')?.objects.get(7)).toEqual({ kind: 'viommu', hwpt: 3, viommuType: 'arm-smmuv3' });
    const vdev: Operation = { kind: 'allocVdevice', ictx: 'fdA', viommuId: 4, devId: 1, virtId: '0x1' };
    const twice = followed({ ...vdev, virtId: '0x2' } as Operation, { ok: true, vdeviceId: 6 }, ...withViommu('6.17.0'), vdev);
    expect(twice.decided).toMatchObject({ ok: false, errno: 'EEXIST' });
    expect(twice.state.ictxs.get('fdA')?.objects.get(6)).toEqual({ kind: 'vdevice', viommu: 4, devId: 1, virtId: '0x2' });
    const queue = followed(veventq(4, { veventqFd: 'q1' }), { ok: true, veventqId: 6, veventqFd: 'q1' }, ...withViommu('6.15.0'), veventq());
    expect(queue.decided).toMatchObject({ ok: false, errno: 'EEXIST' });
    expect(queue.state.ictxs.get('fdA')?.objects.get(6)).toMatchObject({ kind: 'veventq', fd: 'q1', fdOpen: true });
    const hw: Operation = { kind: 'allocHwQueue', ictx: 'fdA', viommuId: 4, hwQueueType: 'tegra241-cmdqv', index: 0, iova: 0x1000n, length: 0x1000n, flags: 0 };
    const hwq = followed(hw, { ok: true, hwQueueId: 5 }, ...withViommu('6.17.0'));
    expect(hwq.decided).toMatchObject({ ok: false, errno: 'EOPNOTSUPP' });
    expect(hwq.state.ictxs.get('fdA')?.objects.get(5)).toEqual({ kind: 'hwQueue', viommu: 4, hwQueueType: 'tegra241-cmdqv', index: 0 });
    const fault = followed({ kind: 'allocFaultQueue', ictx: 'fdA', flags: 1, faultFd: 'f0' }, { ok: true, faultId: 3, faultFd: 'f0' }, ...nicIoas('6.12.0'));
    expect(fault.decided).toMatchObject({ ok: false, errno: 'EOPNOTSUPP' });
    expect(fault.state.ictxs.get('fdA')?.objects.get(3)).toEqual({ kind: 'fault', fd: 'f0', fdOpen: true });
  });

  it('issue 16 plan: a fault queue, a vIOMMU with its vDEVICE, vEVENTQ and HW queue, and the closes of their fds evolve as recorded to the state deciding them reaches', () => {
    const history: (Observation | Operation)[] = [
      ...withViommu('6.17.0', 'tegra241-cmdqv'),
      { kind: 'allocVdevice', ictx: 'fdA', viommuId: 4, devId: 1, virtId: '0x1' },
      veventq(4, { veventqType: 'tegra241-cmdqv' }),
      { kind: 'allocHwQueue', ictx: 'fdA', viommuId: 4, hwQueueType: 'tegra241-cmdqv', index: 0, iova: 0x1000n, length: 0x1000n, flags: 0 },
      { kind: 'allocFaultQueue', ictx: 'fdA', flags: 0, faultFd: 'f0' },
      { kind: 'getHwInfo', ictx: 'fdA', devId: 1 },
      { kind: 'closeIommufd', ictx: 'fdA' },
      closeQ(),
      op.close(NIC, 'n0'),
    ];
    const both = foldBothWays(...history);
    expect(both.recorded.ictxs.get('fdA')).toMatchObject({ open: false });
    expect(both.recorded).toEqual(both.decided);
    const closed = foldBothWays(...history, { kind: 'closeEventFd', ictx: 'fdA', fd: 'f0', fdKind: 'fault' });
    expect(closed.recorded.ictxs.has('fdA')).toBe(false);
    expect(closed.recorded).toEqual(closed.decided);
  });
});
