import { describe, expect, it } from 'vitest';
import { parseEvent } from '../../../schemas/index.js';
import type { EventDraft, ParseOutcome } from '../eventDraft.js';
import { parseBpftraceLine } from './bpftrace.js';
import { createTracePipeParser, parseTracePipeLine } from './tracePipe.js';
import { createUdevadmParser, parseNetlinkUevent, ueventToDraft } from './uevent.js';

const draft = (o: ParseOutcome): EventDraft => {
  if (o.kind !== 'event') throw new Error(`expected an event, got ${JSON.stringify(o)}`);
  return o.draft;
};
// the catalogue must accept what the parsers produce
const validates = (d: EventDraft): boolean =>
  parseEvent({ id: '01890a5d-ac96-774b-bcce-b302099a8057', schemaVersion: d.type === 'VfioDeviceAttachPtIssued' ? 2 : 1, host: 'h', seq: 1, time: '1', ...d, monoNs: d.monoNs?.toString() }).ok;

describe('trace_pipe parser', () => {
  it('given an add_device_to_group line, when parsed, then group, device, pid, comm, monotonic time and the raw line are kept', () => {
    const line = '            bash-2291    [002] .....   812.004511: add_device_to_group: IOMMU: groupID=1 device=0000:01:00.2';
    const d = draft(parseTracePipeLine(line));
    expect(d).toMatchObject({ type: 'TraceAddDeviceToGroup', source: 'ftrace', monoNs: 812_004_511_000n, actor: { pid: 2291, comm: 'bash' }, data: { group: 1, device: '0000:01:00.2', line } });
    expect(validates(d)).toBe(true);
  });

  it('given an io_page_fault line with irq flags, when parsed, then driver, iova and flags are read', () => {
    const d = draft(parseTracePipeLine(' qemu-system-x86-4242    [001] d.h1.   901.551200: io_page_fault: IOMMU:vfio-pci 0000:01:00.0 iova=0x00000000fee00000 flags=0x0002'));
    expect(d.data).toMatchObject({ driver: 'vfio-pci', device: '0000:01:00.0', iova: '0x00000000fee00000', flags: 2 });
    expect(d.actor).toEqual({ pid: 4242, comm: 'qemu-system-x86' });
    expect(validates(d)).toBe(true);
  });

  it('given an older line without the flags column or with a tgid column, when parsed, then it is still read', () => {
    expect(draft(parseTracePipeLine('  bash-1 [000]   5.000001: attach_device_to_domain: IOMMU: device=0000:00:02.0')).data.device).toBe('0000:00:02.0');
    expect(draft(parseTracePipeLine('  bash-7 (      7) [000] ....   5.1: remove_device_from_group: IOMMU: groupID=3 device=0000:00:02.0')).type).toBe('TraceRemoveDeviceFromGroup');
  });

  it('given map lines or a mangled iommu event, when parsed, then map is ignored and the mangled one invalid', () => {
    expect(parseTracePipeLine(' q-1 [003] ..... 902.0: map: IOMMU: iova=0x1 - 0x2 paddr=0x3 size=1')).toEqual({ kind: 'ignored', rule: 'trace.iommu-map-unmap' });
    expect(parseTracePipeLine(' q-1 [003] ..... 902.0: attach_device_to_domain: IOMMU: dev 0000:00:02.0').kind).toBe('invalid');
  });
});

