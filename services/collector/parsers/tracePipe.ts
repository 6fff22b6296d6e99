import { draftOf, ignoredBy, invalid, secondsToNs, type ParseOutcome } from '../eventDraft.js';

// TASK-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: EVENT: TP_printk text (kernel/trace/trace_output.c layout)
const LINE = /^\s*(.+?)-(\d+)\s+(?:\(\s*(?:\d+|-+)\)\s+)?\[(\d{3,})\]\s+(?:[^\s[\]]{4,5}\s+)?(\d+\.\d+):\s+([a-z_]+):\s?(.*)$/;
// include/trace/events/iommu.h TP_printk formats (protocol.md §2.1)
const GROUP = /^IOMMU: groupID=(\d+) device=(\S+)$/;
const ATTACH = /^IOMMU: device=(\S+)$/;
// drivers/iommu/iommufd/selftest.c mock_dev_create: dev_set_name("iommufd_mock%u"), on its own bus (CONFIG_IOMMUFD_TEST)
const SELFTEST_MOCK = /^iommufd_mock\d+$/;
// kernel/trace/trace.c print_trace_line: the ring buffer overwrote events this reader never saw
const LOST = /^CPU:(\d+) \[LOST (\d+) EVENTS\]$/;
const FAULT = /^IOMMU:(\S+) (\S+) iova=(0x[0-9a-fA-F]+) flags=(0x[0-9a-fA-F]+)$/;
// drivers/iommu/intel/trace.h, class cache_tag_log: TP_printk("%s/%s type %s did %d pasid %d ref %d")
const CACHE_TAG = /^(\S+?)\/(\S+) type (\S+) did (\d+) pasid (\d+) ref (\d+)$/;
// kernel/trace/trace_kprobe.c print_kprobe_event: "(SYMBOL+off/size)" then ` name="string"` per fetcharg
const RESET_FENCE = /^\(pci_dev_reset_iommu_(?:prepare|done)\+0x[0-9a-f]+\/0x[0-9a-f]+\) dev="([^"]+)"$/;

/**
 * The kprobe events the collector defines (tracefs `kprobe_events`) so a 7.0 reset fence is seen in the same
 * ordered stream as the attach lines it causes: entry probes with the device name (`$arg1->...` needs the
 * kernel's BTF, 6.6 on) and return probes that close the window, as a device without ATS gets no attach line.
 */
export const RESET_FENCE_KPROBES = [
  'p:iommutrail/iommutrail_reset_prepare pci_dev_reset_iommu_prepare dev=$arg1->dev.kobj.name:string',
  'r:iommutrail/iommutrail_reset_prepare_ret pci_dev_reset_iommu_prepare',
  'p:iommutrail/iommutrail_reset_done pci_dev_reset_iommu_done dev=$arg1->dev.kobj.name:string',
  'r:iommutrail/iommutrail_reset_done_ret pci_dev_reset_iommu_done',
] as const;

/**
 * One line of tracefs `trace_pipe` with the iommu events enabled → a Trace* draft that keeps the raw line.
 * Other iommu events (map, unmap) and other systems are ignored; a malformed iommu line is invalid.
 */
const RESET_FENCE_END = 'trace.reset-fence-return';

