/**
 * The illustrative topology of protocol.md §3, shared by the projection and replay tests:
 * group 7 = GPU + HDMI audio (+ a hot-added USB-C function), group 9 = root port + xHCI (no ACS),
 * group 12 = a singleton NIC, group 15 = a USB controller with an RMRR, group 30 = three functions.
 */
export const GPU = '0000:01:00.0';
export const AUDIO = '0000:01:00.1';
export const USBC = '0000:01:00.2';
export const ROOT_PORT = '0000:00:1c.0';
export const XHCI = '0000:02:00.0';
export const NIC = '0000:03:00.0';
export const USB_RMRR = '0000:00:14.0';
export const DEV_A = '0000:07:00.0';
export const DEV_B = '0000:07:00.1';
export const DEV_C = '0000:07:00.2';

/** one device of the reference topology as a TopologySnapshotTaken reports it */
export interface ReferenceDeviceSpec {
  readonly vendorId: string;
  readonly deviceId: string;
  readonly classCode: string;
  readonly driver: string | null;
  readonly group: number;
  readonly headerType?: 'normal' | 'bridge';
  readonly requireDirect?: boolean;
  readonly maxPasids?: number;
  readonly pasidAttach?: boolean;
  /** an SR-IOV VF's PF / a PF's sriov_totalvfs (issue 19: the VF token) */
  readonly physfn?: string;
  readonly sriovTotalVfs?: number;
}

/**
 * The topology table, once for every suite (issue 16: one recorder for test scenarios): protocol.md §3 with each
 * device's real ids and usual driver. A suite that starts elsewhere (the projection scenarios: vfio-bound
 * devices) says so with per-device overrides, not a table of its own.
 */
export const REFERENCE_TOPOLOGY: Readonly<Record<string, ReferenceDeviceSpec>> = {
  [GPU]: { vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'nouveau', group: 7 },
  [AUDIO]: { vendorId: '10de', deviceId: '10f8', classCode: '040300', driver: 'snd_hda_intel', group: 7 },
  [ROOT_PORT]: { vendorId: '8086', deviceId: 'a110', classCode: '060400', driver: 'pcieport', group: 9, headerType: 'bridge' },
  [XHCI]: { vendorId: '1912', deviceId: '0014', classCode: '0c0330', driver: 'xhci_hcd', group: 9 },
  [NIC]: { vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'igb', group: 12 },
  [USB_RMRR]: { vendorId: '8086', deviceId: 'a36d', classCode: '0c0330', driver: 'xhci_hcd', group: 15, requireDirect: true },
  [DEV_A]: { vendorId: '8086', deviceId: '10fb', classCode: '020000', driver: 'ixgbe', group: 30 },
  [DEV_B]: { vendorId: '8086', deviceId: '10fb', classCode: '020000', driver: 'ixgbe', group: 30 },
  [DEV_C]: { vendorId: '8086', deviceId: '10fb', classCode: '020000', driver: null, group: 30 },
};

export interface ReferenceTopologyOptions {
  /** per-device driver overrides (null = no driver), applied last */
  readonly drivers?: Readonly<Record<string, string | null>>;
  /** per-device field overrides */
  readonly devices?: Readonly<Record<string, Partial<ReferenceDeviceSpec>>>;
  readonly subGroups?: Readonly<Record<number, string[][]>>;
  /** /sys/kernel/iommu_groups/N/type per group, when the history needs it ("unknown": no default domain yet) */
  readonly defaultDomainTypes?: Readonly<Record<number, 'unknown' | 'DMA' | 'DMA-FQ' | 'identity'>>;
}

/** the reference devices in table order, with `options.devices` applied (drivers not yet) */
export const referenceDevices = (options: Pick<ReferenceTopologyOptions, 'devices'> = {}): (ReferenceDeviceSpec & { readonly device: string })[] =>
  Object.entries(REFERENCE_TOPOLOGY).map(([device, spec]) => ({ device, ...spec, ...(options.devices?.[device] ?? {}) }));

/** a TopologySnapshotTaken's `groups` and `devices` for the reference topology (the caller adds `capabilities`) */
export const referenceTopology = (options: ReferenceTopologyOptions = {}) => {
  const specs = referenceDevices(options);
  const groupNums = [...new Set(specs.map((s) => s.group))].sort((x, y) => x - y);
  return {
    groups: groupNums.map((group) => ({
      group,
      devices: specs.filter((s) => s.group === group).map((s) => s.device),
      ...(options.subGroups?.[group] ? { subGroups: options.subGroups[group] } : {}),
      ...(options.defaultDomainTypes?.[group] ? { defaultDomainType: options.defaultDomainTypes[group] } : {}),
    })),
    devices: specs.map((s) => ({
      device: s.device,
      vendorId: s.vendorId,
      deviceId: s.deviceId,
      classCode: s.classCode,
      driver: options.drivers && s.device in options.drivers ? options.drivers[s.device]! : s.driver,
      group: s.group,
      ...(s.headerType ? { headerType: s.headerType } : {}),
      ...(s.requireDirect ? { requireDirect: true } : {}),
      ...(s.maxPasids !== undefined ? { maxPasids: s.maxPasids } : {}),
      ...(s.pasidAttach ? { pasidAttach: true } : {}),
      ...(s.physfn !== undefined ? { physfn: s.physfn } : {}),
      ...(s.sriovTotalVfs !== undefined ? { sriovTotalVfs: s.sriovTotalVfs } : {}),
    })),
  };
};
