import { describe, expect, it } from 'vitest';
import { isObservation, toOperation, type OperationEvent } from '../../projections/kernel/operations.js';
import { CORPUS } from '../testing/scenarios.js';
import { DeciderSpecification, type GivenStep } from '../testing/deciderSpecification.js';
import { AUDIO, DEV_A, DEV_B, GPU, NIC, RMRR_USB, op, topology } from '../testing/fixtures.js';
import { exploreRules } from '../testing/ruleExplorer.js';
import { VARIANTS } from '../variants.js';
import { isOperationEvent } from '../historyCheck.js';
import { evolveWithDecision } from '../../projections/kernel/decider.js';
import { ALL_RULES, type RuleEntry, type RuleId } from '../../projections/kernel/rules.js';

const ENTRIES: readonly (readonly [string, RuleEntry])[] = Object.entries(ALL_RULES);
import type { Observation, Operation, ProtocolDecider, VariantName } from '../../projections/kernel/types.js';

const vfio = (...d: string[]) => Object.fromEntries(d.map((x) => [x, 'vfio-pci']));
type Snapshot = Extract<Observation, { type: 'TopologySnapshotTaken' }>;
const snapshot = (o: Observation) => o as Snapshot;
/** the reference topology with `device` outside any iommu group */
const withoutGroup = (device: string, drivers: Record<string, string>): Observation => {
  const t = snapshot(topology({ drivers }));
  return {
    ...t,
    data: { ...t.data, groups: t.data.groups.map((g) => ({ ...g, devices: g.devices.filter((d) => d !== device) })), devices: t.data.devices.map((d) => (d.device === device ? { ...d, group: undefined } : d)) },
  } as Observation;
};
const withoutInterruptRemapping = (o: Observation): Observation => ({ ...snapshot(o), data: { ...snapshot(o).data, capabilities: { ...snapshot(o).data.capabilities, interruptRemapping: false } } }) as Observation;
/** the snapshot of a host that reports this kernel release (releases.ts judges it as that release) */
const onRelease = (o: Observation, kernelRelease: string): Observation => ({ ...snapshot(o), data: { ...snapshot(o).data, capabilities: { ...snapshot(o).data.capabilities, kernelRelease } } }) as Observation;
const hotAdded = (device: string, group: number) => ({ type: 'DeviceAddedToGroup', data: { device, group } }) as Observation;

