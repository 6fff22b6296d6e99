import { describe, expect, it } from 'vitest';
import { DeciderSpecification } from '../../replay/testing/deciderSpecification.js';
import { AUDIO, DEV_A, DEV_B, DEV_C, GPU, NIC, RMRR_USB, op, topology } from '../../replay/testing/fixtures.js';
import { upstreamDecider } from './upstream.decider.js';

const spec = DeciderSpecification.for(upstreamDecider);
const vfio = (...d: string[]) => Object.fromEntries(d.map((x) => [x, 'vfio-pci']));
const nicBound = [topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0')];

describe('upstream decider > bind (§1.4)', () => {
  it('given a singleton on vfio-pci, when bound, then devId 1 and the group is user-owned on its blocking domain', () => {
    const state = spec.given(topology({ drivers: vfio(NIC) }), op.openIommufd(), op.open(NIC, 'n0')).when(op.bind(NIC, 'n0')).thenSucceeds({ devId: 1 }, 'upstream.claim.take');
    expect(state.groups.get(12)).toMatchObject({ ownerCnt: 1, owner: { kind: 'ictx', ictx: 'fdA' } });
    expect(state.devices.get(NIC)?.domain).toEqual({ kind: 'blocking' });
  });
  it('given the fd is bound, when bound again, then -EINVAL (S3)', () => {
    spec.given(...nicBound).when(op.bind(NIC, 'n0')).thenFails('EINVAL', 'upstream.bind.already-bound');
  });
  it('given a second fd of a bound device, when bound, then -EINVAL (§1.4 #7)', () => {
    spec.given(...nicBound, op.open(NIC, 'n1')).when(op.bind(NIC, 'n1')).thenFails('EINVAL', 'upstream.bind.device-open');
  });
  it('given a kernel DMA-API driver in the group, when bound, then -EPERM (S11, S35)', () => {
    spec.given(topology({ drivers: vfio(GPU) }), op.openIommufd(), op.open(GPU, 'g0')).when(op.bind(GPU, 'g0')).thenFails('EPERM', 'upstream.claim.owned');
  });
  it('given the group is owned by another ctx, when bound, then -EPERM (S13)', () => {
    spec
      .given(topology({ drivers: { ...vfio(GPU, AUDIO) } }), op.openIommufd('fdA'), op.openIommufd('fdB'), op.open(GPU, 'g0'), op.bind(GPU, 'g0', 'fdA'), op.open(AUDIO, 'a0'))
      .when(op.bind(AUDIO, 'a0', 'fdB'))
      .thenFails('EPERM', 'upstream.claim.owned');
  });
  it('given a require_direct device, when bound, then -EINVAL (S33)', () => {
    spec.given(topology({ drivers: vfio(RMRR_USB) }), op.openIommufd(), op.open(RMRR_USB, 'u0')).when(op.bind(RMRR_USB, 'u0')).thenFails('EINVAL', 'upstream.claim.require-direct');
  });
  it('given no interrupt remapping, when bound, then -EPERM', () => {
    const topo = topology({ drivers: vfio(NIC) });
    const unsafe = { ...topo, data: { ...topo.data, capabilities: { ...(topo.data as { capabilities: object }).capabilities, interruptRemapping: false } } } as typeof topo;
    spec.given(unsafe, op.openIommufd(), op.open(NIC, 'n0')).when(op.bind(NIC, 'n0')).thenFails('EPERM', 'upstream.bind.unsafe-interrupts');
  });
  it('given an unbound fd, when the device is accessed, then -EINVAL (S1 step 3)', () => {
    spec.given(topology({ drivers: vfio(NIC) }), op.open(NIC, 'n0')).when(op.access(NIC, 'n0')).thenFails('EINVAL', 'upstream.cdev.access-before-bind');
  });
});

describe('upstream decider > attach, detach, destroy', () => {
  const attached = [...nicBound, op.ioas(), op.attach(NIC, 'n0', 2)];
  it('given an IOAS, when attached, then pt_id is rewritten to the new auto hwpt', () => {
    spec.given(...nicBound, op.ioas()).when(op.attach(NIC, 'n0', 2)).thenSucceeds({ ptId: 3 }, 'upstream.attach.first');
  });
  it('given an unknown pt_id, when attached, then -ENOENT; given the device id, then -EINVAL (S5)', () => {
    spec.given(...nicBound).when(op.attach(NIC, 'n0', 0xffffffff)).thenFails('ENOENT', 'upstream.attach.pt-enoent');
    spec.given(...nicBound).when(op.attach(NIC, 'n0', 1)).thenFails('EINVAL', 'upstream.attach.pt-wrong-type');
  });
  it('given an attached device, when attached to another IOAS, then replace and the old auto hwpt is freed (S7)', () => {
    const state = spec.given(...attached, op.ioas()).when(op.attach(NIC, 'n0', 4)).thenSucceeds({ ptId: 5 }, 'upstream.attach.replace');
    expect(state.ictxs.get('fdA')?.objects.has(3)).toBe(false);
  });
  it('given a device not attached, when detached, then 0 (§1.4)', () => {
    spec.given(...nicBound).when(op.detach(NIC, 'n0')).thenSucceeds({}, 'upstream.detach.not-attached');
  });
  it('given an attached hwpt, IOAS and device, when destroyed, then -EBUSY; a missing id -ENOENT', () => {
    spec.given(...attached).when(op.destroy(3)).thenFails('EBUSY', 'upstream.destroy.hwpt-attached');
    spec.given(...attached).when(op.destroy(2)).thenFails('EBUSY', 'upstream.destroy.ioas-busy');
    spec.given(...attached).when(op.destroy(1)).thenFails('EBUSY', 'upstream.destroy.device-busy');
    spec.given(...attached).when(op.destroy(0)).thenFails('ENOENT', 'upstream.destroy.enoent');
  });
  it('given a sibling attached elsewhere, when attached to another IOAS, then -EINVAL (S15)', () => {
    spec
      .given(topology({ drivers: vfio(GPU, AUDIO) }), op.openIommufd(), op.open(GPU, 'g0'), op.bind(GPU, 'g0'), op.open(AUDIO, 'a0'), op.bind(AUDIO, 'a0'), op.ioas(), op.attach(GPU, 'g0', 3), op.ioas())
      .when(op.attach(AUDIO, 'a0', 5))
      .thenFails('EINVAL', 'upstream.attach.group-on-other-hwpt');
  });
  it('given the last device closes, then the group returns to its default domain', () => {
    const state = spec.given(...attached).when(op.close(NIC, 'n0')).thenSucceeds({}, 'upstream.close.unbind');
    expect(state.groups.get(12)).toMatchObject({ ownerCnt: 0, owner: null, attached: [] });
    expect(state.devices.get(NIC)?.domain).toEqual({ kind: 'default' });
  });
});

describe('upstream decider > driver core', () => {
  it('given a user-owned group, when a DMA-API driver probes, then -EBUSY (S35)', () => {
    spec
      .given(topology({ drivers: { [DEV_A]: 'vfio-pci', [DEV_B]: null, [DEV_C]: null } }), op.openIommufd(), op.open(DEV_A, 'a0'), op.bind(DEV_A, 'a0'))
      .when(op.bindDriver(DEV_C, 'ixgbe'))
      .thenFails('EBUSY', 'upstream.probe.use-default-domain');
  });
  it('given an open device fd, when vfio-pci is unbound, then the write blocks (S31)', () => {
    spec.given(...nicBound).when(op.unbindDriver(NIC, 'vfio-pci')).thenBlocks('common.driver.vfio-unregister-blocks');
  });
});
