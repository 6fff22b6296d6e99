import { draftOf, ignoredBy, invalid, secondsToNs, type ParseOutcome } from '../eventDraft.js';

// TASK-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: EVENT: TP_printk text (kernel/trace/trace_output.c layout)
const LINE = /^\s*(.+?)-(\d+)\s+(?:\(\s*(?:\d+|-+)\)\s+)?\[(\d{3,})\]\s+(?:[^\s[\]]{4,5}\s+)?(\d+\.\d+):\s+([a-z_]+):\s?(.*)$/;
// include/trace/events/iommu.h TP_printk formats (protocol.md §2.1)
const GROUP = /^IOMMU: groupID=(\d+) device=(\S+)$/;
const ATTACH = /^IOMMU: device=(\S+)$/;
// kernel/trace/trace.c print_trace_line: the ring buffer overwrote events this reader never saw
const LOST = /^CPU:(\d+) \[LOST (\d+) EVENTS\]$/;
const FAULT = /^IOMMU:(\S+) (\S+) iova=(0x[0-9a-fA-F]+) flags=(0x[0-9a-fA-F]+)$/;

/**
 * One line of tracefs `trace_pipe` with the iommu events enabled → a Trace* draft that keeps the raw line.
 * Other iommu events (map, unmap) and other systems are ignored; a malformed iommu line is invalid.
 */
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
      const type = event === 'add_device_to_group' ? 'TraceAddDeviceToGroup' : 'TraceRemoveDeviceFromGroup';
      return draftOf({ ...common, type, data: { group: Number(g[1]), device: g[2], line: kept } });
    }
    case 'attach_device_to_domain': {
      const a = ATTACH.exec(body);
      if (!a) return invalid(`attach_device_to_domain: unexpected text ${JSON.stringify(body)}`);
      return draftOf({ ...common, type: 'TraceAttachDeviceToDomain', data: { device: a[1], line: kept } });
    }
    case 'io_page_fault': {
      const f = FAULT.exec(body);
      if (!f) return invalid(`io_page_fault: unexpected text ${JSON.stringify(body)}`);
      return draftOf({ ...common, type: 'TraceIoPageFault', data: { driver: f[1], device: f[2], iova: f[3], flags: Number.parseInt(f[4]!, 16), line: kept } });
    }
    case 'map':
    case 'unmap':
      return ignoredBy('trace.iommu-map-unmap');
    default:
      return ignoredBy('trace.not-an-iommu-group-event');
  }
};