// reusable histories
const nicBound: GivenStep[] = [topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0')];
const gpuAudioBound: GivenStep[] = [topology({ drivers: vfio(GPU, AUDIO) }), op.openIommufd('fdA'), op.openIommufd('fdB'), op.open(GPU, 'g0'), op.bind(GPU, 'g0', 'fdA'), op.open(AUDIO, 'a0')];
const bothBound: GivenStep[] = [...gpuAudioBound, op.bind(AUDIO, 'a0', 'fdA'), op.ioas('fdA')];
/** a legacy group-path fd `lg` on GPU (group 7 in container c0), group fd `grp` still open */
const groupPathFd = (drivers = vfio(GPU, AUDIO), group = 7, device = GPU): GivenStep[] => [
  topology({ drivers }),
  { kind: 'openContainer', container: 'c0' },
  { kind: 'openGroup', group, groupFd: 'grp' },
  { kind: 'setContainer', group, groupFd: 'grp', container: 'c0', containerKind: 'legacy' },
  { kind: 'setIommu', container: 'c0', iommuType: 'type1v2' },
  { kind: 'getDeviceFd', group, groupFd: 'grp', device, newFd: 'lg' },
  op.openIommufd(),
];
const pasidTopology = onRelease(topology({ drivers: vfio(GPU, AUDIO), devices: { [GPU]: { maxPasids: 4, pasidAttach: true }, [AUDIO]: { maxPasids: 4, pasidAttach: true } } }), '6.15.0');
const pasidBound: GivenStep[] = [pasidTopology, op.openIommufd(), op.open(GPU, 'g0'), op.bind(GPU, 'g0'), op.ioas()];

interface RuleCase {
  readonly variant: VariantName;
  readonly given: readonly GivenStep[];
  readonly when: Operation;
}

/** issue 19 (projections/kernel/ops/): a bound NIC with a nesting parent (3) and a vIOMMU (4) of `viommuType` on `release` */
const withViommu = (release: string, viommuType = 'arm-smmuv3'): GivenStep[] => [
  onRelease(topology({ drivers: vfio(NIC) }), release),
  ...nicBound.slice(1),
  op.ioas(),
  { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 1 },
  { kind: 'allocViommu', ictx: 'fdA', devId: 1, hwptId: 3, viommuType, flags: 0 },
];
const veventq = (o: Partial<Extract<Operation, { kind: 'allocVeventq' }>> = {}): Operation => ({ kind: 'allocVeventq', ictx: 'fdA', viommuId: 4, veventqType: 'arm-smmuv3', depth: 8, flags: 0, veventqFd: 'q0', ...o });
const hwQueue = (o: Partial<Extract<Operation, { kind: 'allocHwQueue' }>> = {}): Operation => ({ kind: 'allocHwQueue', ictx: 'fdA', viommuId: 4, hwQueueType: 'tegra241-cmdqv', index: 0, iova: 0x1000n, length: 0x1000n, flags: 0, ...o });
/** NIC a VF of DEV_A (a PF of 8 VFs driven by `pfDriver`), on 6.17 */
const sriov = (pfDriver: string, nic: object = { physfn: DEV_A }): GivenStep[] => {
  const t = snapshot(onRelease(topology({ drivers: { ...vfio(NIC), [DEV_A]: pfDriver, [DEV_B]: null } }), '6.17.0'));
  const devices = t.data.devices.map((d) => (d.device === NIC ? { ...d, ...nic } : d.device === DEV_A ? { ...d, sriovTotalVfs: 8 } : d));
  return [{ ...t, data: { ...t.data, devices } } as Observation, op.openIommufd(), op.open(NIC, 'n0')];
};
const bindVf = (vfToken?: boolean): Operation => ({ kind: 'bindIommufd', device: NIC, deviceFd: 'n0', ictx: 'fdA', ...(vfToken === undefined ? {} : { vfToken }) });
const resetFence = (device: string): Observation => ({ type: 'TraceDeviceResetFence', data: { device, phase: 'prepare' } }) as Observation;
const noDefaultDomain = (): Observation => {
  const t = snapshot(onRelease(topology({ drivers: { [NIC]: null } }), '6.15.0'));
  return { ...t, data: { ...t.data, groups: t.data.groups.map((g) => (g.group === 12 ? { ...g, defaultDomainType: 'unknown' } : g)) } } as Observation;
};
const noiommuNic = (release: string): Observation => {
  const t = snapshot(onRelease(topology({ drivers: vfio(NIC) }), release));
  return { ...t, data: { ...t.data, groups: t.data.groups.filter((g) => g.group !== 12), devices: t.data.devices.map((d) => (d.device === NIC ? { ...d, group: null } : d)) } } as Observation;
};
const openNoiommu: Operation = { kind: 'openDevice', device: NIC, deviceFd: 'n0', cdev: 'noiommu-vfio0' };

/**
 * One operation sequence per rule the random walks below do not reach, and one per documented choice
 * (each choice is exercised here, on the variant that makes it).
 */
const CASES: Partial<Record<RuleId, RuleCase>> = {
  // ---- the seed's choices ----
  'seed.notifier.bug-on': { variant: 'stage2', given: [topology({ drivers: { [GPU]: 'vfio-pci', [AUDIO]: null } }), op.openIommufd(), op.open(GPU, 'g0'), op.bind(GPU, 'g0')], when: op.bindDriver(AUDIO, 'snd_hda_intel') },
  'stage1.cdev.singleton-only': { variant: 'stage1', given: [topology({ drivers: vfio(GPU, AUDIO) })], when: op.open(GPU, 'g0') },
  'seed.access-before-bind': { variant: 'stage1', given: [topology({ drivers: vfio(NIC) }), op.open(NIC, 'n0')], when: op.access(NIC, 'n0') },
  'seed.bind.group-fd': { variant: 'stage2', given: groupPathFd(), when: op.bind(GPU, 'lg') },
  'seed.bind.group-node-open': { variant: 'stage2', given: [topology({ drivers: vfio(GPU, AUDIO) }), op.openIommufd(), op.open(GPU, 'g0'), { kind: 'openGroup', group: 7, groupFd: 'grp' }], when: op.bind(GPU, 'g0') },
  'seed.bind.already-bound': { variant: 'stage1', given: nicBound, when: op.bind(NIC, 'n0') },
  'seed.bind.device-open': { variant: 'stage1', given: [...nicBound, op.open(NIC, 'n1')], when: op.bind(NIC, 'n1') },
  'stage1.bind.not-singleton': { variant: 'stage1', given: [topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'), hotAdded('0000:05:00.1', 12)], when: op.bind(NIC, 'n0') },
  'seed.bind.no-group': { variant: 'stage1', given: [withoutGroup(NIC, vfio(NIC)), op.openIommufd(), op.open(NIC, 'n0')], when: op.bind(NIC, 'n0') },
  'seed.bind.unsafe-interrupts': { variant: 'stage1', given: [withoutInterruptRemapping(topology({ drivers: vfio(NIC) })), op.openIommufd(), op.open(NIC, 'n0')], when: op.bind(NIC, 'n0') },
  'seed.bind.other-iommufd': { variant: 'stage2', given: gpuAudioBound, when: op.bind(AUDIO, 'a0', 'fdB') },
  'seed.bind.not-viable': { variant: 'stage2', given: [topology({ drivers: vfio(GPU) }), op.openIommufd(), op.open(GPU, 'g0')], when: op.bind(GPU, 'g0') },
  'seed.attach.group-fd': { variant: 'stage2', given: groupPathFd(), when: op.attach(GPU, 'lg', 1) },
  'seed.attach.before-bind': { variant: 'stage1', given: [topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'), op.ioas()], when: op.attach(NIC, 'n0', 1) },
  'seed.attach.no-pasid': { variant: 'stage1', given: [...nicBound, op.ioas()], when: op.attach(NIC, 'n0', 2, 1) },
  'seed.attach.enoent': { variant: 'stage1', given: nicBound, when: op.attach(NIC, 'n0', 9) },
  'seed.attach.not-ioasid': { variant: 'stage1', given: nicBound, when: op.attach(NIC, 'n0', 1) },
  'seed.attach.already-attached': { variant: 'stage1', given: [...nicBound, op.ioas(), op.attach(NIC, 'n0', 2), op.ioas()], when: op.attach(NIC, 'n0', 4) },
  'stage2.attach.single-ioasid': { variant: 'stage2', given: [...bothBound, op.attach(GPU, 'g0', 3), op.ioas('fdA')], when: op.attach(AUDIO, 'a0', 5) },
  'stage3.attach.single-ioasid-per-subgroup': {
    variant: 'stage3',
    given: [topology({ drivers: vfio(GPU, AUDIO), subGroups: { 7: [[GPU, AUDIO]] } }), ...bothBound.slice(1), op.attach(GPU, 'g0', 3), op.ioas('fdA')],
    when: op.attach(AUDIO, 'a0', 5),
  },
  'seed.detach.not-attached': { variant: 'stage1', given: nicBound, when: op.detach(NIC, 'n0') },
  'seed.ictx.close-teardown': { variant: 'stage1', given: nicBound, when: { kind: 'closeIommufd', ictx: 'fdA' } },
  'seed.no-hwpt-alloc': { variant: 'stage1', given: [...nicBound, op.ioas()], when: { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 0 } },
  'seed.no-nesting-ioctl': { variant: 'stage2', given: [...nicBound, op.ioas()], when: { kind: 'allocViommu', ictx: 'fdA', devId: 1, hwptId: 2, viommuType: 'arm-smmuv3', flags: 0 } },
  'seed.destroy.busy': { variant: 'stage1', given: nicBound, when: op.destroy(1) },
  'seed.group.cdev-bound': { variant: 'stage1', given: nicBound, when: { kind: 'openGroup', group: 12, groupFd: 'grp' } },
  // ---- seed paths the walks rarely take ----
  'seed.attach.join': { variant: 'stage2', given: [...bothBound, op.attach(GPU, 'g0', 3)], when: op.attach(AUDIO, 'a0', 3) },
  'seed.detach.non-last': { variant: 'stage2', given: [...bothBound, op.attach(GPU, 'g0', 3), op.attach(AUDIO, 'a0', 3)], when: op.detach(GPU, 'g0') },
  'seed.detach.last': { variant: 'stage1', given: [...nicBound, op.ioas(), op.attach(NIC, 'n0', 2)], when: op.detach(NIC, 'n0') },
  'seed.attach.first': { variant: 'stage1', given: [...nicBound, op.ioas()], when: op.attach(NIC, 'n0', 2) },
  'seed.close.unbind': { variant: 'stage2', given: bothBound, when: op.close(GPU, 'g0') },
  'seed.close.last-unbind': { variant: 'stage1', given: nicBound, when: op.close(NIC, 'n0') },
  'seed.bind.same-iommufd': { variant: 'stage2', given: gpuAudioBound, when: op.bind(AUDIO, 'a0', 'fdA') },
  'seed.bind.rmrr': { variant: 'stage1', given: [topology({ drivers: vfio(RMRR_USB) }), op.openIommufd(), op.open(RMRR_USB, 'u0')], when: op.bind(RMRR_USB, 'u0') },
  // ---- legacy ----
  'legacy.group.not-a-container': {
    variant: 'stage2',
    given: [topology({ drivers: vfio(NIC) }), { kind: 'openGroup', group: 12, groupFd: 'grp' }, op.openIommufd()],
    when: { kind: 'setContainer', group: 12, groupFd: 'grp', container: 'fdA', containerKind: 'legacy' },
  },
  // ---- releases that lack a feature (releases.ts; the kernel oracle ran 6.1) ----
  'release.iommufd.no-node': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.1.0')], when: op.openIommufd() },
  'release.cdev.no-node': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.1.0')], when: op.open(NIC, 'n0') },
  'release.cdev.ioctl-enotty': {
    variant: 'upstream',
    given: [onRelease(topology({ drivers: vfio(GPU, AUDIO) }), '6.1.0'), ...groupPathFd().slice(1, -1)],
    when: op.bind(GPU, 'lg'),
  },
  'release.hwpt-alloc.enotty': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.4.0'), op.openIommufd()], when: { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 0 } },
  // ---- upstream paths the walks rarely take ----
  'upstream.claim.domain-busy': { variant: 'upstream', given: [...pasidBound, op.attach(GPU, 'g0', 2, 1), op.close(GPU, 'g0'), op.open(GPU, 'g1')], when: op.bind(GPU, 'g1') },
  'upstream.attach.args': { variant: 'upstream', given: [...nicBound, op.ioas()], when: { kind: 'attachPt', device: NIC, deviceFd: 'n0', ptId: 2, args: { flags: 1 } } },
  'upstream.attach.group-on-other-hwpt': { variant: 'upstream', given: [...bothBound, op.attach(GPU, 'g0', 3), op.ioas('fdA')], when: op.attach(AUDIO, 'a0', 5) },
  'upstream.attach.join': { variant: 'upstream', given: [...bothBound, op.attach(GPU, 'g0', 3)], when: op.attach(AUDIO, 'a0', 3) },
  'upstream.attach.replace': { variant: 'upstream', given: [...nicBound, op.ioas(), op.attach(NIC, 'n0', 2), op.ioas()], when: op.attach(NIC, 'n0', 4) },
  'upstream.attach.pasid-join': { variant: 'upstream', given: [...pasidBound, op.attach(GPU, 'g0', 2, 1)], when: op.attach(GPU, 'g0', 2, 1) },
  'upstream.attach.pasid-other-hwpt': { variant: 'upstream', given: [...pasidBound, op.attach(GPU, 'g0', 2, 1), op.ioas('fdA')], when: op.attach(GPU, 'g0', 4, 1) },
  // ---- issue 19: per-release answers of the 6.7–7.3 operations (projections/kernel/newops.unit.spec.ts has the cases) ----
  'release.hwpt-alloc.flags-first': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.6.0'), ...nicBound.slice(1), op.ioas()], when: { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 1 } },
  'release.hwpt-alloc.pt-enoent': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.6.0'), ...nicBound.slice(1)], when: { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 9, flags: 0 } },
  'release.pasid.flag-einval': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.12.0'), ...nicBound.slice(1), op.ioas()], when: op.attach(NIC, 'n0', 2, 1) },
  'upstream.hwpt-alloc.nested-eopnotsupp': { variant: 'upstream', given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 1 }], when: { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 3, flags: 0 } },
  'upstream.hwpt-alloc.parent-einval': { variant: 'upstream', given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 0 }], when: { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 3, flags: 0, dataType: 'vtd-s1' } },
  'upstream.hwpt-alloc.nested': { variant: 'upstream', given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 1 }], when: { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 3, flags: 0, dataType: 'vtd-s1' } },
  'release.set-iommu.type1-nesting-enodev': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(GPU, AUDIO) }), '6.13.0'), ...groupPathFd().slice(1, 4)], when: { kind: 'setIommu', container: 'c0', iommuType: 'type1-nesting' } },
  'release.iommufd-cmd.enotty': { variant: 'upstream', given: [...nicBound, op.ioas()], when: { kind: 'allocViommu', ictx: 'fdA', devId: 1, hwptId: 2, viommuType: 'arm-smmuv3', flags: 0 } },
  'upstream.dirty.enoent': { variant: 'upstream', given: [...nicBound, op.ioas()], when: { kind: 'setDirtyTracking', ictx: 'fdA', hwptId: 2, enable: true } },
  'upstream.viommu.eopnotsupp': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.13.0'), ...nicBound.slice(1)], when: { kind: 'allocViommu', ictx: 'fdA', devId: 1, hwptId: 2, viommuType: 'default', flags: 0 } },
  'upstream.viommu.enoent': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.13.0'), ...nicBound.slice(1)], when: { kind: 'allocViommu', ictx: 'fdA', devId: 1, hwptId: 2, viommuType: 'arm-smmuv3', flags: 0 } },
  'upstream.vdevice.enoent': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.13.0'), ...nicBound.slice(1)], when: { kind: 'allocVdevice', ictx: 'fdA', viommuId: 2, devId: 1, virtId: '0x1' } },
  'upstream.map-file.ok': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.13.0'), ...nicBound.slice(1), op.ioas()], when: { kind: 'mapFile', ictx: 'fdA', ioasId: 2, iova: 0x1000n, length: 0x1000n, fd: 'memfd', start: '0x0' } },
  'upstream.change-process.ok': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.13.0'), ...nicBound.slice(1), op.ioas()], when: { kind: 'changeProcess', ictx: 'fdA' } },
  // ---- kernel oracle 6.12 (s15, s16): GET_HW_INFO, HWPT_INVALIDATE, GET_DIRTY_BITMAP, fault queues (projections/kernel/ops/) ----
  'upstream.hw-info.ok': { variant: 'upstream', given: nicBound, when: { kind: 'getHwInfo', ictx: 'fdA', devId: 1 } },
  'upstream.hw-info.enoent': { variant: 'upstream', given: [...nicBound, op.ioas()], when: { kind: 'getHwInfo', ictx: 'fdA', devId: 2 } },
  'upstream.hwpt-alloc.dirty-unsupported': {
    variant: 'upstream',
    given: [{ ...snapshot(topology({ drivers: vfio(NIC) })), data: { ...snapshot(topology({ drivers: vfio(NIC) })).data, devices: snapshot(topology({ drivers: vfio(NIC) })).data.devices.map((d) => (d.device === NIC ? { ...d, hwInfo: { type: 'intel-vtd', capabilities: [] } } : d)) } } as Observation, ...nicBound.slice(1), op.ioas()],
    when: { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 2 },
  },
  'upstream.hwpt-alloc.fault-enoent': { variant: 'upstream', given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 1 }], when: { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 3, flags: 4, dataType: 'vtd-s1', faultId: 2 } },
  'upstream.invalidate.einval': { variant: 'upstream', given: [...nicBound, op.ioas()], when: { kind: 'invalidateHwpt', ictx: 'fdA', hwptId: 2, dataType: 'vtd-s1', entryLen: 0, entryNum: 1 } },
  'upstream.invalidate.enoent': { variant: 'upstream', given: [...nicBound, op.ioas()], when: { kind: 'invalidateHwpt', ictx: 'fdA', hwptId: 2, dataType: 'vtd-s1', entryLen: 24, entryNum: 1 } },
  'upstream.invalidate.data-type': {
    variant: 'upstream',
    given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 1 }, { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 3, flags: 0, dataType: 'vtd-s1' }],
    when: { kind: 'invalidateHwpt', ictx: 'fdA', hwptId: 4, dataType: 'viommu-arm-smmuv3', entryLen: 24, entryNum: 1 },
  },
  'upstream.invalidate.ok': {
    variant: 'upstream',
    given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 1 }, { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 3, flags: 0, dataType: 'vtd-s1' }],
    when: { kind: 'invalidateHwpt', ictx: 'fdA', hwptId: 4, dataType: 'vtd-s1', entryLen: 24, entryNum: 1 },
  },
  'upstream.dirty-bitmap.enoent': { variant: 'upstream', given: [...nicBound, op.ioas()], when: { kind: 'getDirtyBitmap', ictx: 'fdA', hwptId: 2, iova: 0x1000n, length: 0x1000n, pageSize: 0x1000n } },
  'upstream.dirty-bitmap.einval': { variant: 'upstream', given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 0 }], when: { kind: 'getDirtyBitmap', ictx: 'fdA', hwptId: 3, iova: 0x1000n, length: 0n, pageSize: 0x1000n } },
  'upstream.dirty-bitmap.eopnotsupp': { variant: 'upstream', given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 0 }], when: { kind: 'getDirtyBitmap', ictx: 'fdA', hwptId: 3, iova: 0x1000n, length: 0x1000n, pageSize: 0x1000n } },
  'upstream.dirty-bitmap.ok': { variant: 'upstream', given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 2 }], when: { kind: 'getDirtyBitmap', ictx: 'fdA', hwptId: 3, iova: 0x1000n, length: 0x1000n, pageSize: 0x1000n } },
  'upstream.fault-queue.eopnotsupp': { variant: 'upstream', given: nicBound, when: { kind: 'allocFaultQueue', ictx: 'fdA', flags: 1, faultFd: 'fq' } },
  'upstream.fault-queue.ok': { variant: 'upstream', given: nicBound, when: { kind: 'allocFaultQueue', ictx: 'fdA', flags: 0, faultFd: 'fq' } },
  'upstream.destroy.fault-busy': { variant: 'upstream', given: [...nicBound, { kind: 'allocFaultQueue', ictx: 'fdA', flags: 0, faultFd: 'fq' }], when: op.destroy(2) },
  'upstream.fault-fd.closed': { variant: 'upstream', given: [...nicBound, { kind: 'allocFaultQueue', ictx: 'fdA', flags: 0, faultFd: 'fq' }], when: { kind: 'closeEventFd', ictx: 'fdA', fd: 'fq', fdKind: 'fault' } },
  'upstream.change-process.non-file': {
    variant: 'upstream',
    given: [onRelease(topology({ drivers: vfio(NIC) }), '6.13.0'), ...nicBound.slice(1), op.ioas(), { kind: 'mapIoas', ictx: 'fdA', ioasId: 2, iova: 0x1000n, length: 0x1000n }],
    when: { kind: 'changeProcess', ictx: 'fdA' },
  },
  'upstream.destroy.hwpt-parent-busy': {
    variant: 'upstream',
    given: [...nicBound, op.ioas(), { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 1 }, { kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 3, flags: 0, dataType: 'vtd-s1' }],
    when: { kind: 'destroy', ictx: 'fdA', objectId: 3 },
  },
  'upstream.detach.non-last': { variant: 'upstream', given: [...bothBound, op.attach(GPU, 'g0', 3), op.attach(AUDIO, 'a0', 3)], when: op.detach(GPU, 'g0') },
  'upstream.detach.pasid': { variant: 'upstream', given: [...pasidBound, op.attach(GPU, 'g0', 2, 1)], when: { kind: 'detachPt', device: GPU, deviceFd: 'g0', pasid: 1 } },
  'upstream.group.device-fd-bind': {
    variant: 'upstream',
    given: [topology({ drivers: vfio(NIC) }), op.openIommufd(), { kind: 'openGroup', group: 12, groupFd: 'grp' }, { kind: 'setContainer', group: 12, groupFd: 'grp', container: 'fdA', containerKind: 'iommufd' }],
    when: { kind: 'getDeviceFd', group: 12, groupFd: 'grp', device: NIC, newFd: 'lg' },
  },
  // the claim at SET_CONTAINER refuses a require_direct group first: only a later snapshot that reports the
  // flag on a group already in the container reaches the type1 check
  // ---- issue 19: projections/kernel/ops/ ----
  'upstream.veventq.ok': { variant: 'upstream', given: withViommu('6.15.0'), when: veventq() },
  'upstream.veventq.eopnotsupp': { variant: 'upstream', given: withViommu('6.15.0'), when: veventq({ veventqType: 'default' }) },
  'upstream.veventq.depth-einval': { variant: 'upstream', given: withViommu('6.15.0'), when: veventq({ depth: 0 }) },
  'upstream.veventq.enoent': { variant: 'upstream', given: withViommu('6.15.0'), when: veventq({ viommuId: 3 }) },
  'upstream.veventq.eexist': { variant: 'upstream', given: [...withViommu('6.15.0'), veventq()], when: veventq({ veventqFd: 'q1' }) },
  'upstream.event-fd.closed': { variant: 'upstream', given: [...withViommu('6.15.0'), veventq()], when: { kind: 'closeEventFd', ictx: 'fdA', fd: 'q0', fdKind: 'veventq' } },
  'upstream.destroy.viommu-queue-busy': { variant: 'upstream', given: [...withViommu('6.15.0'), veventq()], when: op.destroy(4) },
  'upstream.destroy.veventq-fd-busy': { variant: 'upstream', given: [...withViommu('6.15.0'), veventq()], when: op.destroy(5) },
  'upstream.hw-queue.ok': { variant: 'upstream', given: withViommu('6.17.0', 'tegra241-cmdqv'), when: hwQueue() },
  'upstream.hw-queue.eopnotsupp': { variant: 'upstream', given: withViommu('6.17.0'), when: hwQueue() },
  'upstream.hw-queue.length-einval': { variant: 'upstream', given: withViommu('6.17.0', 'tegra241-cmdqv'), when: hwQueue({ length: 0n }) },
  'upstream.hw-queue.eoverflow': { variant: 'upstream', given: withViommu('6.17.0', 'tegra241-cmdqv'), when: hwQueue({ iova: 0xfffffffffffff000n, length: 0x2000n }) },
  'upstream.hw-queue.enoent': { variant: 'upstream', given: withViommu('6.17.0', 'tegra241-cmdqv'), when: hwQueue({ viommuId: 2 }) },
  'upstream.bind.vf-token-required': { variant: 'upstream', given: sriov('vfio-pci'), when: bindVf() },
  'upstream.bind.vf-token-pf-not-vfio': { variant: 'upstream', given: sriov('ixgbe'), when: bindVf(true) },
  'upstream.bind.pf-vf-token-required': {
    variant: 'upstream',
    given: [...sriov('vfio-pci'), bindVf(true), op.open(DEV_A, 'p0')],
    when: { kind: 'bindIommufd', device: DEV_A, deviceFd: 'p0', ictx: 'fdA' },
  },
  'upstream.bind.vf-token-not-sriov': { variant: 'upstream', given: sriov('ixgbe', {}), when: bindVf(true) },
  'release.bind.token-flag-einval': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '6.16.0'), op.openIommufd(), op.open(NIC, 'n0')], when: bindVf(true) },
  'upstream.attach.reset-ebusy': { variant: 'upstream', given: [onRelease(topology({ drivers: vfio(NIC) }), '7.0.0'), ...nicBound.slice(1), op.ioas(), resetFence(NIC)], when: op.attach(NIC, 'n0', 2) },
  'upstream.reset.ok': { variant: 'upstream', given: nicBound, when: { kind: 'resetDevice', device: NIC, deviceFd: 'n0', reset: 'device' } },
  'upstream.probe.no-default-domain': { variant: 'upstream', given: [noDefaultDomain()], when: op.bindDriver(NIC, 'igb') },
  'release.cdev.noiommu-no-node': { variant: 'upstream', given: [noiommuNic('7.2.0'), op.openIommufd()], when: openNoiommu },
  'upstream.bind.noiommu': { variant: 'upstream', given: [noiommuNic('7.3.0'), op.openIommufd(), openNoiommu], when: op.bind(NIC, 'n0') },
  'upstream.attach.noiommu': { variant: 'upstream', given: [noiommuNic('7.3.0'), op.openIommufd(), openNoiommu, op.bind(NIC, 'n0'), op.ioas()], when: op.attach(NIC, 'n0', 2) },
  'upstream.detach.noiommu': { variant: 'upstream', given: [noiommuNic('7.3.0'), op.openIommufd(), openNoiommu, op.bind(NIC, 'n0'), op.ioas(), op.attach(NIC, 'n0', 2)], when: op.detach(NIC, 'n0') },
  'upstream.container.require-direct': {
    variant: 'upstream',
    given: [
      topology({ drivers: vfio(RMRR_USB), devices: { [RMRR_USB]: { requireDirect: false } } }),
      { kind: 'openContainer', container: 'c0' },
      { kind: 'openGroup', group: 15, groupFd: 'grp' },
      { kind: 'setContainer', group: 15, groupFd: 'grp', container: 'c0', containerKind: 'legacy' },
      topology({ drivers: vfio(RMRR_USB) }),
    ],
    when: { kind: 'setIommu', container: 'c0', iommuType: 'type1v2' },
  },
};

