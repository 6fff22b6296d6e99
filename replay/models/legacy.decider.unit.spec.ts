import { describe, expect, it } from 'vitest';
import { DeciderSpecification, type GivenStep } from '../testing/deciderSpecification.js';
import { NIC, op, topology } from '../testing/fixtures.js';
import { legacyDecider } from './legacy.decider.js';
import { stage1Decider, stage2Decider, stage3Decider } from './seed.decider.js';
import type { Operation } from '../../projections/kernel/types.js';

/*
 * The group node and its type1 container after the group fd is closed while GET_DEVICE_FD fds are open, as
 * v5.18's drivers/vfio/vfio.c has it (the pre-v5.19 group uAPI the legacy variant and the seed stages keep).
 * No 5.18 kernel boots here (the kernel oracle has Debian's 6.1 and 6.12 only), so the source is the judge:
 * - vfio_group_get_device_fd: each device fd takes `atomic_inc(&group->container_users)`;
 * - vfio_group_fops_release: `vfio_group_try_dissolve_container(group)` then `atomic_dec(&group->opened)`:
 *   the node itself is free at once, but the container stays while a device fd holds a container user;
 * - vfio_group_fops_open: `if (group->container) return -EBUSY` ("Is something still in use from a previous
 *   open?"): the node cannot be opened again while the container stays;
 * - vfio_device_fops_release: `vfio_group_try_dissolve_container(device->group)`: the last device fd's close
 *   drops container_users to 0, and `__vfio_group_unset_container` detaches the group (owner and domain gone).
 * So the node is busy until the last device fd closes, then released: what 6.1/6.12 do on type1 by another
 * mechanism (the kernel oracle's s22, `fput` of the group file in container.c). The model held it for good.
 * (Read from the whole vfio.c of v5.15 and Jason Gunthorpe's May 2022 series against the v5.19 base, whose
 * context lines are v5.18's: the four functions are the same in both; no v5.18 tree could be fetched here,
 * so no line numbers.)
 */
const group = (fd: string): Operation => ({ kind: 'openGroup', group: 12, groupFd: fd });
const status = (fd: string): Operation => ({ kind: 'groupStatus', group: 12, groupFd: fd });
const twoDeviceFds: GivenStep[] = [
  topology({ drivers: { [NIC]: 'vfio-pci' } }),
  { kind: 'openContainer', container: 'k' },
  group('g'),
  { kind: 'setContainer', group: 12, groupFd: 'g', container: 'k', containerKind: 'legacy' },
  { kind: 'setIommu', container: 'k', iommuType: 'type1v2' },
  { kind: 'getDeviceFd', group: 12, groupFd: 'g', device: NIC, newFd: 'd1' },
  { kind: 'getDeviceFd', group: 12, groupFd: 'g', device: NIC, newFd: 'd2' },
  { kind: 'closeGroup', group: 12, groupFd: 'g' },
];

describe.each([
  ['legacy', legacyDecider, 'legacy'],
  ['stage1', stage1Decider, 'legacy'],
  ['stage2', stage2Decider, 'legacy'],
  ['stage3', stage3Decider, 'legacy'],
] as const)('%s: the pre-v5.19 group node after its fd closed with device fds open', (_name, decider, prefix) => {
  const spec = DeciderSpecification.for(decider);

  it('review16 #16 (v5.18 vfio_device_fops_release): the node stays busy until the last device fd closes, then is released (container detached) and opens again', () => {
    spec.given(...twoDeviceFds).when(group('g2')).thenFails('EBUSY', `${prefix}.group.already-open`);
    spec.given(...twoDeviceFds, op.close(NIC, 'd1')).when(group('g3')).thenFails('EBUSY', `${prefix}.group.already-open`);
    spec.given(...twoDeviceFds, op.close(NIC, 'd1'), op.close(NIC, 'd2')).when(group('g4')).thenSucceeds({}, `${prefix}.group.opened`);
    const reopened = [...twoDeviceFds, op.close(NIC, 'd1'), op.close(NIC, 'd2'), group('g4')];
    const state = spec.given(...reopened).when(status('g4')).thenSucceeds({ viable: true, containerSet: false }, `${prefix}.group.status`);
    expect(state.groups.get(12)).toMatchObject({ container: null, owner: null, groupFd: 'g4' });
    expect(state.devices.get(NIC)?.domain).toEqual({ kind: 'default' });
  });

  it('review16 #16: with the group fd still open, closing every device fd releases nothing (the group fd holds the container)', () => {
    const open = twoDeviceFds.slice(0, -1);
    const state = spec.given(...open, op.close(NIC, 'd1')).when(op.close(NIC, 'd2')).thenSucceeds();
    expect(state.groups.get(12)).toMatchObject({ container: { handle: 'k', kind: 'legacy' }, owner: { kind: 'container', container: 'k' }, groupFd: 'g' });
  });
});
