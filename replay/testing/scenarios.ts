import type { IommuEvent } from '../../schemas/index.js';
import { createRecorder, type Recorder } from '../../projections/testing/recorder.js';

/**
 * The worked scenarios of protocol.md §3 as recorded histories. Outcomes are written by hand from the
 * reference (upstream behaviour), never computed by a model: replaying them on `upstream` must match,
 * and every other variant's divergences are the protocol differences. Ids follow the kernel's
 * lowest-free allocation for each history's own sequence, so they may differ from the reference's
 * illustrative numbers. services/replay/testing/writeCorpus.ts writes them to replay/corpus/*.jsonl.
 */

export { AUDIO, DEV_A, DEV_B, DEV_C, GPU, NIC, ROOT_PORT, USB_RMRR as RMRR_USB, USBC, XHCI } from '../../schemas/testing/referenceTopology.js';
import { AUDIO, DEV_A, DEV_B, DEV_C, GPU, NIC, ROOT_PORT, USB_RMRR as RMRR_USB, USBC, XHCI } from '../../schemas/testing/referenceTopology.js';
export { createRecorder, type Recorder, type TopologyOptions } from '../../projections/testing/recorder.js';


export interface CorpusScenario {
  /** file stem in replay/corpus */
  readonly name: string;
  /** the reference scenario, e.g. S7 */
  readonly scenario: string;
  readonly title: string;
  readonly events: readonly IommuEvent[];
}

const A = 'fdA';
const B = 'fdB';

const one = (name: string, scenario: string, title: string, build: (r: Recorder) => void, host = `lab-${scenario.toLowerCase()}`): CorpusScenario => {
  const r = createRecorder(host);
  build(r);
  return { name, scenario, title, events: r.events };
};

const many = (name: string, scenario: string, title: string, builds: Record<string, (r: Recorder) => void>): CorpusScenario => {
  const events: IommuEvent[] = [];
  for (const [host, build] of Object.entries(builds)) {
    const r = createRecorder(host);
    build(r);
    events.push(...r.events);
  }
  return { name, scenario, title, events };
};

/** the NIC (group 12) on vfio-pci, bound to fdA (devId 1), and IOAS 2, on `kernelRelease` (the recorder's default when absent) */
const nicBoundWithIoas = (r: Recorder, kernelRelease?: string): void => {
  r.topology(kernelRelease === undefined ? { drivers: vfio(NIC) } : { drivers: vfio(NIC), kernelRelease });
  r.openIommufd(A);
  r.openDevice(NIC, 'nic0');
  r.bind(NIC, 'nic0', A, 1);
  r.traces(NIC);
  r.allocIoas(A, 2);
};

/** group 7 with GPU (devId 1) and audio (devId 2) bound to fdA */
const bindGpuAndAudio = (r: Recorder): void => {
  r.openIommufd(A);
  r.openDevice(GPU, 'gpu0');
  r.bind(GPU, 'gpu0', A, 1);
  r.traces(GPU, AUDIO);
  r.openDevice(AUDIO, 'aud0');
  r.bind(AUDIO, 'aud0', A, 2);
};

/** group 7 on vfio-pci, GPU and audio bound to fdA and both attached to IOAS 3 (its auto hwpt 4) */
const bothOnIoas3 = (r: Recorder): void => {
  r.topology({ drivers: vfio(GPU, AUDIO) });
  bindGpuAndAudio(r);
  r.allocIoas(A, 3);
  r.attach(GPU, 'gpu0', 3, 4);
  r.traces(GPU, AUDIO);
  r.attach(AUDIO, 'aud0', 3, 4);
};

const vfio = (...devices: string[]): Record<string, string> => Object.fromEntries(devices.map((d) => [d, 'vfio-pci']));