describe('trace_pipe signals of newer kernels (issue 19)', () => {
  // drivers/iommu/intel/trace.h cache_tag_log: TP_printk("%s/%s type %s did %d pasid %d ref %d"); line shape as in
  // the patch that added it (Lu Baolu, "iommu/vt-d: Add trace events for cache tag interface", 2024-04-16)
  it('issue 19: given an intel cache_tag_assign line, when parsed, then the DMAR unit, device, tag type, domain id, PASID and users are read', () => {
    const line = '  qemu-system-x86-4242    [001] .....  950.000100: cache_tag_assign: dmar9/0000:00:01.0 type devtlb did 1 pasid 9 ref 1';
    const d = draft(parseTracePipeLine(line));
    expect(d).toMatchObject({ type: 'TraceCacheTag', actor: { pid: 4242 }, data: { action: 'assign', iommu: 'dmar9', device: '0000:00:01.0', tagType: 'devtlb', domainId: 1, pasid: 9, ref: 1, line } });
    expect(validates(d)).toBe(true);
    const un = draft(parseTracePipeLine('  qemu-system-x86-4242    [001] .....  951.0: cache_tag_unassign: dmar0/0000:03:00.0 type nesting_iotlb did 3 pasid 0 ref 0'));
    expect(un.data).toMatchObject({ action: 'unassign', tagType: 'nesting_iotlb', domainId: 3, pasid: 0, ref: 0 });
    expect(validates(un)).toBe(true);
  });

  it('issue 19: given cache_tag flush lines and their continuation, when parsed, then they are ignored by name, and a mangled assign is invalid', () => {
    expect(parseTracePipeLine(' q-1 [003] ..... 902.0: cache_tag_flush_range: dmar1 0000:00:1b.0[0] type iotlb did 9')).toEqual({ kind: 'ignored', rule: 'trace.intel-cache-tag-flush' });
    expect(parseTracePipeLine('\t[0xeaa40000-0xeaa51fff] addr 0xeaa40000 pages 0x20 mask 0x5')).toEqual({ kind: 'ignored', rule: 'trace.not-a-trace-line' });
    expect(parseTracePipeLine(' q-1 [003] ..... 902.0: cache_tag_assign: dmar1 0000:00:1b.0 type iotlb').kind).toBe('invalid');
  });

  // 7.0 pci_dev_reset_iommu_prepare/done, seen through the collector's kprobes (trace_kprobe.c print_kprobe_event /
  // print_kretprobe_event shapes); the attach lines between entry and return are the fence, not ownership changes
  const reset = [
    '  qemu-system-x86-4242    [001] .....  960.000001: iommutrail_reset_prepare: (pci_dev_reset_iommu_prepare+0x0/0x1c0) dev="0000:03:00.0"',
    '  qemu-system-x86-4242    [001] .....  960.000002: attach_device_to_domain: IOMMU: device=0000:03:00.0',
    '  qemu-system-x86-4242    [001] .....  960.000003: iommutrail_reset_prepare_ret: (pcie_flr+0x2b/0x110 <- pci_dev_reset_iommu_prepare)',
    '  qemu-system-x86-4242    [001] .....  960.100001: iommutrail_reset_done: (pci_dev_reset_iommu_done+0x0/0x150) dev="0000:03:00.0"',
    '  qemu-system-x86-4242    [001] .....  960.100002: attach_device_to_domain: IOMMU: device=0000:03:00.0',
    '  qemu-system-x86-4242    [001] .....  960.100003: iommutrail_reset_done_ret: (pcie_flr+0x8f/0x110 <- pci_dev_reset_iommu_done)',
  ];

  it('issue 19 (7.0): given a reset of an ATS device, when read as one stream, then its two attach lines are marked as the reset fence', () => {
    const parse = createTracePipeParser();
    const out = reset.map(parse);
    expect(out.map((o) => (o.kind === 'event' ? [o.draft.type, o.draft.data.resetFence ?? null] : o))).toEqual([
      ['TraceDeviceResetFence', null],
      ['TraceAttachDeviceToDomain', 'prepare'],
      { kind: 'ignored', rule: 'trace.reset-fence-return' },
      ['TraceDeviceResetFence', null],
      ['TraceAttachDeviceToDomain', 'done'],
      { kind: 'ignored', rule: 'trace.reset-fence-return' },
    ]);
    for (const o of out) if (o.kind === 'event') expect(validates(o.draft)).toBe(true);
  });

  it('issue 19 (7.0): given a reset without attach lines (no ATS), when a real attach follows, then that attach is not marked', () => {
    const parse = createTracePipeParser();
    for (const line of [reset[0]!, reset[2]!, reset[3]!, reset[5]!]) parse(line);
    const later = draft(parse('  qemu-system-x86-4242    [001] .....  961.0: attach_device_to_domain: IOMMU: device=0000:03:00.0'));
    expect(later.data).not.toHaveProperty('resetFence');
  });

  it('issue 19 (7.0): given another task attaching the same device during a fence, when parsed, then its line is not marked', () => {
    const parse = createTracePipeParser();
    parse(reset[0]!);
    const other = draft(parse('  kworker/1:2-77    [002] .....  960.000002: attach_device_to_domain: IOMMU: device=0000:03:00.0'));
    expect(other.data).not.toHaveProperty('resetFence');
  });
});

