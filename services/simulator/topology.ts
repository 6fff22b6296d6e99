/**
 * Host topologies as real servers have them: GPUs whose audio/USB/UCSI functions share the GPU's group,
 * NICs with SR-IOV virtual functions in singleton groups, dual-port NICs without ACS sharing a group, NVMe and
 * SATA controllers, root ports without ACS sharing a group with the device below them, the integrated PCH
 * functions, and hosts without an IOMMU (every group null).
 */
import type { Rng } from './prng.js';

export type DeviceRole =
  | 'gpu'
  | 'gpu-audio'
  | 'gpu-usb'
  | 'gpu-ucsi'
  | 'nic-pf'
  | 'nic-vf'
  | 'nvme'
  | 'sata'
  | 'root-port'
  | 'integrated';

export interface SimDevice {
  readonly name: string;
  readonly vendorId: string;
  readonly deviceId: string;
  readonly classCode: string;
  readonly role: DeviceRole;
  /** the kernel driver it has at boot and gets back after passthrough; null for driver-less functions */
  readonly kernelDriver: string | null;
  readonly headerType?: 'bridge' | undefined;
  readonly requireDirect?: boolean | undefined;
  /** null on hosts without an IOMMU */
  group: number | null;
}

export interface SimGroup {
  readonly group: number;
  readonly devices: string[];
}

/** a set of devices a VM takes together: every device of the group that it passes through, plus the
 * group members that must leave their kernel driver for the group to be viable (spares) */
export interface PassthroughUnit {
  readonly kind: 'gpu' | 'vf' | 'nic-port' | 'nvme';
  /** changes when a hot-swapped device comes back in a new group */
  group: number;
  /** devices the VM opens */
  readonly devices: readonly string[];
  /** other members of the group with a kernel DMA driver: moved to vfio-pci but not opened */
  readonly spares: readonly string[];
}

export type HostProfile = 'gpu' | 'nic' | 'storage' | 'workstation' | 'no-iommu';

export interface SimHost {
  readonly name: string;
  readonly profile: HostProfile;
  readonly iommu: boolean;
  readonly kernelRelease: string;
  readonly devices: SimDevice[];
  readonly groups: SimGroup[];
  readonly units: PassthroughUnit[];
}

/** `uname -r` values, each with its relative weight among the hosts */
export type KernelMix = readonly (readonly [release: string, weight: number])[];

/**
 * The releases a fleet runs, by weight (`SimulateFleetOptions.kernelMix` sets another mix): Debian 12's 6.1
 * (no iommufd, no VFIO cdev) beside releases from 6.6 on. The kernel answers each host as its release does
 * (projections/kernel/releases.ts), and hostLife.ts follows the answer: a VM launch whose open of /dev/iommu
 * or of the cdev is refused stops there (QEMU reports it), so a 6.1 host passes devices through the legacy
 * container API only.
 */
export const DEFAULT_KERNEL_MIX: KernelMix = [
  ['6.1.0-28-amd64', 1],
  ['6.8.0-51-generic', 1],
  ['6.6.58', 1],
  ['6.11.0-9-generic', 1],
  ['6.12.10-200.fc41.x86_64', 1],
  ['6.10.11-amd64', 1],
];

const GPUS = [
  { vendor: '10de', gpu: '2230', audio: '1aef', usb: '1ada', ucsi: '1adb', driver: 'nvidia' },
  { vendor: '10de', gpu: '2204', audio: '1aef', usb: '1ada', ucsi: '1adb', driver: 'nvidia' },
  { vendor: '10de', gpu: '1eb8', audio: '10f8', usb: '1ad8', ucsi: '1ad9', driver: 'nouveau' },
  { vendor: '1002', gpu: '73bf', audio: 'ab28', usb: null, ucsi: null, driver: 'amdgpu' },
] as const;

const NICS = [
  { vendor: '8086', pf: '1593', vf: '1889', pfDriver: 'ice', vfDriver: 'iavf' },
  { vendor: '15b3', pf: '101b', vf: '101c', pfDriver: 'mlx5_core', vfDriver: 'mlx5_core' },
] as const;

const hex2 = (n: number) => n.toString(16).padStart(2, '0');
/** PCI addresses, made once each: hosts rebuilt from their seed share the strings (bus < 256, dev < 32, fn < 8) */
const BDFS = new Map<number, string>();
const bdf = (bus: number, dev: number, fn: number): string => {
  const key = (bus << 8) | (dev << 3) | fn;
  let name = BDFS.get(key);
  if (name === undefined) BDFS.set(key, (name = `0000:${hex2(bus)}:${hex2(dev)}.${fn}`));
  return name;
};