export const CORPUS: readonly CorpusScenario[] = [
  one('s01-singleton-happy-path', 'S1', 'singleton happy path (group 12)', (r) => {
    r.topology();
    r.unbindDriver(NIC, 'igb');
    r.bindDriver(NIC, 'vfio-pci');
    r.openIommufd(A);
    r.openDevice(NIC, 'nic0');
    r.access(NIC, 'nic0', 'mmap', 'EINVAL');
    r.access(NIC, 'nic0', 'ioctl', 'EINVAL', 'VFIO_DEVICE_GET_INFO');
    r.bind(NIC, 'nic0', A, 1);
    r.traces(NIC);
    r.access(NIC, 'nic0', 'ioctl', undefined, 'VFIO_DEVICE_GET_INFO');
    r.allocIoas(A, 2);
    r.mapIoas(A, 2);
    r.attach(NIC, 'nic0', 2, 3);
    r.traces(NIC);
    r.detach(NIC, 'nic0');
    r.traces(NIC);
    r.closeDevice(NIC, 'nic0');
    r.traces(NIC);
  }),
  one('s03-repeated-bind', 'S3', 'repeated bind on the same fd; a second fd of a bound device (group 12)', (r) => {
    r.topology({ drivers: vfio(NIC) });
    r.openIommufd(A);
    r.openIommufd(B);
    r.openDevice(NIC, 'nic0');
    r.bind(NIC, 'nic0', A, 1);
    r.traces(NIC);
    r.bind(NIC, 'nic0', A, 'EINVAL');
    r.bind(NIC, 'nic0', B, 'EINVAL');
    r.openDevice(NIC, 'nic1');
    r.bind(NIC, 'nic1', B, 'EINVAL');
    r.closeDevice(NIC, 'nic1');
  }),
  one('s05-bad-pt-ids', 'S5', 'attach to bad pt ids (group 12 bound to fdA)', (r) => {
    nicBoundWithIoas(r, '6.15.0');
    r.attach(NIC, 'nic0', 0xffffffff, 'ENOENT');
    r.attach(NIC, 'nic0', 1, 'EINVAL');
    // a PASID attach on a device whose driver has no pasid_attach_ioas: -EOPNOTSUPP needs a 6.15 kernel (6.12 has no PASID flag: -EINVAL)
    r.attach(NIC, 'nic0', 2, 'EOPNOTSUPP', 1);
    r.destroy(A, 0, 'ENOENT');
    r.destroy(A, 1, 'EBUSY');
  }),
  one('s07-replace', 'S7', 're-attach = replace; the old auto hwpt is freed (group 12)', (r) => {
    nicBoundWithIoas(r);
    r.attach(NIC, 'nic0', 2, 3);
    r.traces(NIC);
    r.allocIoas(A, 4);
    r.attach(NIC, 'nic0', 4, 5);
    r.traces(NIC);
    r.attach(NIC, 'nic0', 3, 'ENOENT');
    r.attach(NIC, 'nic0', 4, 5);
    r.destroy(A, 2);
  }),
  one('s09-close-iommufd-first', 'S9', 'closing /dev/iommu first: the device fd keeps the context alive (group 12)', (r) => {
    nicBoundWithIoas(r);
    r.attach(NIC, 'nic0', 2, 3);
    r.traces(NIC);
    r.closeIommufd(A);
    r.access(NIC, 'nic0', 'mmap');
    r.closeDevice(NIC, 'nic0');
    r.traces(NIC, NIC);
  }),
  one('s11-viable-by-unbind', 'S11', 'make group 7 viable by unbinding the audio driver', (r) => {
    r.topology({ drivers: vfio(GPU) });
    r.openIommufd(A);
    r.openDevice(GPU, 'gpu0');
    r.bind(GPU, 'gpu0', A, 'EPERM');
    r.report('vfio: error, group 7 is not viable', 7);
    r.unbindDriver(AUDIO, 'snd_hda_intel');
    r.bind(GPU, 'gpu0', A, 1);
    r.traces(GPU, AUDIO);
  }),
  one('s13-second-member-joins', 'S13', 'second group member joins via vfio; another iommufd is refused (group 7)', (r) => {
    r.topology({ drivers: { [GPU]: 'vfio-pci', [AUDIO]: null } });
    r.openIommufd(A);
    r.openIommufd(B);
    r.openDevice(GPU, 'gpu0');
    r.bind(GPU, 'gpu0', A, 1);
    r.traces(GPU, AUDIO);
    r.bindDriver(AUDIO, 'vfio-pci');
    r.openDevice(AUDIO, 'aud0');
    r.bind(AUDIO, 'aud0', B, 'EPERM');
    r.bind(AUDIO, 'aud0', A, 2);
  }),
  one(
    's15-sibling-other-ioas',
    'S15',
    'sibling to a different IOAS is refused; the topology marks GPU and audio as distinguishable sub-groups (group 7)',
    (r) => {
      r.topology({ drivers: vfio(GPU, AUDIO), subGroups: { 7: [[GPU], [AUDIO]] } });
      bindGpuAndAudio(r);
      r.allocIoas(A, 3);
      r.attach(GPU, 'gpu0', 3, 4);
      r.traces(GPU, AUDIO);
      r.allocIoas(A, 5);
      r.attach(AUDIO, 'aud0', 5, 'EINVAL');
    },
  ),
  one('s17-non-last-detach', 'S17', 'a non-last detach does not block; the last one does (group 7)', (r) => {
    bothOnIoas3(r);
    r.detach(GPU, 'gpu0');
    r.detach(AUDIO, 'aud0');
    r.traces(GPU, AUDIO);
    r.closeDevice(GPU, 'gpu0');
    r.closeDevice(AUDIO, 'aud0');
    r.traces(GPU, AUDIO);
  }),
  one('s19-unattached-sibling', 'S19', 'an unattached sibling may only join the group hwpt; detach of an unattached device returns 0 (group 7)', (r) => {
    r.topology({ drivers: vfio(GPU, AUDIO) });
    bindGpuAndAudio(r);
    r.allocIoas(A, 3);
    r.allocIoas(A, 4);
    r.attach(GPU, 'gpu0', 3, 5);
    r.traces(GPU, AUDIO);
    r.attach(AUDIO, 'aud0', 4, 'EINVAL');
    r.attach(AUDIO, 'aud0', 5, 5);
    r.detach(AUDIO, 'aud0');
    r.detach(AUDIO, 'aud0');
    r.attach(AUDIO, 'aud0', 3, 5);
  }),
  one('s21-last-unbind', 'S21', 'last unbind in the group returns it to the kernel; nouveau binds again (group 7)', (r) => {
    bothOnIoas3(r);
    r.closeDevice(GPU, 'gpu0');
    r.closeDevice(AUDIO, 'aud0');
    r.traces(GPU, AUDIO, GPU, AUDIO);
    r.unbindDriver(GPU, 'vfio-pci');
    r.bindDriver(GPU, 'nouveau');
  }),
  one('s23-iommufd-as-container', 'S23', 'legacy group API with an iommufd as container: viable flag set, GET_DEVICE_FD refused (group 7)', (r) => {
    r.topology({ drivers: vfio(GPU) });
    r.openIommufd(A);
    r.openGroup(7, 'grp7');
    r.setContainer(7, 'grp7', A, 'iommufd');
    r.groupStatus(7, 'grp7', { viable: true, containerSet: true });
    r.getDeviceFd(7, 'grp7', GPU, { errno: 'EPERM' });
    r.report('vfio 0000:01:00.0: failed to open device: Operation not permitted', 7);
    r.closeGroup(7, 'grp7');
  }),
  one('s25-group-node-twice', 'S25', 'legacy group node opened twice; container set twice, unset twice (group 12)', (r) => {
    r.topology({ drivers: vfio(NIC) });
    r.openGroup(12, 'grp12a');
    r.openGroup(12, 'grp12b', 'EBUSY');
    r.groupStatus(12, 'grp12a', { viable: true, containerSet: false });
    r.openContainer('ctr0');
    r.setContainer(12, 'grp12a', 'ctr0', 'legacy');
    r.traces(NIC);
    r.setContainer(12, 'grp12a', 'ctr0', 'legacy', 'EINVAL');
    r.unsetContainer(12, 'grp12a');
    r.traces(NIC);
    r.unsetContainer(12, 'grp12a', 'EINVAL');
    r.closeGroup(12, 'grp12a');
    r.closeContainer('ctr0');
  }),
  many('s27-hotplug-live-group', 'S27', 'hot-added function lands in an owned group; its autoprobe is refused (group 7; cdev and legacy-container hosts)', {
    'lab-s27-cdev': (r) => {
      r.topology({ drivers: vfio(GPU, AUDIO) });
      r.openIommufd(A);
      r.openDevice(GPU, 'gpu0');
      r.bind(GPU, 'gpu0', A, 1);
      r.traces(GPU, AUDIO);
      r.allocIoas(A, 2);
      r.attach(GPU, 'gpu0', 2, 3);
      r.traces(GPU, AUDIO);
      r.deviceAdded(USBC, 7);
      r.traces(USBC);
      r.bindDriver(USBC, 'xhci_hcd', 'EBUSY');
    },
    'lab-s27-container': (r) => {
      r.topology({ drivers: vfio(GPU, AUDIO) });
      r.openGroup(7, 'grp7');
      r.openContainer('ctr0');
      r.setContainer(7, 'grp7', 'ctr0', 'legacy');
      r.traces(GPU, AUDIO);
      r.setIommu('ctr0', 'type1v2');
      r.traces(GPU, AUDIO);
      r.getDeviceFd(7, 'grp7', GPU, 'gpu0');
      r.deviceAdded(USBC, 7);
      r.traces(USBC);
      r.bindDriver(USBC, 'xhci_hcd', 'EBUSY');
      r.closeDevice(GPU, 'gpu0');
    },
  }),
  one('s29-bridge-in-group', 'S29', 'a root port (pcieport, driver_managed_dma) in the group does not block the claim (group 9)', (r) => {
    r.topology();
    r.unbindDriver(XHCI, 'xhci_hcd');
    r.bindDriver(XHCI, 'vfio-pci');
    r.openIommufd(A);
    r.openDevice(XHCI, 'xhci0');
    r.bind(XHCI, 'xhci0', A, 1);
    r.traces(ROOT_PORT, XHCI);
    r.allocIoas(A, 2);
    r.attach(XHCI, 'xhci0', 2, 3);
    r.traces(ROOT_PORT, XHCI);
  }),
  one('s31-unbind-vfio-in-use', 'S31', 'removing vfio-pci from a device in use completes only after the fd is closed (group 12)', (r) => {
    r.topology({ drivers: vfio(NIC) });
    r.openIommufd(A);
    r.openDevice(NIC, 'nic0');
    r.bind(NIC, 'nic0', A, 1);
    r.traces(NIC);
    r.closeDevice(NIC, 'nic0');
    r.traces(NIC);
    r.unbindDriver(NIC, 'vfio-pci');
    r.bindDriver(NIC, 'igb');
  }),
  one('s33-require-direct', 'S33', 'RMRR / require_direct device: the blocking domain is refused (group 15)', (r) => {
    r.topology({ drivers: vfio(RMRR_USB) });
    r.openIommufd(A);
    r.openDevice(RMRR_USB, 'usb0');
    r.bind(RMRR_USB, 'usb0', A, 'EINVAL');
    r.closeDevice(RMRR_USB, 'usb0');
    r.openGroup(15, 'grp15');
    r.openContainer('ctr0');
    r.setContainer(15, 'grp15', 'ctr0', 'legacy', 'EINVAL');
    r.closeGroup(15, 'grp15');
  }),
  one('s35-three-device-group', 'S35', 'three-device group with one kernel driver (group 30)', (r) => {
    r.topology({ drivers: { [DEV_A]: 'vfio-pci', [DEV_B]: 'ixgbe', [DEV_C]: null } });
    r.openIommufd(A);
    r.openDevice(DEV_A, 'a0');
    r.bind(DEV_A, 'a0', A, 'EPERM');
    r.unbindDriver(DEV_B, 'ixgbe');
    r.bind(DEV_A, 'a0', A, 1);
    r.traces(DEV_A, DEV_B, DEV_C);
    r.bindDriver(DEV_C, 'ixgbe', 'EBUSY');
    r.bindDriver(DEV_B, 'vfio-pci');
    r.openDevice(DEV_B, 'b0');
    r.bind(DEV_B, 'b0', A, 2);
    r.allocIoas(A, 3);
    r.attach(DEV_A, 'a0', 3, 4);
    r.traces(DEV_A, DEV_B, DEV_C);
    r.attach(DEV_B, 'b0', 3, 4);
    r.detach(DEV_B, 'b0');
    r.detach(DEV_A, 'a0');
    r.traces(DEV_A, DEV_B, DEV_C);
  }),
  one('s37-explicit-hwpt', 'S37', 'explicit HWPT lifecycle (group 12)', (r) => {
    nicBoundWithIoas(r);
    r.allocHwpt(A, 1, 2, 0, 3);
    r.allocHwpt(A, 1, 2, 0x80000000, 'EOPNOTSUPP');
    r.attach(NIC, 'nic0', 3, 3);
    r.traces(NIC);
    r.destroy(A, 3, 'EBUSY');
    r.destroy(A, 2, 'EBUSY');
    r.attach(NIC, 'nic0', 2, 4);
    r.traces(NIC);
    r.destroy(A, 3);
  }),
  one('s39-pasid-in-group', 'S39', 'PASID attach in a multi-device group is group-wide (group 7)', (r) => {
    // PASID attach through the cdev is v6.15 (vfio_df_ioctl_attach_pt); the same device again on the same PASID is
    // vfio_iommufd_physical_pasid_attach_ioas → iommufd_device_replace to the same hwpt: 0 (not -EBUSY)
    r.topology({ drivers: vfio(GPU, AUDIO), devices: { [GPU]: { maxPasids: 1 << 20, pasidAttach: true }, [AUDIO]: { maxPasids: 8 } }, kernelRelease: '6.15.0' });
    r.openIommufd(A);
    r.openDevice(GPU, 'gpu0');
    r.bind(GPU, 'gpu0', A, 1);
    r.traces(GPU, AUDIO);
    r.allocIoas(A, 2);
    r.attach(GPU, 'gpu0', 2, 3, 5);
    r.attach(GPU, 'gpu0', 2, 3, 5);
    r.attach(GPU, 'gpu0', 2, 'EINVAL', 9);
    r.detach(GPU, 'gpu0', undefined, 5);
    r.closeDevice(GPU, 'gpu0');
    r.traces(GPU, AUDIO);
  }),
  one(
    's41-viommu-lifetimes',
    'S41',
    'nesting parent, vIOMMU and vDEVICE on 6.17: each holds the one below (IOMMU_DESTROY -EBUSY: iommufd_object_remove), the vDEVICE dies with its device (viommu.c iommufd_viommu_alloc_ioctl, iommufd_vdevice_alloc_ioctl; "iommufd: Destroy vdevice on idevice destroy"), dirty tracking needs IOMMU_HWPT_ALLOC_DIRTY_TRACKING (io_pagetable.c iopt_set_dirty_tracking)',
    (r) => {
      nicBoundWithIoas(r, '6.17.0');
      r.allocHwpt(A, 1, 2, 0x1, 3);
      r.setDirtyTracking(A, 3, true, 'EOPNOTSUPP');
      r.allocHwpt(A, 1, 2, 0x2, 4);
      r.setDirtyTracking(A, 4, true);
      r.allocViommu(A, 1, 4, 'EINVAL');
      r.allocViommu(A, 1, 3, 5);
      r.allocVdevice(A, 5, 1, '0x0000000000000010', 6);
      r.allocVdevice(A, 5, 1, '0x0000000000000020', 'EEXIST');
      r.destroy(A, 3, 'EBUSY');
      r.destroy(A, 5, 'EBUSY');
      r.closeDevice(NIC, 'nic0');
      r.traces(NIC);
      r.destroy(A, 6, 'ENOENT');
      r.destroy(A, 5);
      r.destroy(A, 3);
      r.destroy(A, 4);
      r.destroy(A, 2);
      r.closeIommufd(A);
    },
  ),
  // ---- issue 19: the items no built kernel here (6.12, 6.1) can show; each cites the kernel source that decides it ----
  one(
    's43-veventq-hw-queue',
    'S43',
    'vEVENTQ (6.15) and HW queue (6.17) under a vIOMMU: eventq.c iommufd_veventq_alloc (flags/type DEFAULT -EOPNOTSUPP, depth 0 -EINVAL, one queue per type -EEXIST), viommu.c iommufd_hw_queue_alloc_ioctl (length 0 -EINVAL, iova+length overflow -EOVERFLOW); each holds its vIOMMU (main.c iommufd_object_remove -EBUSY), the vEVENTQ fd holds the queue and the ctx (iommufd_eventq_init, iommufd_eventq_fops_release)',
    (r) => {
      nicBoundWithIoas(r, '6.17.0');
      r.allocHwpt(A, 1, 2, 0x1, 3);
      r.event('IommufdViommuAllocIssued', { ictx: A, viommuType: 'tegra241-cmdqv', devId: 1, hwptId: 3, outcome: { ok: true, viommuId: 4 } as never });
      const queue = (veventqType: 'default' | 'tegra241-cmdqv', veventqDepth: number, outcome: object) =>
        r.event('IommufdVeventqAllocIssued', { ictx: A, viommuId: 4, veventqType, veventqDepth, outcome: outcome as never });
      queue('default', 64, { ok: false, errno: 'EOPNOTSUPP' });
      queue('tegra241-cmdqv', 0, { ok: false, errno: 'EINVAL' });
      queue('tegra241-cmdqv', 64, { ok: true, veventqId: 5, veventqFd: 'evq0' });
      queue('tegra241-cmdqv', 64, { ok: false, errno: 'EEXIST' });
      const hwQueue = (nestingParentIova: string, length: string, outcome: object) =>
        r.event('IommufdHwQueueAllocIssued', { ictx: A, viommuId: 4, hwQueueType: 'tegra241-cmdqv', index: 0, nestingParentIova, length, outcome: outcome as never });
      hwQueue('0x80000000', '0x0', { ok: false, errno: 'EINVAL' });
      hwQueue('0xffffffffffff0000', '0x20000', { ok: false, errno: 'EOVERFLOW' });
      hwQueue('0x80000000', '0x10000', { ok: true, hwQueueId: 6 });
      r.destroy(A, 4, 'EBUSY');
      r.destroy(A, 5, 'EBUSY');
      r.destroy(A, 6);
      r.destroy(A, 4, 'EBUSY');
      r.closeDevice(NIC, 'nic0');
      r.traces(NIC);
      // /dev/iommu closed while the vEVENTQ fd is open: the ctx lives on until that fd closes
      r.closeIommufd(A);
      r.event('IommufdEventFdClosed', { ictx: A, fd: 'evq0', kind: 'veventq' });
    },
  ),
  one(
    's45-vf-token',
    'S45',
    'VF token on the cdev bind (6.17): device_cdev.c vfio_df_ioctl_bind_iommufd → vfio_df_check_token → vfio_pci_core.c vfio_pci_validate_vf_token: a VF of a vfio-pci PF without a token -EACCES ("VF token required to access device"), and the PF too while its VF has a vfio user, a token for a device that is neither PF nor VF -EINVAL ("Do vf_token checks for VFIO_DEVICE_BIND_IOMMUFD", be2e70b96c3e)',
    (r) => {
      r.topology({
        drivers: { ...vfio(NIC, GPU, DEV_A), [DEV_B]: null, [DEV_C]: null },
        devices: { [NIC]: { physfn: DEV_A }, [DEV_A]: { sriovTotalVfs: 8 } },
        kernelRelease: '6.17.0',
      });
      r.openIommufd(A);
      r.openDevice(NIC, 'vf0');
      r.bind(NIC, 'vf0', A, 'EACCES');
      r.event('VfioDeviceBindIommufdIssued', { device: NIC, deviceFd: 'vf0', ictx: A, vfToken: true, outcome: { ok: true, devId: 1 } as never });
      r.traces(NIC);
      r.openDevice(GPU, 'gpu0');
      r.event('VfioDeviceBindIommufdIssued', { device: GPU, deviceFd: 'gpu0', ictx: A, vfToken: true, outcome: { ok: false, errno: 'EINVAL' } as never });
      r.closeDevice(GPU, 'gpu0');
      // the PF, while its VF has a vfio user, must present the same token (vf_token->users)
      r.openDevice(DEV_A, 'pf0');
      r.bind(DEV_A, 'pf0', A, 'EACCES');
      r.event('VfioDeviceBindIommufdIssued', { device: DEV_A, deviceFd: 'pf0', ictx: A, vfToken: true, outcome: { ok: true, devId: 2 } as never });
      r.traces(DEV_A, DEV_B, DEV_C);
      r.closeDevice(DEV_A, 'pf0');
      r.traces(DEV_A, DEV_B, DEV_C);
      r.closeDevice(NIC, 'vf0');
      r.traces(NIC);
      r.closeIommufd(A);
    },
  ),
  one(
    's47-reset-fence',
    'S47',
    'a device reset fences the IOMMU (7.0): iommu.c pci_dev_reset_iommu_prepare/done set group->resetting_domain, and __iommu_group_set_domain_internal returns -EBUSY meanwhile, so an ATTACH of a group sibling fails (uapi vfio.h VFIO_DEVICE_ATTACH_IOMMUFD_PT); the fence\'s two attach_device_to_domain lines move no ownership (c279e83953d9)',
    (r) => {
      r.topology({ drivers: vfio(GPU, AUDIO), kernelRelease: '7.0.0' });
      bindGpuAndAudio(r);
      r.allocIoas(A, 3);
      r.event('TraceDeviceResetFence', { device: AUDIO, phase: 'prepare' });
      r.event('TraceAttachDeviceToDomain', { device: AUDIO, resetFence: 'prepare' });
      r.attach(GPU, 'gpu0', 3, 'EBUSY');
      r.event('TraceDeviceResetFence', { device: AUDIO, phase: 'done' });
      r.event('TraceAttachDeviceToDomain', { device: AUDIO, resetFence: 'done' });
      r.event('VfioDeviceResetIssued', { device: AUDIO, deviceFd: 'aud0', reset: 'device', outcome: { ok: true } });
      r.attach(GPU, 'gpu0', 3, 4);
      r.traces(GPU, AUDIO);
      r.attach(AUDIO, 'aud0', 3, 4);
      r.closeDevice(GPU, 'gpu0');
      r.closeDevice(AUDIO, 'aud0');
      r.traces(GPU, AUDIO);
      r.closeIommufd(A);
    },
  ),
  many(
    's49-noiommu-cdev',
    'S49',
    'noiommu through iommufd (7.3, pull 85e0d1de): "vfio: Enable cdev noiommu mode under iommufd" makes /dev/vfio/devices/noiommu-vfioN, which binds with no iommu_group ("iommufd: Allow binding to a noiommu device") and attaches to an IOAS through a software-only hwpt ("iommufd: Support a HWPT without an iommu driver for noiommu"); before 7.3 the node does not exist (the uAPI was "blocked off", Gunthorpe 2025-06-03)',
    {
      'lab-s49-7-3': (r) => noiommuHost(r, '7.3.0', true),
      'lab-s49-7-2': (r) => noiommuHost(r, '7.2.0', false),
    },
  ),
  one(
    's51-map-file-change-process',
    'S51',
    'IOMMU_IOAS_MAP_FILE and IOMMU_IOAS_CHANGE_PROCESS (6.13, merge 341d041d): ioas.c iommufd_ioas_change_process moves the pinned-page accounting only when every area comes from a file (-EINVAL otherwise, nothing changed)',
    (r) => {
      nicBoundWithIoas(r, '6.13.0');
      r.event('IommufdIoasMapFileIssued', { ictx: A, ioasId: 2, fd: 'memfd0', fileKind: 'memfd', start: '0x0', length: '0x200000', iova: '0x40000000', outcome: { ok: true, iova: '0x40000000' } as never });
      r.event('IommufdIoasChangeProcessIssued', { ictx: A, outcome: { ok: true } });
      r.mapIoas(A, 2);
      r.event('IommufdIoasChangeProcessIssued', { ictx: A, outcome: { ok: false, errno: 'EINVAL' } });
      r.closeDevice(NIC, 'nic0');
      r.traces(NIC);
      r.closeIommufd(A);
    },
  ),
  one(
    's53-type1-nesting-removed',
    'S53',
    'VFIO_TYPE1_NESTING_IOMMU removed (6.13, "vfio: Remove VFIO_TYPE1_NESTING_IOMMU", merge 4e6bd13a): container.c vfio_ioctl_set_iommu finds no backend for type 6 (-ENODEV); type1v2 still works',
    (r) => {
      r.topology({ drivers: vfio(NIC), kernelRelease: '6.13.0' });
      r.openContainer('c0');
      r.openGroup(12, 'grp12');
      r.groupStatus(12, 'grp12', { viable: true, containerSet: false });
      r.setContainer(12, 'grp12', 'c0', 'legacy');
      r.traces(NIC);
      r.event('VfioContainerSetIommuIssued', { container: 'c0', iommuType: 'type1-nesting', outcome: { ok: false, errno: 'ENODEV' } });
      r.setIommu('c0', 'type1v2');
      r.traces(NIC);
      r.closeGroup(12, 'grp12');
      r.traces(NIC);
      r.closeContainer('c0');
    },
  ),
  one(
    's55-probe-defer',
    'S55',
    'a DMA-API driver probing into a group without a default domain yet (sysfs type "unknown", iommu_group_show_type): iommu.c iommu_device_use_default_domain -EPROBE_DEFER ("iommu: Handle race with default domain setup", 2025-02-28, 6.15 and stable), returned to the bind writer as -EAGAIN by dd.c device_driver_attach; once the group has its domain the bind succeeds',
    (r) => {
      r.topology({ drivers: { [NIC]: null }, defaultDomainTypes: { 12: 'unknown' }, kernelRelease: '6.15.0' });
      r.bindDriver(NIC, 'igb', 'EAGAIN');
      r.topology({ drivers: { [NIC]: null }, defaultDomainTypes: { 12: 'DMA-FQ' }, kernelRelease: '6.15.0' });
      r.bindDriver(NIC, 'igb');
    },
  ),
  many(
    's57-ioas-get-pa',
    'S57',
    'IOMMU_IOAS_GET_PA (7.3, cmd 0x95, pull 85e0d1de: "iommufd: Add an ioctl to query PA from IOVA for noiommu mode"): a mapped IOVA answers its physical address, a missing IOAS is -ENOENT (iommufd_get_ioas), an IOVA no area maps fails (-ENOENT, errno inferred: the 7.3 ioas.c was not read); before 7.3 iommufd_fops_ioctl knows no such command (-ENOTTY)',
    {
      'lab-s57-7-3': (r) => {
        noiommuBound(r, '7.3.0');
        r.mapIoas(A, 2);
        r.event('IommufdIoasGetPaIssued', { ictx: A, ioasId: 2, iova: '0x100000', length: '0x1000', outcome: { ok: true, phys: '0x123456000' } as never });
        r.event('IommufdIoasGetPaIssued', { ictx: A, ioasId: 9, iova: '0x100000', length: '0x1000', outcome: { ok: false, errno: 'ENOENT' } });
        r.event('IommufdIoasGetPaIssued', { ictx: A, ioasId: 2, iova: '0x80000000', length: '0x1000', outcome: { ok: false, errno: 'ENOENT' } });
        r.closeDevice(NIC, 'nic0');
        r.closeIommufd(A);
      },
      'lab-s57-7-2': (r) => {
        nicBoundWithIoas(r, '7.2.0');
        r.event('IommufdIoasGetPaIssued', { ictx: A, ioasId: 2, iova: '0x100000', length: '0x1000', outcome: { ok: false, errno: 'ENOTTY' } });
        r.closeDevice(NIC, 'nic0');
        r.traces(NIC);
        r.closeIommufd(A);
      },
    },
  ),
  many(
    's59-vfio-dma-buf',
    'S59',
    'VFIO dma-buf (6.19, VFIO_DEVICE_FEATURE_DMA_BUF = 11, vfio-v6.19-rc1 merge a3ebb59e): a device fd with access exports a BAR as a dma-buf; "access is revoked when the VFIO device is closed or a PCI reset is issued" (commit 5d74781e); before 6.19 vfio_pci_core_ioctl_feature answers the unknown feature -ENOTTY',
    {
      'lab-s59-6-19': (r) => {
        nicBoundWithIoas(r, '6.19.0');
        r.event('VfioDeviceDmaBufCreated', { device: NIC, deviceFd: 'nic0', regionIndex: 0, nrRanges: 1, outcome: { ok: true, dmaBufFd: 'dmabuf0' } as never });
        r.event('VfioDeviceResetIssued', { device: NIC, deviceFd: 'nic0', reset: 'device', outcome: { ok: true } });
        r.event('VfioDeviceDmaBufRevoked', { device: NIC, dmaBufFd: 'dmabuf0', reason: 'device-reset' });
        r.event('VfioDeviceDmaBufCreated', { device: NIC, deviceFd: 'nic0', regionIndex: 0, nrRanges: 2, outcome: { ok: true, dmaBufFd: 'dmabuf1' } as never });
        r.closeDevice(NIC, 'nic0');
        r.event('VfioDeviceDmaBufRevoked', { device: NIC, dmaBufFd: 'dmabuf1', reason: 'device-fd-closed' });
        r.traces(NIC);
        r.closeIommufd(A);
      },
      'lab-s59-6-18': (r) => {
        nicBoundWithIoas(r, '6.18.0');
        r.event('VfioDeviceDmaBufCreated', { device: NIC, deviceFd: 'nic0', regionIndex: 0, nrRanges: 1, outcome: { ok: false, errno: 'ENOTTY' } });
        r.closeDevice(NIC, 'nic0');
        r.traces(NIC);
        r.closeIommufd(A);
      },
    },
  ),
];

