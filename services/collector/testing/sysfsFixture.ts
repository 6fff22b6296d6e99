import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

/** a compact description of a host's sysfs; {@link buildSysfs} turns it into the real layout with real symlinks */
export interface SysfsFixture {
  readonly groups: Record<string, { readonly type?: string; readonly reservedRegions?: readonly string[] }>;
  readonly devices: readonly {
    readonly bdf: string;
    /** path under /sys/devices of the parent, e.g. pci0000:00/0000:00:01.0 */
    readonly parent: string;
    readonly vendor: string;
    readonly device: string;
    readonly class: string;
    readonly driver: string | null;
    readonly group: number | null;
    /** config space header type byte (0 normal, 1 bridge) */
    readonly header?: number;
    readonly cdev?: string;
  }[];
  readonly moduleParams?: Record<string, string>;
}

const link = (target: string, at: string): void => {
  mkdirSync(dirname(at), { recursive: true });
  symlinkSync(relative(dirname(at), target), at);
};

/** builds the tree in a new temp dir and returns the sysfs root */
export const buildSysfs = (fixture: SysfsFixture): string => {
  const sys = join(mkdtempSync(join(tmpdir(), 'sysfs-')), 'sys');
  for (const [n, g] of Object.entries(fixture.groups)) {
    const dir = join(sys, 'kernel/iommu_groups', n);
    mkdirSync(join(dir, 'devices'), { recursive: true });
    if (g.type) writeFileSync(join(dir, 'type'), `${g.type}\n`);
    writeFileSync(join(dir, 'reserved_regions'), (g.reservedRegions ?? []).map((r) => `${r}\n`).join(''));
  }
  mkdirSync(join(sys, 'bus/pci/devices'), { recursive: true });
  for (const d of fixture.devices) {
    const dir = join(sys, 'devices', d.parent, d.bdf);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'vendor'), `${d.vendor}\n`);
    writeFileSync(join(dir, 'device'), `${d.device}\n`);
    writeFileSync(join(dir, 'class'), `${d.class}\n`);
    const config = Buffer.alloc(64);
    config[0x0e] = d.header ?? 0;
    writeFileSync(join(dir, 'config'), config);
    link(dir, join(sys, 'bus/pci/devices', d.bdf));
    if (d.driver) {
      const drv = join(sys, 'bus/pci/drivers', d.driver);
      mkdirSync(drv, { recursive: true });
      link(drv, join(dir, 'driver'));
      link(dir, join(drv, d.bdf));
    }
    if (d.group !== null) {
      const g = join(sys, 'kernel/iommu_groups', String(d.group));
      link(g, join(dir, 'iommu_group'));
      link(dir, join(g, 'devices', d.bdf));
    }
    if (d.cdev) mkdirSync(join(dir, 'vfio-dev', d.cdev), { recursive: true });
  }
  for (const [path, value] of Object.entries(fixture.moduleParams ?? {})) {
    mkdirSync(dirname(join(sys, 'module', path)), { recursive: true });
    writeFileSync(join(sys, 'module', path), `${value}\n`);
  }
  return sys;
};
