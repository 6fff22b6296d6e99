import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../schemas/index.js';
import { readTopology } from './sysfsTopology.js';
import { buildSysfs, type SysfsFixture } from './testing/sysfsFixture.js';

const workstation = JSON.parse(readFileSync(fileURLToPath(new URL('./fixtures/workstation.sysfs.json', import.meta.url)), 'utf8')) as SysfsFixture;

describe('readTopology > fixture sysfs tree (real layout, real symlinks)', () => {
  it('given the workstation tree, when read, then groups, members, drivers, types and reserved regions match and the snapshot validates', async () => {
    const sys = buildSysfs(workstation);
    const t = await readTopology({ sysRoot: sys, kernelRelease: '6.8.0-45-generic' });
    expect(t.groups.map((g) => [g.group, g.devices])).toEqual([
      [1, ['0000:00:01.0', '0000:01:00.0', '0000:01:00.1']],
      [11, ['0000:02:00.0']],
      [4, ['0000:00:14.0']],
    ]);
    expect(t.groups.find((g) => g.group === 4)!.reservedRegions).toContainEqual({ start: '0x000000007e46e000', end: '0x000000007e48dfff', type: 'direct' });
    expect(t.groups.find((g) => g.group === 1)!.defaultDomainType).toBe('DMA-FQ');
    const gpu = t.devices.find((d) => d.device === '0000:01:00.0')!;
    expect(gpu).toEqual({ device: '0000:01:00.0', vendorId: '10de', deviceId: '1e81', classCode: '030000', driver: 'vfio-pci', group: 1, headerType: 'normal', cdev: 'vfio0' });
    expect(t.devices.find((d) => d.device === '0000:00:01.0')!.headerType).toBe('bridge');
    // a device without a group is reported with group null, not dropped
    expect(t.devices.find((d) => d.device === '0000:00:1f.4')).toMatchObject({ driver: null, group: null });
    expect(t.capabilities).toMatchObject({ iommu: true, allowUnsafeInterrupts: false, kernelRelease: '6.8.0-45-generic' });
    const { problems, ...data } = t;
    expect(problems).toEqual([]);
    expect(() => createEventBuilder({ host: 'ws', source: 'collector' }).event('TopologySnapshotTaken', data as never)).not.toThrow();
  });

  it('issue 19 (7.3): given a noiommu device with a noiommu-vfioN cdev and no group, when read, then its cdev is kept and the snapshot validates', async () => {
    const nic = workstation.devices.find((d) => d.bdf === '0000:02:00.0')!;
    const sys = buildSysfs({ groups: {}, devices: [{ ...nic, group: null, driver: 'vfio-pci', cdev: 'noiommu-vfio0' }] });
    const t = await readTopology({ sysRoot: sys, kernelRelease: '7.3.0' });
    expect(t.devices[0]).toMatchObject({ device: '0000:02:00.0', group: null, cdev: 'noiommu-vfio0' });
    const { problems, ...data } = t;
    expect(problems).toEqual([]);
    expect(() => createEventBuilder({ host: 'ws', source: 'collector' }).event('TopologySnapshotTaken', data as never)).not.toThrow();
  });

  it('given a tree without iommu_groups, when read, then every device is kept with group null and iommu false', async () => {
    const sys = buildSysfs({ groups: {}, devices: workstation.devices.map((d) => ({ ...d, group: null })) });
    const t = await readTopology({ sysRoot: sys });
    expect(t.devices).toHaveLength(workstation.devices.length);
    expect(t.devices.every((d) => d.group === null)).toBe(true);
    expect(t.capabilities.iommu).toBe(false);
  });
});

// this machine: a VM with PCI devices and no IOMMU groups (read-only)
const realPci = existsSync('/sys/bus/pci/devices') ? readdirSync('/sys/bus/pci/devices') : [];
describe.skipIf(realPci.length === 0)('readTopology > this machine /sys (read-only)', () => {
  it('given the real /sys, when read, then every PCI device is reported with its ids and no group', async () => {
    const t = await readTopology();
    expect(t.devices.map((d) => d.device).sort()).toEqual([...realPci].sort());
    const hasGroups = existsSync('/sys/kernel/iommu_groups') && readdirSync('/sys/kernel/iommu_groups').length > 0;
    expect(t.capabilities.iommu).toBe(hasGroups);
    if (!hasGroups) expect(t.devices.every((d) => d.group === null)).toBe(true);
    for (const d of t.devices) expect(d.vendorId).toMatch(/^[0-9a-f]{4}$/);
    const { problems: _p, ...data } = t;
    expect(() => createEventBuilder({ host: 'this-vm', source: 'collector' }).event('TopologySnapshotTaken', data as never)).not.toThrow();
  });
});