const decideCase = (c: RuleCase) => DeciderSpecification.for(VARIANTS[c.variant]).given(...c.given).when(c.when).decision;

/** the rules a variant names on the recorded corpus histories (ids as recorded: only the rule matters here) */
const corpusRules = (decider: ProtocolDecider): Set<string> => {
  const seen = new Set<string>();
  for (const scenario of CORPUS) {
    const states = new Map<string, ReturnType<ProtocolDecider['initialState']>>();
    for (const e of scenario.events) {
      let state = states.get(e.host);
      if (!state) states.set(e.host, (state = decider.initialState()));
      if (state.crashed) continue;
      if (isObservation(e)) decider.evolve(state, e);
      if (!isOperationEvent(e)) continue;
      const decision = decider.decide(toOperation(e as OperationEvent, (_ictx, id) => id, () => undefined), state);
      seen.add(decision.rule);
      evolveWithDecision(decider, state, decision);
    }
  }
  return seen;
};

describe('rules as data (rules.ts)', () => {
  it('every refusal rule names its errno and a kernel (or seed sketch) reference', () => {
    for (const [id, rule] of ENTRIES) {
      if (rule.errno === undefined) continue;
      expect(rule.kernelRef?.at, id).toMatch(/^[\w./-]+(\.c|\.txt):\S/);
      expect(rule.kernelRef?.release, id).toMatch(/\S/);
    }
  });

  it('rules #1: a stage-1 bind of a device without an iommu group names the ENODEV rule (seed.ts refused it with ENODEV under the EINVAL rule stage1.bind.not-singleton)', () => {
    const d = decideCase(CASES['seed.bind.no-group']!);
    expect(d.rule).toBe('seed.bind.no-group');
    expect(d.outcome).toEqual({ ok: false, errno: 'ENODEV' });
    expect(decideCase(CASES['stage1.bind.not-singleton']!).outcome).toEqual({ ok: false, errno: 'EINVAL' });
  });

  it('every documented choice is exercised: a case decides by it, with the errno of its entry', () => {
    const choices = ENTRIES.filter(([, r]) => r.choice);
    expect(choices.length).toBeGreaterThanOrEqual(25);
    for (const [id, rule] of choices) {
      const c = CASES[id as RuleId];
      expect(c, `a case for choice ${id}`).toBeDefined();
      const d = decideCase(c!);
      expect(d.rule, `${id} on ${c!.variant}`).toBe(id);
      if (rule.errno !== undefined) expect(d.outcome, id).toEqual({ ok: false, errno: rule.errno });
    }
  });

  for (const decider of Object.values(VARIANTS)) {
    it(`${decider.variant}: every rule of its table is reached by some operation sequence, and every rule it decides by is in its table with the errno it fails with`, () => {
      const seen = exploreRules(decider, { seed: 16, walks: 600, steps: 120 });
      for (const r of corpusRules(decider)) seen.add(r);
      for (const [id, c] of Object.entries(CASES)) {
        if (c.variant !== decider.variant) continue;
        const d = decideCase(c);
        expect(d.rule, `case ${id}`).toBe(id);
        seen.add(d.rule);
      }
      expect([...seen].filter((id) => !(id in decider.rules))).toEqual([]);
      expect(Object.keys(decider.rules).filter((id) => !seen.has(id))).toEqual([]);
    });
  }
});
