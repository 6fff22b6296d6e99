/** where a fact was read from; the verdict names it so a reader can check the line */
export type EvidenceKind = 'group-listing' | 'lspci' | 'ls-sysfs' | 'kernel-log' | 'vmm-error' | 'nodedev-xml' | 'tool-log' | 'kernel-cmdline';

export interface Evidence {
  readonly kind: EvidenceKind;
  /** 1-based line of the paste */
  readonly line: number;
}

export interface DeviceFacts {
  /** normalised PCI address, `0000:01:00.0` */
  readonly device: string;
  description?: string;
  /** `0300` from `[0300]`, or the full `030000` when lspci printed the prog-if */
  classCode?: string;
  vendorId?: string;
  deviceId?: string;
  /**
   * undefined: never shown (unknown). `{ name: null }`: shown with no driver bound. `current` is false
   * for evidence of a past state (a kernel log line), which later evidence overrides.
   */
  driver?: { name: string | null; current: boolean; evidence: Evidence };
  modules?: string[];
  group?: { group: number; evidence: Evidence };
}

export interface GroupFacts {
  readonly group: number;
  readonly members: Set<string>;
  /** true when the paste contains a full listing of the group's devices (shell loop, ls of its devices dir) */
  complete: boolean;
  readonly evidence: Evidence[];
}

export type ErrorOrigin = 'qemu' | 'libvirt' | 'kubevirt' | 'kernel' | 'other';

/**
 * What an error line says about the group:
 * - `not-viable`: "group N is not viable" (the only direct evidence of a blocked group);
 * - `group-busy`: "error getting device from group N" / "Verify all devices in group N are bound to vfio-<bus>
 *   or pci-stub and not already in use" (viable, but a device is in use or an mdev failed to start);
 * - `no-vfio-node`: "failed to open /dev/vfio/N: No such file or directory" (no member of the group is on a vfio driver);
 * - `vfio-node-denied`: "failed to open /dev/vfio/N: Operation not permitted" (or Permission denied): the node exists
 *   but the VMM may not open it (its permissions, a container's devices cgroup, SELinux/AppArmor);
 * - `no-iommu-group`: the device has no IOMMU group (the IOMMU is off or absent for it);
 * - `vfio-probe-einval`: vfio-pci's probe failed with -22 (-EINVAL): the device has no IOMMU group, has no
 *   normal header (a bridge) or is on vfio-pci's denylist (vfio_pci_probe, vfio_pci_core_register_device);
 * - `guest-slot-taken`: QEMU's "slot N function F not available for vfio-pci, in use by X": the guest address
 *   asked for is taken; raised before the device is realized, so before VFIO opens its group;
 * - `container-refused`: VFIO would not put the group in a container (QEMU "failed to setup container for group N:
 *   Failed to set group container: <errno>", DPDK "cannot add vfio group to container, error 22"): the group was
 *   opened, so this comes after the viability check; `errno` says which refusal (-EINVAL: a firmware 1:1 mapping,
 *   S33; -EPERM: an RMRR before v6.x, missing interrupt remapping, or a member bound meanwhile);
 * - `other`: any other vfio error naming a device (reset, address spaces, a tool's own check).
 */
export type ErrorClaim = 'not-viable' | 'group-busy' | 'no-vfio-node' | 'no-iommu-group' | 'vfio-probe-einval' | 'guest-slot-taken' | 'container-refused' | 'vfio-node-denied' | 'other';

export interface ErrorFact {
  readonly origin: ErrorOrigin;
  readonly claim: ErrorClaim;
  /** the device's own group, when the line names it */
  readonly group?: number;
  readonly device?: string;
  /** the errno the line gives (`EPERM`, `EINVAL`, ...), when it gives one */
  readonly errno?: string;
  readonly message: string;
  readonly evidence: Evidence;
}

/** a device id registered with vfio-pci or pci-stub (`vfio_pci: add [10de:1e81...]`, `pci-stub: add 10DE:1E81`) */
export interface IdRegistration {
  readonly driver: 'vfio-pci' | 'pci-stub';
  /** `log`: the driver registered the id (dmesg); `config`: a modprobe option or kernel parameter asks for it */
  readonly source: 'log' | 'config';
  readonly vendorId: string;
  readonly deviceId: string;
  readonly evidence: Evidence;
}

/** everything the importers read out of one paste, combined across its blocks */
export interface Facts {
  readonly devices: Map<string, DeviceFacts>;
  readonly groups: Map<number, GroupFacts>;
  readonly errors: ErrorFact[];
  readonly idRegistrations: IdRegistration[];
  /** devices the kernel log shows refusing the blocking domain (S33, require_direct) */
  readonly requireDirect: Map<string, Evidence>;
  /** the same refusal pasted without the device it is about (the poster cut the `vfio-pci 0000:...:` prefix) */
  requireDirectUnnamed?: Evidence;
  /** `Linux version 5.15.0-...`, `uname -r` or the kernel command line's BOOT_IMAGE, when the paste contains it */
  kernelRelease?: string;
  /** evidence that the IOMMU is off for the paste's devices (an unexpanded `iommu_groups/*` glob, "no iommu_group found") */
  iommuOff?: Evidence;
  /**
   * a listing of every IOMMU group (`find /sys/kernel/iommu_groups/`, `IOMMU Group *` from a loop over none) in
   * which no PCI device appears: no PCI device has a group (the IOMMU is off, or covers only platform devices)
   */
  noPciGroups?: Evidence;
  /**
   * `readlink` over a glob of `/sys/bus/pci/devices` (every device's `iommu_group`) prints one group link per device
   * without the device's name: the groups exist, their members cannot be told
   */
  unattributedGroupLinks?: Evidence;
  /** `pcie_acs_override=` on the kernel command line: groups are split by the override, not by the hardware */
  acsOverride?: Evidence;
  /** which input formats were recognised, with the number of lines each contributed */
  readonly formats: Map<EvidenceKind, number>;
  /** contradictions between blocks (a device listed in two groups, two current drivers) */
  readonly conflicts: string[];
  readonly lineCount: number;
}

export const emptyFacts = (lineCount = 0): Facts => ({
  devices: new Map(),
  groups: new Map(),
  errors: [],
  idRegistrations: [],
  requireDirect: new Map(),
  formats: new Map(),
  conflicts: [],
  lineCount,
});