describe('ignored lines name the rule that ignored them (kernel oracle assert 3)', () => {
  it.each([
    ['', 'trace.blank'],
    ['# tracer: nop', 'trace.header-comment'],
    ['tracer: nop', 'trace.not-a-trace-line'],
    ['  bash-1 [000] ..... 5.0: sched_switch: prev_comm=bash', 'trace.not-an-iommu-group-event'],
  ])('given the trace line %j, when parsed, then it is ignored by %s', (line, rule) => {
    expect(parseTracePipeLine(line)).toEqual({ kind: 'ignored', rule });
  });

  it('kernel oracle: given the ring buffer\'s "CPU:0 [LOST 12 EVENTS]" line, when parsed, then it is invalid with the count, not skipped as a non-trace line', () => {
    expect(parseTracePipeLine('CPU:0 [LOST 12 EVENTS]')).toEqual({ kind: 'invalid', reason: 'trace ring buffer lost 12 events on CPU 0' });
  });

  it.each([
    ['             itguest-61      [000] .....    41.207953: add_device_to_group: IOMMU: groupID=4 device=iommufd_mock0'],
    ['             itguest-61      [000] .....    41.208001: attach_device_to_domain: IOMMU: device=iommufd_mock0'],
    ['             itguest-61      [000] .....    41.309112: remove_device_from_group: IOMMU: groupID=4 device=iommufd_mock1'],
  ])('kernel oracle mock #1: given the trace line of a CONFIG_IOMMUFD_TEST mock device %j, when parsed, then it is ignored by name, not drafted into an event the catalogue refuses', (line) => {
    expect(parseTracePipeLine(line)).toEqual({ kind: 'ignored', rule: 'trace.selftest-mock-device' });
  });

  it('kernel oracle mock #1: given the uevent of a mock device on its own bus, when mapped, then it is ignored as not pci', () => {
    const add = parseNetlinkUevent(Buffer.from('add@/devices/iommufd_mock0\0ACTION=add\0DEVPATH=/devices/iommufd_mock0\0SUBSYSTEM=iommufd_mock\0'))!;
    expect(ueventToDraft(add)).toEqual({ kind: 'ignored', rule: 'uevent.not-pci' });
  });

  it('given pci add and a pci action that moves no driver, when mapped, then each names its rule', () => {
    const add = parseNetlinkUevent(Buffer.from('add@/devices/pci0000:00/0000:00:03.0\0ACTION=add\0SUBSYSTEM=pci\0'))!;
    expect(ueventToDraft(add)).toEqual({ kind: 'ignored', rule: 'uevent.pci-add-remove-takes-a-snapshot' });
    const change = parseNetlinkUevent(Buffer.from('change@/devices/pci0000:00/0000:00:03.0\0ACTION=change\0SUBSYSTEM=pci\0'))!;
    expect(ueventToDraft(change)).toEqual({ kind: 'ignored', rule: 'uevent.pci-action-moves-no-driver' });
  });
});

describe('uevent parsers', () => {
  const block = [
    'KERNEL[1022.005020] bind     /devices/pci0000:00/0000:00:01.0/0000:01:00.1 (pci)',
    'ACTION=bind',
    'DEVPATH=/devices/pci0000:00/0000:00:01.0/0000:01:00.1',
    'SUBSYSTEM=pci',
    'DRIVER=vfio-pci',
    'PCI_SLOT_NAME=0000:01:00.1',
    'SEQNUM=5122',
    '',
  ];

  it('given a udevadm bind block, when its blank line arrives, then a DriverBound with the monotonic time comes out', () => {
    const p = createUdevadmParser();
    const out = block.map((l) => p.push(l)).filter((u) => u !== undefined);
    expect(out).toHaveLength(1);
    const d = draft(ueventToDraft(out[0]!));
    expect(d).toMatchObject({ type: 'DriverBound', source: 'udev', monoNs: 1_022_005_020_000n, data: { device: '0000:01:00.1', driver: 'vfio-pci' } });
    expect(validates(d)).toBe(true);
  });

  it('given an unbind (no DRIVER=), when mapped, then the driver comes from what was last seen bound', () => {
    const u = parseNetlinkUevent(Buffer.from('unbind@/devices/pci0000:00/0000:00:01.0/0000:01:00.1\0ACTION=unbind\0DEVPATH=/devices/pci0000:00/0000:00:01.0/0000:01:00.1\0SUBSYSTEM=pci\0PCI_SLOT_NAME=0000:01:00.1\0SEQNUM=5120\0'))!;
    expect(draft(ueventToDraft(u, () => 'snd_hda_intel')).data).toEqual({ device: '0000:01:00.1', driver: 'snd_hda_intel' });
    expect(draft(ueventToDraft(u)).data).toEqual({ device: '0000:01:00.1' });
  });

  it('given libudev re-broadcasts or non-pci add events, when parsed, then nothing comes out', () => {
    expect(parseNetlinkUevent(Buffer.from('libudev\0\xfe\xed\xca\xfe'))).toBeUndefined();
    const add = parseNetlinkUevent(Buffer.from('add@/devices/x/vfio-dev/vfio1\0ACTION=add\0SUBSYSTEM=vfio-dev\0'))!;
    expect(ueventToDraft(add).kind).toBe('ignored');
  });

  it('given a bind without DRIVER, when mapped, then it is invalid, not dropped silently', () => {
    const u = parseNetlinkUevent(Buffer.from('bind@/devices/pci0000:00/0000:00:02.0\0ACTION=bind\0SUBSYSTEM=pci\0'))!;
    expect(ueventToDraft(u).kind).toBe('invalid');
  });
});

