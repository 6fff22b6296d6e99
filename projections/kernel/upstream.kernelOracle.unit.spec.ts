import { describe, expect, it } from 'vitest';
import { DeciderSpecification } from '../../replay/testing/deciderSpecification.js';
import { AUDIO, GPU, NIC, op, topology } from '../../replay/testing/fixtures.js';
import type { Operation } from './types.js';
import { upstreamDecider } from './upstream.decider.js';

// what the real 6.12 kernel answered under QEMU (services/kernelOracle) where the model said otherwise
const spec = DeciderSpecification.for(upstreamDecider);
const vfio = (...d: string[]) => Object.fromEntries(d.map((x) => [x, 'vfio-pci']));
const nicBound = [topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0')];
const map = (ioasId: number, iova: bigint, length: bigint): Operation => ({ kind: 'mapIoas', ictx: 'fdA', ioasId, iova, length });
const unmap = (ioasId: number, iova: bigint, length: bigint): Operation => ({ kind: 'unmapIoas', ictx: 'fdA', ioasId, iova, length });
const hwpt = (devId: number, ptId: number): Operation => ({ kind: 'allocHwpt', ictx: 'fdA', devId, ptId, flags: 0 });

describe('upstream decider > what the kernel oracle proved', () => {
  it('kernel oracle #1: a kernel driver into a user-owned group is -EINVAL through drivers_probe (drivers_probe_store), -EBUSY through drivers/X/bind', () => {
    const owned = [topology({ drivers: vfio(GPU) }), op.unbindDriver(AUDIO), op.openIommufd(), op.open(GPU, 'g0'), op.bind(GPU, 'g0')];
    spec.given(...owned).when({ kind: 'bindDriver', device: AUDIO, driver: 'snd_hda_intel', via: 'drivers_probe' }).thenFails('EINVAL', 'upstream.probe.drivers-probe-einval');
    spec.given(...owned).when(op.bindDriver(AUDIO, 'snd_hda_intel')).thenFails('EBUSY', 'upstream.probe.use-default-domain');
  });

  it('kernel oracle #2: VFIO_DEVICE_BIND_IOMMUFD argument errors come first (-EINVAL), then a closed fd is -EBADF and /dev/null -EBADFD', () => {
    const bind = (extra: Partial<Extract<Operation, { kind: 'bindIommufd' }>>): Operation => ({ kind: 'bindIommufd', device: NIC, deviceFd: 'n0', ictx: 'fdA', ...extra });
    const opened = [topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0')];
    spec.given(...opened).when(bind({ args: { flags: 1 } })).thenFails('EINVAL', 'upstream.bind.args');
    spec.given(...opened).when(bind({ args: { argsz: 8 } })).thenFails('EINVAL', 'upstream.bind.args');
    spec.given(...opened).when(bind({ ictx: 'fd-negative', badFd: 'negative' })).thenFails('EINVAL', 'upstream.bind.args');
    spec.given(...opened).when(bind({ ictx: 'fd-closed', badFd: 'closed' })).thenFails('EBADF', 'upstream.bind.closed-fd');
    spec.given(...opened).when(bind({ ictx: 'dev-null', badFd: 'not-iommufd' })).thenFails('EBADFD', 'upstream.bind.not-iommufd');
  });

  it('kernel oracle #3: ATTACH and DETACH with flags or a short argsz are -EINVAL (vfio_df_ioctl_attach_pt / _detach_pt)', () => {
    spec.given(...nicBound, op.ioas()).when({ kind: 'attachPt', device: NIC, deviceFd: 'n0', ptId: 2, args: { flags: 1 } }).thenFails('EINVAL', 'upstream.attach.args');
    spec.given(...nicBound, op.ioas()).when({ kind: 'detachPt', device: NIC, deviceFd: 'n0', args: { argsz: 4 } }).thenFails('EINVAL', 'upstream.detach.args');
  });

  it('kernel oracle #4: IOMMU_HWPT_ALLOC with a non-device dev_id is -ENOENT and with a missing pt_id -EINVAL (iommufd_hwpt_alloc)', () => {
    spec.given(...nicBound, op.ioas()).when(hwpt(2, 2)).thenFails('ENOENT', 'upstream.hwpt-alloc.dev-enoent');
    spec.given(...nicBound, op.ioas()).when(hwpt(1, 99)).thenFails('EINVAL', 'upstream.hwpt-alloc.pt-einval');
  });

  it('kernel oracle #5: IOAS_MAP over a mapped range is -EEXIST, of length 0 -EINVAL, on a hwpt id -ENOENT (iopt_check_iova, iommufd_get_ioas)', () => {
    const mapped = [...nicBound, op.ioas(), map(2, 0x100000n, 0x2000n)];
    spec.given(...mapped).when(map(2, 0x101000n, 0x2000n)).thenFails('EEXIST', 'upstream.map.eexist');
    spec.given(...mapped).when(map(2, 0x200000n, 0n)).thenFails('EINVAL', 'upstream.map.einval');
    spec.given(...mapped, op.attach(NIC, 'n0', 2)).when(map(3, 0x600000n, 0x1000n)).thenFails('ENOENT', 'upstream.ioas.enoent');
    spec.given(...mapped, op.attach(NIC, 'n0', 2)).when(map(2, 0x500800n, 0x1000n)).thenFails('EINVAL', 'upstream.map.einval');
  });

  it('kernel oracle #6: an UNMAP that crosses an area unmaps the areas before it and fails -ENOENT; unmapping nothing is -ENOENT (iopt_unmap_iova_range)', () => {
    const two = [...nicBound, op.ioas(), map(2, 0x100000n, 0x1000n), map(2, 0x101000n, 0x1000n)];
    // a failure that still changed state: thenFails would (rightly, elsewhere) insist on no change
    const { decision, applied } = spec.given(...two).when(unmap(2, 0x100000n, 0x1800n));
    const { outcome, rule, events } = decision;
    expect({ outcome, rule, events }).toEqual({
      outcome: { ok: false, errno: 'ENOENT' },
      rule: 'upstream.unmap.enoent',
      events: [{ type: 'IommufdIoasUnmapIssued', data: { ictx: 'fdA', ioasId: 2, iova: '0x0000000000100000', length: '0x0000000000001800', outcome: { ok: false, errno: 'ENOENT' } } }],
    });
    const ioas = applied().ictxs.get('fdA')!.objects;
    expect([...ioas.entries()].filter(([, o]) => o.kind === 'ioas')).toEqual([[2, { kind: 'ioas', compat: false, areas: [[0x101000n, 0x101fffn]], mappings: 2 }]]);
    spec.given(...two, unmap(2, 0x100000n, 0x1800n)).when(unmap(2, 0x100000n, 0x2000n)).thenSucceeds({ length: '0x0000000000001000' }, 'upstream.unmap.ok');
    spec.given(...two).when(unmap(2, 0x800000n, 0x1000n)).thenFails('ENOENT', 'upstream.unmap.enoent');
  });

  it('kernel oracle #7: IOMMU_HWPT_ALLOC looks up dev_id and pt_id before it checks the flags (iommufd_hwpt_paging_alloc)', () => {
    spec.given(...nicBound, op.ioas()).when({ kind: 'allocHwpt', ictx: 'fdA', devId: 0, ptId: 2, flags: 0x100 }).thenFails('ENOENT', 'upstream.hwpt-alloc.dev-enoent');
    spec.given(...nicBound, op.ioas()).when({ kind: 'allocHwpt', ictx: 'fdA', devId: 1, ptId: 2, flags: 0x100 }).thenFails('EOPNOTSUPP', 'upstream.hwpt-alloc.flags');
  });

  it('kernel oracle #8: VFIO_SET_IOMMU of a type1 container over a group without isolated MSI is -EPERM (vfio_iommu_type1_attach_group)', () => {
    const topo = topology({ drivers: vfio(NIC) });
    const unsafe = { ...topo, data: { ...topo.data, capabilities: { ...(topo.data as { capabilities: object }).capabilities, interruptRemapping: false } } } as typeof topo;
    const set: Operation[] = [
      { kind: 'openContainer', container: 'c' },
      { kind: 'openGroup', group: 12, groupFd: 'g' },
      { kind: 'setContainer', group: 12, groupFd: 'g', container: 'c', containerKind: 'legacy' },
    ];
    spec.given(unsafe, ...set).when({ kind: 'setIommu', container: 'c', iommuType: 'type1v2' }).thenFails('EPERM', 'upstream.container.unsafe-interrupts');
    spec.given(topo, ...set).when({ kind: 'setIommu', container: 'c', iommuType: 'type1v2' }).thenSucceeds({}, 'upstream.container.set-iommu');
  });

  const onRelease = (kernelRelease: string, drivers: Record<string, string>) => {
    const topo = topology({ drivers });
    const capabilities = { ...(topo.data as { capabilities: object }).capabilities, kernelRelease };
    return { ...topo, data: { ...topo.data, capabilities } } as typeof topo;
  };

  it('kernel oracle #9: a 6.1 kernel (no iommufd, no VFIO cdev) has no /dev/iommu and no /dev/vfio/devices (-ENOENT), and the cdev ioctls on a group device fd are -ENOTTY', () => {
    const v61 = onRelease('6.1.192', vfio(NIC));
    spec.given(v61).when(op.openIommufd()).thenFails('ENOENT', 'release.iommufd.no-node');
    spec.given(v61).when(op.open(NIC, 'n0')).thenFails('ENOENT', 'release.cdev.no-node');
    const legacyFd: Operation[] = [
      { kind: 'openContainer', container: 'c' },
      { kind: 'openGroup', group: 12, groupFd: 'g' },
      { kind: 'setContainer', group: 12, groupFd: 'g', container: 'c', containerKind: 'legacy' },
      { kind: 'setIommu', container: 'c', iommuType: 'type1v2' },
      { kind: 'getDeviceFd', group: 12, groupFd: 'g', device: NIC, newFd: 'ld' },
    ];
    spec.given(v61, ...legacyFd).when(op.bind(NIC, 'ld', 'ctx')).thenFails('ENOTTY', 'release.cdev.ioctl-enotty');
    spec.given(v61, ...legacyFd).when(op.attach(NIC, 'ld', 1)).thenFails('ENOTTY', 'release.cdev.ioctl-enotty');
    // a device fd that never opened is -EBADF before any dispatch, on every release
    spec.given(v61).when(op.bind(NIC, 'n0', 'ctx')).thenFails('EBADF', 'common.fd.ebadf');
  });

  it('kernel oracle #10: the same calls on 6.12, or on a host that does not report its release, are decided as before', () => {
    spec.given(onRelease('6.12.118', vfio(NIC))).when(op.openIommufd()).thenSucceeds({}, 'common.ictx.opened');
    spec.given(topology({ drivers: vfio(NIC) })).when(op.openIommufd()).thenSucceeds({}, 'common.ictx.opened');
    spec.given(onRelease('6.12.118', vfio(NIC))).when(op.open(NIC, 'n0')).thenSucceeds({}, 'upstream.cdev.open');
  });
  // the group node and its container while GET_DEVICE_FD fds are open (deploy/kernel-oracle/scenarios s20-s22)
  const group = (g: number, fd: string): Operation => ({ kind: 'openGroup', group: g, groupFd: fd });
  const closeGroup = (g: number, fd: string): Operation => ({ kind: 'closeGroup', group: g, groupFd: fd });
  const status = (g: number, fd: string): Operation => ({ kind: 'groupStatus', group: g, groupFd: fd });
  const deviceFd = (g: number, fd: string, device: string, newFd: string): Operation => ({ kind: 'getDeviceFd', group: g, groupFd: fd, device, newFd });
  const onIommufd = (g: number, ictx: string): Operation[] => [op.openIommufd(ictx), group(g, 'g'), { kind: 'setContainer', group: g, groupFd: 'g', container: ictx, containerKind: 'iommufd' }];

  it('kernel oracle #11 (issue 16, s20): VFIO_GROUP_UNSET_CONTAINER of an iommufd with a device fd open is 0 (only a legacy container counts its users); the group stays claimed until the fd closes', () => {
    const opened = [topology({ drivers: { [GPU]: 'vfio-pci', [AUDIO]: null } }), ...onIommufd(7, 'ctx'), deviceFd(7, 'g', GPU, 'd1')];
    spec.given(...opened).when({ kind: 'unsetContainer', group: 7, groupFd: 'g' }).thenSucceeds({}, 'upstream.group.unset');
    const unset: Operation = { kind: 'unsetContainer', group: 7, groupFd: 'g' };
    spec.given(...opened, unset).when(op.access(GPU, 'd1')).thenSucceeds({}, 'upstream.cdev.access-granted');
    spec.given(...opened, unset).when(status(7, 'g')).thenSucceeds({ viable: false, containerSet: false }, 'upstream.group.status');
    spec.given(...opened, unset, op.close(GPU, 'd1')).when(status(7, 'g')).thenSucceeds({ viable: true, containerSet: false }, 'upstream.group.status');
  });

  it('kernel oracle #12 (issue 16, s21): with an iommufd as container a device fd holds no reference on the group file: the node is released at its close and opens again; the sibling\'s bind into another ctx is -EPERM until the fd closes', () => {
    const held = [topology({ drivers: vfio(GPU, AUDIO) }), op.openIommufd('ctx2'), ...onIommufd(7, 'ctx'), deviceFd(7, 'g', GPU, 'd1'), closeGroup(7, 'g')];
    spec.given(...held).when(group(7, 'g2')).thenSucceeds({}, 'upstream.group.opened');
    const sibling = [...held, group(7, 'g2'), closeGroup(7, 'g2'), op.open(AUDIO, 'c')];
    spec.given(...sibling).when(op.bind(AUDIO, 'c', 'ctx2')).thenFails('EPERM', 'upstream.claim.owned');
    spec.given(...sibling, op.close(GPU, 'd1')).when(op.bind(AUDIO, 'c', 'ctx2')).thenSucceeds({ devId: 1 }, 'upstream.claim.take');
  });

  it('kernel oracle #13 (issue 16, s22): a type1 container\'s device fds hold the group file: the node stays busy until the last of them closes, then it is released (the container detached) and opens again', () => {
    const fds: Operation[] = [
      topology({ drivers: vfio(NIC) }) as never,
      { kind: 'openContainer', container: 'k' },
      group(12, 'g'),
      { kind: 'setContainer', group: 12, groupFd: 'g', container: 'k', containerKind: 'legacy' },
      { kind: 'setIommu', container: 'k', iommuType: 'type1v2' },
      deviceFd(12, 'g', NIC, 'd1'),
      deviceFd(12, 'g', NIC, 'd2'),
      closeGroup(12, 'g'),
    ];
    spec.given(...fds).when(group(12, 'g2')).thenFails('EBUSY', 'upstream.group.already-open');
    spec.given(...fds, op.close(NIC, 'd1')).when(group(12, 'g3')).thenFails('EBUSY', 'upstream.group.already-open');
    spec.given(...fds, op.close(NIC, 'd1'), op.close(NIC, 'd2')).when(group(12, 'g4')).thenSucceeds({}, 'upstream.group.opened');
    const state = spec.given(...fds, op.close(NIC, 'd1'), op.close(NIC, 'd2'), group(12, 'g4')).when(status(12, 'g4')).thenSucceeds({ viable: true, containerSet: false }, 'upstream.group.status');
    expect(state.groups.get(12)).toMatchObject({ container: null, owner: null, ownerCnt: 0, groupFd: 'g4' });
    expect(state.devices.get(NIC)?.domain).toEqual({ kind: 'default' });
  });
});
