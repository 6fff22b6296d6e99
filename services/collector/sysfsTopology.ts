import { readFile, readdir, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DomainTypeSchema, ReservedRegionSchema } from '../../schemas/index.js';

export interface ReadTopologyOptions {
  /** @defaultValue '/sys' */
  readonly sysRoot?: string;
  /** `uname -r`, recorded in the capabilities when given */
  readonly kernelRelease?: string;
}

/** the data of a TopologySnapshotTaken, as read from sysfs (protocol.md §2.3) */
export interface TopologyData {
  capabilities: { iommu: boolean; interruptRemapping: boolean | null; allowUnsafeInterrupts: boolean; kernelRelease?: string };
  groups: { group: number; devices: string[]; defaultDomainType?: string; reservedRegions?: { start: string; end: string; type: string }[] }[];
  devices: {
    device: string;
    vendorId: string;
    deviceId: string;
    classCode: string;
    driver: string | null;
    group: number | null;
    headerType?: 'normal' | 'bridge' | 'cardbus';
    cdev?: string;
  }[];
  /** what could not be read, per path: reported, never silently dropped */
  problems: string[];
}

const readText = async (path: string): Promise<string | undefined> => {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
};
const readLinkName = async (path: string): Promise<string | undefined> => {
  try {
    return basename(await readlink(path));
  } catch {
    return undefined;
  }
};
const list = async (path: string): Promise<string[]> => {
  try {
    return (await readdir(path)).sort();
  } catch {
    return [];
  }
};

const HEADER_TYPES = ['normal', 'bridge', 'cardbus'] as const;

// config space byte 0x0e: header layout in bits 0..6 (PCI spec); the first 64 bytes are readable unprivileged
const headerTypeOf = async (deviceDir: string): Promise<'normal' | 'bridge' | 'cardbus' | undefined> => {
  try {
    const config = await readFile(join(deviceDir, 'config'));
    const byte = config[0x0e];
    return byte === undefined ? undefined : HEADER_TYPES[byte & 0x7f];
  } catch {
    return undefined;
  }
};

const parseBool = (text: string | undefined): boolean | undefined => (text === undefined ? undefined : /^(y|1|true)$/i.test(text));

/**
 * A full read of /sys/kernel/iommu_groups and /sys/bus/pci/devices. Read-only; every PCI device is
 * reported, with `group: null` when it has no iommu_group link (no IOMMU, as on many VMs).
 */
export const readTopology = async (options: ReadTopologyOptions = {}): Promise<TopologyData> => {
  const sys = options.sysRoot ?? '/sys';
  const problems: string[] = [];
  const groups: TopologyData['groups'] = [];
  for (const name of await list(join(sys, 'kernel/iommu_groups'))) {
    if (!/^\d+$/.test(name)) continue;
    const dir = join(sys, 'kernel/iommu_groups', name);
    const group: TopologyData['groups'][number] = { group: Number(name), devices: await list(join(dir, 'devices')) };
    const type = await readText(join(dir, 'type'));
    // "DMA-FQ" etc.; a value the catalogue does not know is recorded as unknown rather than dropped
    if (type !== undefined) group.defaultDomainType = DomainTypeSchema.safeParse(type).success ? type : 'unknown';
    const regions = await readText(join(dir, 'reserved_regions'));
    if (regions !== undefined) {
      group.reservedRegions = [];
      for (const line of regions.split('\n').filter((l) => l.trim() !== '')) {
        const [start, end, kind] = line.trim().split(/\s+/);
        const parsed = ReservedRegionSchema.safeParse({ start, end, type: kind });
        if (parsed.success) group.reservedRegions.push({ start: start!, end: end!, type: kind! });
        else problems.push(`${join(dir, 'reserved_regions')}: unreadable line ${JSON.stringify(line)}`);
      }
    }
    groups.push(group);
  }
  const devices: TopologyData['devices'] = [];
  for (const name of await list(join(sys, 'bus/pci/devices'))) {
    const dir = join(sys, 'bus/pci/devices', name);
    const [vendor, device, cls] = await Promise.all(['vendor', 'device', 'class'].map((f) => readText(join(dir, f))));
    if (vendor === undefined || device === undefined || cls === undefined) {
      problems.push(`${dir}: vendor/device/class not readable`);
      continue;
    }
    const groupName = await readLinkName(join(dir, 'iommu_group'));
    const headerType = await headerTypeOf(dir);
    // vfioN, or noiommu-vfioN for a noiommu device under iommufd (7.3)
    const cdev = (await list(join(dir, 'vfio-dev'))).find((n) => /^(?:noiommu-)?vfio\d+$/.test(n));
    devices.push({
      device: name,
      vendorId: vendor.replace(/^0x/, ''),
      deviceId: device.replace(/^0x/, ''),
      classCode: cls.replace(/^0x/, ''),
      driver: (await readLinkName(join(dir, 'driver'))) ?? null,
      group: groupName !== undefined && /^\d+$/.test(groupName) ? Number(groupName) : null,
      ...(headerType ? { headerType } : {}),
      ...(cdev ? { cdev } : {}),
    });
  }
  const unsafe =
    parseBool(await readText(join(sys, 'module/iommufd/parameters/allow_unsafe_interrupts'))) ??
    parseBool(await readText(join(sys, 'module/vfio_iommu_type1/parameters/allow_unsafe_interrupts'))) ??
    false;
  return {
    capabilities: {
      iommu: groups.length > 0,
      // no sysfs attribute states MSI isolation: null says "not observed"
      interruptRemapping: null,
      allowUnsafeInterrupts: unsafe,
      ...(options.kernelRelease ? { kernelRelease: options.kernelRelease } : {}),
    },
    groups,
    devices,
    problems,
  };
};
