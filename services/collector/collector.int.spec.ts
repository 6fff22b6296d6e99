import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createCollector, type LineAudit } from './collector.js';
import type { TraceReadEmpty } from './followTracePipe.js';
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

describe('collector > uevents and trace lines in kernel order', () => {
  const TRACE_LINE = (secs: string, event: string, body: string): string => `  itguest-42 [000] ..... ${secs}: ${event}: ${body}\n`;
  const bindBlock = (secs: string, device: string, driver: string): string =>
    [`KERNEL[${secs}] bind /devices/pci0000:00/${device} (pci)`, 'ACTION=bind', `DEVPATH=/devices/pci0000:00/${device}`, 'SUBSYSTEM=pci', `DRIVER=${driver}`, `PCI_SLOT_NAME=${device}`, 'SEQNUM=24', '', ''].join('\n');
  const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it('issue 17/19 order: a trace line the kernel wrote before a uevent but read after it is spooled before it (was: after, so s14\'s re-add of 01:02.0 undid s15\'s bind)', async () => {
    // seen in the kernel oracle: trace_pipe lines of s14's second remove/rescan reached the collector after s15's
    // bind uevent; the projection re-added 01:02.0 without its driver
    const spool = openSpool({ path: join(mkdtempSync(join(tmpdir(), 'collector-kernel-order-')), 'spool.sqlite'), host: 'h', durability: 'normal' });
    try {
      const c = createCollector(spool, { sysRoot: join(tmpdir(), 'no-sysfs-here'), traceClockMono: true });
      let ueventSent!: () => void;
      const sent = new Promise<void>((r) => (ueventSent = r));
      // a live trace_pipe: empty at first, then the lines the kernel wrote at 5.0 (before the bind) and 7.0 (after it)
      async function* trace(): AsyncGenerator<Buffer | TraceReadEmpty> {
        yield { emptyReadStartedNs: process.hrtime.bigint() };
        await sent;
        await tick(50);
        yield Buffer.from(TRACE_LINE('5.000000', 'add_device_to_group', 'IOMMU: groupID=7 device=0000:01:02.0') + TRACE_LINE('7.000000', 'attach_device_to_domain', 'IOMMU: device=0000:00:03.0'));
        yield { emptyReadStartedNs: process.hrtime.bigint() };
      }
      async function* udev(): AsyncGenerator<string> {
        await tick(20);
        ueventSent();
        yield bindBlock('6.000000', '0000:00:03.0', 'vfio-pci');
      }
      await Promise.all([c.readTracePipe(Readable.from(trace())), c.readUdevadm(Readable.from(udev()))]);
      expect(spool.peek(100).map((e) => e.event.type)).toEqual(['TraceAddDeviceToGroup', 'DriverBound', 'TraceAttachDeviceToDomain']);
    } finally {
      spool.close();
    }
  });

  it('issue 17/19 order: a uevent is held at most maxHoldMs when trace_pipe stops answering, and a stop drains both sources', async () => {
    const spool = openSpool({ path: join(mkdtempSync(join(tmpdir(), 'collector-kernel-hold-')), 'spool.sqlite'), host: 'h', durability: 'normal' });
    try {
      const c = createCollector(spool, { sysRoot: join(tmpdir(), 'no-sysfs-here'), traceClockMono: true, maxHoldMs: 50 });
      let udevDone!: () => void;
      const done = new Promise<void>((r) => (udevDone = r));
      // trace_pipe answers once, then stalls until the uevent went into the spool, then ends (a stop)
      async function* trace(): AsyncGenerator<Buffer | TraceReadEmpty> {
        yield { emptyReadStartedNs: process.hrtime.bigint() };
        await done;
        yield Buffer.from(TRACE_LINE('9.000000', 'attach_device_to_domain', 'IOMMU: device=0000:00:03.0'));
      }
      async function* udev(): AsyncGenerator<string> {
        await tick(20);
        yield bindBlock('6.000000', '0000:00:03.0', 'vfio-pci');
      }
      const traced = c.readTracePipe(Readable.from(trace()));
      await c.readUdevadm(Readable.from(udev()));
      udevDone();
      await traced;
      expect(spool.peek(100).map((e) => e.event.type)).toEqual(['DriverBound', 'TraceAttachDeviceToDomain']);
    } finally {
      spool.close();
    }
  });
});