/** a noiommu NIC (S49) bound to fdA and attached to IOAS 2 on `release` (S57) */
function noiommuBound(r: Recorder, release: string): void {
  r.event('TopologySnapshotTaken', {
    capabilities: { iommu: false, interruptRemapping: null, allowUnsafeInterrupts: false, cacheCoherent: true, kernelRelease: release },
    groups: [],
    devices: [{ device: NIC, vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'vfio-pci', group: null, cdev: 'noiommu-vfio0' }],
  } as never);
  r.openIommufd(A);
  r.event('VfioDeviceOpened', { device: NIC, deviceFd: 'nic0', cdev: 'noiommu-vfio0', outcome: { ok: true } });
  r.bind(NIC, 'nic0', A, 1);
  r.allocIoas(A, 2);
  r.attach(NIC, 'nic0', 2, 3);
}

/** a host without an IOMMU whose NIC vfio-pci drives in noiommu mode, on `release` (S49) */
function noiommuHost(r: Recorder, release: string, hasNode: boolean): void {
  r.event('TopologySnapshotTaken', {
    capabilities: { iommu: false, interruptRemapping: null, allowUnsafeInterrupts: false, cacheCoherent: true, kernelRelease: release },
    groups: [],
    devices: [{ device: NIC, vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'vfio-pci', group: null, ...(hasNode ? { cdev: 'noiommu-vfio0' } : {}) }],
  } as never);
  r.openIommufd(A);
  r.event('VfioDeviceOpened', { device: NIC, deviceFd: 'nic0', cdev: 'noiommu-vfio0', outcome: (hasNode ? { ok: true } : { ok: false, errno: 'ENOENT' }) as never });
  if (hasNode) {
    r.bind(NIC, 'nic0', A, 1);
    // a software-only hwpt on the IOAS (hwpt_noiommu.c): no group, so no domain and no trace line
    r.allocIoas(A, 2);
    r.attach(NIC, 'nic0', 2, 3);
    r.detach(NIC, 'nic0');
    r.closeDevice(NIC, 'nic0');
    r.destroy(A, 2);
  }
  r.closeIommufd(A);
}