describe('bpftrace output parser', () => {
  it('given a successful bind, when parsed, then the ictx handle, devId and actor are set', () => {
    const d = draft(parseBpftraceLine('IOMMUTRAIL op=bind ts=900000200000 pid=4242 ret=0 file=ffff8881093c2a00 dev=0000:01:00.0 iommufd=21 ictx=ffff888104e1b000 devid=1 comm=qemu-system-x86'));
    expect(d).toMatchObject({
      type: 'VfioDeviceBindIommufdIssued',
      source: 'bpftrace',
      monoNs: 900_000_200_000n,
      actor: { pid: 4242, comm: 'qemu-system-x86' },
      data: { device: '0000:01:00.0', deviceFd: 'file:ffff8881093c2a00', ictx: 'ictx:ffff888104e1b000', outcome: { ok: true, devId: 1 } },
    });
    expect(validates(d)).toBe(true);
  });

  it('issue 19: given a bind refused for iommufd=-1, when parsed, then the raw fd number is recorded beside the errno', () => {
    const d = draft(parseBpftraceLine('IOMMUTRAIL op=bind ts=1 pid=7 ret=-22 file=ff dev=0000:01:00.1 iommufd=-1 ictx=0 devid=0 comm=q'));
    expect(d.data).toMatchObject({ ictx: 'fd:7:-1', iommufdFd: -1, outcome: { ok: false, errno: 'EINVAL' } });
    expect(validates(d)).toBe(true);
  });

  it('given a refused bind and a refused driver probe, when parsed, then errno names come from the return value', () => {
    expect(draft(parseBpftraceLine('IOMMUTRAIL op=bind ts=1 pid=1 ret=-1 file=ff dev=0000:01:00.1 iommufd=22 ictx=0 devid=0 comm=q')).data).toMatchObject({ ictx: 'fd:1:22', outcome: { ok: false, errno: 'EPERM' } });
    const refused = draft(parseBpftraceLine('IOMMUTRAIL op=bind_refused ts=1 pid=2291 ret=-16 dev=0000:01:00.1 driver=snd_hda_intel comm=bash'));
    expect(refused).toMatchObject({ type: 'DriverBindRefused', data: { errno: 'EBUSY', driver: 'snd_hda_intel' } });
    expect(validates(refused)).toBe(true);
  });

  it.each([
    ['IOMMUTRAIL op=attach ts=3 pid=9 ret=0 file=ab dev=0000:01:00.0 pt=2 flags=0 out_pt=3 comm=q', 'VfioDeviceAttachPtIssued'],
    ['IOMMUTRAIL op=detach ts=3 pid=9 ret=0 file=ab dev=0000:01:00.0 comm=q', 'VfioDeviceDetachPtIssued'],
    ['IOMMUTRAIL op=close ts=3 pid=9 ret=0 file=ab dev=0000:01:00.0 comm=q', 'VfioDeviceClosed'],
    ['IOMMUTRAIL op=open ts=3 pid=9 ret=0 file=ab dev=0000:01:00.0 comm=q', 'VfioDeviceOpened'],
    ['IOMMUTRAIL op=set_container ts=3 pid=9 ret=0 vgroup=cd group=1 fd=7 kind=iommufd comm=q', 'VfioGroupSetContainerIssued'],
    ['IOMMUTRAIL op=get_device_fd ts=3 pid=9 ret=12 vgroup=cd group=1 dev=0000:01:00.0 file=ef comm=q', 'VfioGroupGetDeviceFdIssued'],
  ])('given %s, when parsed, then a valid %s comes out', (line, type) => {
    const d = draft(parseBpftraceLine(line));
    expect(d.type).toBe(type);
    expect(validates(d)).toBe(true);
  });

  it('given an unknown errno, a missing field or an unknown op, when parsed, then it is invalid with a reason', () => {
    expect(parseBpftraceLine('IOMMUTRAIL op=detach ts=3 pid=9 ret=-4 file=ab dev=0000:01:00.0 comm=q')).toMatchObject({ kind: 'invalid' });
    expect(parseBpftraceLine('IOMMUTRAIL op=close ts=3 pid=9 ret=0 comm=q')).toMatchObject({ kind: 'invalid' });
    expect(parseBpftraceLine('IOMMUTRAIL op=frobnicate ts=3 pid=9 ret=0 comm=q')).toMatchObject({ kind: 'invalid' });
    expect(parseBpftraceLine('Attaching 14 probes...').kind).toBe('ignored');
  });
});
