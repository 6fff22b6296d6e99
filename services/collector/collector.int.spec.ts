import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createCollector, type LineAudit } from './collector.js';
import { openSpool } from './spool.js';

const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), 'utf8');

// captured in the kernel oracle's guest (Debian 6.12.118, VT-d, scenarios s01 and s05): every
// NETLINK_KOBJECT_UEVENT datagram (hex, one a line) and every trace_pipe line with iommu:* enabled
const NETLINK = fixture('kernel-6.12-netlink.hex');
const TRACE = fixture('kernel-6.12-trace_pipe.txt');

const collect = async (): Promise<{ audit: LineAudit[]; types: string[]; ignored: Record<string, number> }> => {
  const spool = openSpool({ path: join(mkdtempSync(join(tmpdir(), 'collector-kernel-')), 'spool.sqlite'), host: 'oracle', durability: 'normal' });
  const audit: LineAudit[] = [];
  try {
    const c = createCollector(spool, { sysRoot: join(tmpdir(), 'no-sysfs-here'), audit: (a) => audit.push(a) });
    await c.readNetlinkHex(Readable.from([NETLINK]));
    await c.readTracePipe(Readable.from([TRACE]));
    return { audit, types: spool.peek(1000).map((e) => e.event.type), ignored: c.stats.ignored };
  } finally {
    spool.close();
  }
};

describe('collector > real kernel output (kernel oracle captures)', () => {
  it('kernel oracle assert 3: given real uevent datagrams and trace_pipe lines, when read, then every line is an event or ignored by a named rule', async () => {
    const { audit, types, ignored } = await collect();
    const kernelLines = NETLINK.trim().split('\n').length + TRACE.trim().split('\n').length;
    expect(audit.filter((a) => a.line !== '')).toHaveLength(kernelLines);
    expect(audit.filter((a) => a.outcome === undefined || a.outcome.kind === 'invalid')).toEqual([]);
    // the kernel's bind/unbind uevents are driver events; the vfio/net/queues/ptp children are not PCI
    expect(types.filter((t) => t === 'DriverBound')).toHaveLength(3);
    expect(types.filter((t) => t === 'DriverUnbound')).toHaveLength(3);
    expect(types.filter((t) => t === 'TraceAttachDeviceToDomain').length).toBeGreaterThan(0);
    expect(ignored['uevent.not-pci']).toBe(18);
    expect(ignored['trace.iommu-map-unmap']).toBeGreaterThan(0);
  });

  it('issue 17: an unbind names the driver the bind before it named, when both arrive in one read (was: the driver bound before the read)', async () => {
    // seen in the kernel oracle: the host-side run reads a step's uevents in one chunk, the in-guest collector one by one
    const block = (action: string, driver?: string): string =>
      [`KERNEL[1.0] ${action} /devices/pci0000:00/0000:00:03.0 (pci)`, `ACTION=${action}`, 'DEVPATH=/devices/pci0000:00/0000:00:03.0', 'SUBSYSTEM=pci', ...(driver ? [`DRIVER=${driver}`] : []), 'PCI_SLOT_NAME=0000:00:03.0', 'SEQNUM=1', '', ''].join('\n');
    const spool = openSpool({ path: join(mkdtempSync(join(tmpdir(), 'collector-unbind-')), 'spool.sqlite'), host: 'h', durability: 'normal' });
    try {
      const c = createCollector(spool, { sysRoot: join(tmpdir(), 'no-sysfs-here') });
      await c.readUdevadm(Readable.from([block('bind', 'e1000e')]));
      await c.readUdevadm(Readable.from([block('unbind') + block('bind', 'vfio-pci') + block('unbind')]));
      const unbound = spool.peek(100).flatMap((e) => (e.event.type === 'DriverUnbound' ? [e.event.data.driver] : []));
      expect(unbound).toEqual(['e1000e', 'vfio-pci']);
    } finally {
      spool.close();
    }
  });

  it('kernel oracle mock #8: a hotplug snapshot taken in the background is spooled before the uevents read after it (was: after them, so the projection went back to the drivers it read first)', async () => {
    // seen in the kernel oracle: the snapshots of s14's remove/rescan were spooled after s15's unbind/bind, and the
    // end-of-boot projection showed the driver from before s15
    const block = (action: string, device: string, driver?: string): string =>
      [`KERNEL[1.0] ${action} /devices/pci0000:00/${device} (pci)`, `ACTION=${action}`, `DEVPATH=/devices/pci0000:00/${device}`, 'SUBSYSTEM=pci', ...(driver ? [`DRIVER=${driver}`] : []), `PCI_SLOT_NAME=${device}`, 'SEQNUM=1', '', ''].join('\n');
    const spool = openSpool({ path: join(mkdtempSync(join(tmpdir(), 'collector-order-')), 'spool.sqlite'), host: 'h', durability: 'normal' });
    try {
      const c = createCollector(spool, { sysRoot: join(tmpdir(), 'no-sysfs-here') });
      await c.readUdevadm(Readable.from([block('remove', '0000:01:02.0')]));
      await c.readUdevadm(Readable.from([block('unbind', '0000:00:03.0') + block('bind', '0000:00:03.0', 'vfio-pci')]));
      await c.snapshotsSpooled();
      expect(spool.peek(100).map((e) => e.event.type)).toEqual(['TopologySnapshotTaken', 'DriverUnbound', 'DriverBound']);
    } finally {
      spool.close();
    }
  });
});