export const createHostTopology = (rng: Rng, name: string, profile: HostProfile, kernels: KernelMix = DEFAULT_KERNEL_MIX): SimHost => {
  const iommu = profile !== 'no-iommu';
  const devices: SimDevice[] = [];
  const groups: SimGroup[] = [];
  const units: PassthroughUnit[] = [];
  let nextGroup = 0;
  let nextBus = 1;
  let rootPorts = 0;
  /** put devices in one new group (or none without an IOMMU) */
  const group = (members: SimDevice[]): number => {
    const g = iommu ? nextGroup++ : null;
    for (const m of members) {
      m.group = g;
      devices.push(m);
    }
    if (g !== null) groups.push({ group: g, devices: members.map((m) => m.name) });
    return g ?? -1;
  };
  // one shape for every device (no spread): a host is built again each time it is rebuilt from its seed
  const dev = (
    name: string,
    vendorId: string,
    deviceId: string,
    classCode: string,
    role: DeviceRole,
    kernelDriver: string | null,
    extra: { readonly headerType?: 'bridge'; readonly requireDirect?: boolean } = {},
  ): SimDevice => ({ name, vendorId, deviceId, classCode, role, kernelDriver, headerType: extra.headerType, requireDirect: extra.requireDirect, group: null });

  // the integrated platform every host has
  group([dev(bdf(0, 0, 0), '8086', '3e30', '060000', 'integrated', null)]);
  group([dev(bdf(0, 0x14, 0), '8086', 'a36d', '0c0330', 'integrated', 'xhci_hcd', { requireDirect: true })]);
  group([dev(bdf(0, 0x17, 0), '8086', 'a352', '010601', 'sata', 'ahci')]);
  group([
    dev(bdf(0, 0x1f, 0), '8086', 'a306', '060100', 'integrated', 'lpc_ich'),
    dev(bdf(0, 0x1f, 3), '8086', 'a348', '040300', 'integrated', 'snd_hda_intel'),
    dev(bdf(0, 0x1f, 4), '8086', 'a323', '0c0500', 'integrated', 'i801_smbus'),
    dev(bdf(0, 0x1f, 5), '8086', 'a324', '0c8000', 'integrated', 'intel-spi'),
  ]);

  const addGpu = (): void => {
    const model = rng.pick(GPUS);
    const bus = nextBus++;
    const fns = [
      dev(bdf(bus, 0, 0), model.vendor, model.gpu, '030000', 'gpu', model.driver),
      dev(bdf(bus, 0, 1), model.vendor, model.audio, '040300', 'gpu-audio', 'snd_hda_intel'),
    ];
    if (model.usb !== null && rng.chance(0.6)) fns.push(dev(bdf(bus, 0, 2), model.vendor, model.usb, '0c0330', 'gpu-usb', 'xhci_hcd'));
    if (model.ucsi !== null && fns.length === 3) fns.push(dev(bdf(bus, 0, 3), model.vendor, model.ucsi, '0c8000', 'gpu-ucsi', 'nvidia-gpu'));
    // a root port without ACS lands in the group of the device below it (pcieport is driver_managed_dma)
    const members = rng.chance(0.25) ? [dev(bdf(0, 1 + (rootPorts >> 3), rootPorts++ & 7), '8086', 'a340', '060400', 'root-port', 'pcieport', { headerType: 'bridge' }), ...fns] : fns;
    const g = group(members);
    if (iommu)
      units.push({
        kind: 'gpu',
        group: g,
        devices: fns.slice(0, 2).map((f) => f.name),
        spares: fns.slice(2).map((f) => f.name),
      });
  };

  const addNic = (vfs: number): void => {
    const model = rng.pick(NICS);
    const bus = nextBus++;
    const dualNoAcs = rng.chance(0.3);
    const ports = dualNoAcs ? [0, 1] : [0];
    const pfs = ports.map((p) => dev(bdf(bus, 0, p), model.vendor, model.pf, '020000', 'nic-pf', model.pfDriver));
    if (dualNoAcs) {
      // both ports in one group: a VM taking port 0 must also move port 1 off its kernel driver
      const g = group(pfs);
      if (iommu) units.push({ kind: 'nic-port', group: g, devices: [pfs[0]!.name], spares: [pfs[1]!.name] });
    } else for (const pf of pfs) group([pf]);
    const vfBus = nextBus++;
    for (let i = 0; i < vfs; i++) {
      const vf = dev(bdf(vfBus, i >> 3, i & 7), model.vendor, model.vf, '020000', 'nic-vf', model.vfDriver);
      const g = group([vf]);
      if (iommu) units.push({ kind: 'vf', group: g, devices: [vf.name], spares: [] });
    }
  };

  const addNvme = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const d = dev(bdf(nextBus++, 0, 0), '144d', 'a80a', '010802', 'nvme', 'nvme');
      const g = group([d]);
      // keep one NVMe for the host's own root file system
      if (iommu && i > 0) units.push({ kind: 'nvme', group: g, devices: [d.name], spares: [] });
    }
  };

  switch (profile) {
    case 'gpu':
      for (let i = rng.int(2, 8); i > 0; i--) addGpu();
      addNic(rng.int(0, 4));
      addNvme(rng.int(1, 3));
      break;
    case 'nic':
      addNic(rng.int(4, 16));
      if (rng.chance(0.5)) addNic(rng.int(2, 8));
      addNvme(rng.int(1, 2));
      break;
    case 'storage':
      addNvme(rng.int(4, 12));
      addNic(rng.int(0, 2));
      break;
    case 'workstation':
      addGpu();
      addNvme(rng.int(1, 2));
      break;
    case 'no-iommu':
      addNic(rng.int(0, 4));
      addNvme(rng.int(1, 4));
      if (rng.chance(0.5)) addGpu();
      break;
    default: {
      const never: never = profile;
      throw new Error(`unknown host profile ${String(never)}`);
    }
  }
  return { name, profile, iommu, kernelRelease: rng.weighted(kernels), devices, groups, units };
};