export const parseTracePipeLine = (raw: string): ParseOutcome => {
  const line = raw.replace(/\r?\n$/, '');
  if (line.trim() === '') return ignoredBy('trace.blank');
  if (line.startsWith('#')) return ignoredBy('trace.header-comment');
  const lost = LOST.exec(line.trim());
  // a loss is never a skipped line: the events it stands for may have been ownership changes
  if (lost) return invalid(`trace ring buffer lost ${lost[2]} events on CPU ${lost[1]}`);
  const m = LINE.exec(line);
  if (!m) return line.includes('IOMMU') ? invalid(`not a trace_pipe line: ${JSON.stringify(line.slice(0, 120))}`) : ignoredBy('trace.not-a-trace-line');
  const [, comm, pid, , ts, event, body] = m as unknown as [string, string, string, string, string, string, string];
  const common = { source: 'ftrace' as const, monoNs: secondsToNs(ts), actor: { pid: Number(pid), comm: comm.trim().slice(0, 64) } };
  const kept = line.slice(0, 4096);
  switch (event) {
    case 'add_device_to_group':
    case 'remove_device_from_group': {
      const g = GROUP.exec(body);
      if (!g) return invalid(`${event}: unexpected text ${JSON.stringify(body)}`);
      // the kernel's selftest mock devices are no PCI function: no host owner, no catalogue device
      if (SELFTEST_MOCK.test(g[2]!)) return ignoredBy('trace.selftest-mock-device');
      const type = event === 'add_device_to_group' ? 'TraceAddDeviceToGroup' : 'TraceRemoveDeviceFromGroup';
      return draftOf({ ...common, type, data: { group: Number(g[1]), device: g[2], line: kept } });
    }
    case 'attach_device_to_domain': {
      const a = ATTACH.exec(body);
      if (!a) return invalid(`attach_device_to_domain: unexpected text ${JSON.stringify(body)}`);
      if (SELFTEST_MOCK.test(a[1]!)) return ignoredBy('trace.selftest-mock-device');
      return draftOf({ ...common, type: 'TraceAttachDeviceToDomain', data: { device: a[1], line: kept } });
    }
    case 'io_page_fault': {
      const f = FAULT.exec(body);
      if (!f) return invalid(`io_page_fault: unexpected text ${JSON.stringify(body)}`);
      return draftOf({ ...common, type: 'TraceIoPageFault', data: { driver: f[1], device: f[2], iova: f[3], flags: Number.parseInt(f[4]!, 16), line: kept } });
    }
    case 'cache_tag_assign':
    case 'cache_tag_unassign': {
      const c = CACHE_TAG.exec(body);
      if (!c) return invalid(`${event}: unexpected text ${JSON.stringify(body)}`);
      const [, iommu, device, tagType, did, pasid, ref] = c as unknown as [string, string, string, string, string, string, string];
      const action = event === 'cache_tag_assign' ? 'assign' : 'unassign';
      return draftOf({ ...common, type: 'TraceCacheTag', data: { action, iommu, device, tagType, domainId: Number(did), pasid: Number(pasid), ref: Number(ref), line: kept } });
    }
    case 'cache_tag_flush_all':
    case 'cache_tag_flush_range':
    case 'cache_tag_flush_range_np':
      // invalidations of tags already assigned: no change of what a device can reach
      return ignoredBy('trace.intel-cache-tag-flush');
    case 'iommutrail_reset_prepare':
    case 'iommutrail_reset_done': {
      const r = RESET_FENCE.exec(body);
      if (!r) return invalid(`${event}: unexpected text ${JSON.stringify(body)}`);
      const phase = event === 'iommutrail_reset_prepare' ? 'prepare' : 'done';
      return draftOf({ ...common, type: 'TraceDeviceResetFence', data: { device: r[1], phase, line: kept } });
    }
    case 'iommutrail_reset_prepare_ret':
    case 'iommutrail_reset_done_ret':
      // print_kretprobe_event "(CALLER+off/size <- SYMBOL)": the end of the fence window (createTracePipeParser)
      return ignoredBy(RESET_FENCE_END);
    case 'map':
    case 'unmap':
      return ignoredBy('trace.iommu-map-unmap');
    default:
      return ignoredBy('trace.not-an-iommu-group-event');
  }
};

/**
 * A trace_pipe reader's parser, one per stream: as {@link parseTracePipeLine}, and an attach_device_to_domain
 * line of a device inside its reset-fence window (same task, between the kprobe on
 * pci_dev_reset_iommu_prepare/done and its return: 7.0 moves an ATS device to the blocking domain and back)
 * is marked `resetFence` with that phase, so no one reads it as an ownership change.
 */
export const createTracePipeParser = (): ((raw: string) => ParseOutcome) => {
  // task pid → the device and phase of the fence it is inside
  const open = new Map<number, { device: string; phase: 'prepare' | 'done' }>();
  return (raw) => {
    const r = parseTracePipeLine(raw);
    if (r.kind === 'ignored' && r.rule === RESET_FENCE_END) {
      const pid = LINE.exec(raw.replace(/\r?\n$/, ''))?.[2];
      if (pid !== undefined) open.delete(Number(pid));
      return r;
    }
    const pid = r.kind === 'event' ? r.draft.actor?.pid : undefined;
    if (r.kind !== 'event' || pid === undefined) return r;
    const { type, data } = r.draft;
    if (type === 'TraceDeviceResetFence') {
      open.set(pid, { device: String(data.device), phase: data.phase as 'prepare' | 'done' });
      return r;
    }
    const fence = open.get(pid);
    if (type !== 'TraceAttachDeviceToDomain' || fence === undefined || fence.device !== data.device) return r;
    return draftOf({ ...r.draft, data: { ...data, resetFence: fence.phase } });
  };
};
