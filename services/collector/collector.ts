import type { Readable } from 'node:stream';
import { ignoredBy, invalid, type EventDraft, type ParseOutcome } from './eventDraft.js';
import { parseBpftraceLine } from './parsers/bpftrace.js';
import { createTracePipeParser } from './parsers/tracePipe.js';
import { createUdevadmParser, parseNetlinkUevent, ueventToDraft, type Uevent } from './parsers/uevent.js';
import { silentLogger, type CollectorLogger } from './shipper.js';
import type { Spool } from './spool.js';
import { readTopology, type ReadTopologyOptions } from './sysfsTopology.js';

/** what became of one input line (a udevadm block's inner lines report `undefined`: the block is one uevent) */
export interface LineAudit {
  readonly source: 'udev' | 'netlink' | 'ftrace' | 'bpftrace';
  readonly line: string;
  readonly outcome: ParseOutcome | undefined;
}

export interface CollectorOptions extends ReadTopologyOptions {
  readonly logger?: CollectorLogger;
  /** sees every line read and its outcome (the kernel oracle checks that none went unparsed) */
  readonly audit?: (entry: LineAudit) => void;
}

/** turns lines into drafts; may keep state across lines (a uevent spans a block of lines) */
type LineHandler = (line: string) => ParseOutcome | undefined;

/**
 * Reads the host's sources into the spool: topology snapshots from sysfs, uevents, trace_pipe and the
 * bpftrace program. Sources are read pull-style: while the spool is full nothing more is read, so the
 * kernel / child process buffers fill up instead of this process's memory.
 */
export const createCollector = (spool: Spool, options: CollectorOptions = {}) => {
  const log = options.logger ?? silentLogger;
  const lastDriver = new Map<string, string>();
  // lines: every line read, per source (each one an event, ignored by a named rule, or invalid)
  const stats = { events: 0, invalid: 0, snapshots: 0, lines: {} as Partial<Record<LineAudit['source'], number>>, ignored: {} as Record<string, number> };
  let lastInputAt = 0;
  /** the hotplug snapshots started in the background and not yet spooled */
  const inFlight = new Set<Promise<void>>();

  const store = async (drafts: EventDraft[]): Promise<void> => {
    let pending = drafts;
    while (pending.length > 0) {
      const chunk = pending.slice(0, Math.max(1, Math.min(pending.length, spool.capacity)));
      await spool.waitForSpace(chunk.length);
      const r = spool.append(chunk);
      if (!r.ok) continue;
      pending = pending.slice(chunk.length);
      stats.events += r.events.length;
      for (const bad of r.invalid) {
        stats.invalid += 1;
        log.warn({ type: bad.draft.type, source: bad.draft.source, issues: bad.error.issues }, 'collector.draft.invalid');
      }
    }
  };

  /**
   * Everything goes into the spool in the order it was read: each store waits for the one before. A snapshot takes
   * its place when it is started (its uevent's position), though sysfs is read in the background: drafts read
   * after it wait for it, so it cannot land after a later bind and undo it (kernel oracle mock #8).
   */
  let spooled: Promise<void> = Promise.resolve();
  const inOrder = (task: () => Promise<void>): Promise<void> => {
    const done = spooled.then(task);
    spooled = done.catch(() => undefined);
    return done;
  };
  /** a hotplug snapshot the line just parsed asks for (its reason), taken by the reader before the next line */
  let snapshotAt: string | null = null;
  /** read in the background (the reader parses on); kept until spooled, so a stop or a caller can wait for it */
  const snapshotInBackground = (reason: string): void => {
    const taken = snapshot(reason)
      .catch((e: unknown) => log.error({ err: (e as Error).message }, 'collector.snapshot.failed'))
      .finally(() => inFlight.delete(taken));
    inFlight.add(taken);
  };
  /** devices whose driver a uevent changed while a snapshot was being read (the snapshot's reading of them is older) */
  const touchedSince = new Set<Set<string>>();

  const snapshot = (reason: string): Promise<void> => {
    const touched = new Set<string>();
    touchedSince.add(touched);
    const read = readTopology(options);
    return inOrder(async () => {
      try {
        const topology = await read;
        for (const p of topology.problems) log.warn({ problem: p }, 'collector.sysfs.problem');
        for (const [device] of lastDriver) if (!touched.has(device)) lastDriver.delete(device);
        for (const d of topology.devices) if (d.driver && !touched.has(d.device)) lastDriver.set(d.device, d.driver);
        const { problems: _problems, ...data } = topology;
        await store([{ type: 'TopologySnapshotTaken', source: 'collector', data, labels: [`snapshot:${reason}`, 'unknown:interruptRemapping'] }]);
        stats.snapshots += 1;
      } finally {
        touchedSince.delete(touched);
      }
    });
  };

  /** reads a text stream line by line into the spool until it ends */
  const pump = async (input: Iterable<unknown> | AsyncIterable<unknown>, handle: LineHandler, name: LineAudit['source']): Promise<void> => {
    let rest = '';
    const flush = async (lines: string[]): Promise<void> => {
      const drafts: EventDraft[] = [];
      const earlier: Promise<void>[] = [];
      for (const line of lines) {
        const r = handle(line);
        stats.lines[name] = (stats.lines[name] ?? 0) + 1;
        options.audit?.({ source: name, line, outcome: r });
        if (snapshotAt !== null) {
          // what was read before the hotplug (a PCI add/remove uevent, itself ignored) goes in before its snapshot, what is read after it after
          const before = drafts.splice(0);
          if (before.length > 0) earlier.push(inOrder(() => store(before)));
          snapshotInBackground(snapshotAt);
          snapshotAt = null;
        }
        if (!r) continue;
        if (r.kind === 'ignored') {
          stats.ignored[r.rule] = (stats.ignored[r.rule] ?? 0) + 1;
          continue;
        }
        if (r.kind === 'invalid') {
          stats.invalid += 1;
          log.warn({ source: name, reason: r.reason, line: line.slice(0, 300) }, 'collector.line.invalid');
        } else drafts.push(r.draft);
      }
      if (drafts.length > 0) earlier.push(inOrder(() => store(drafts)));
      await Promise.all(earlier);
    };
    for await (const chunk of input) {
      lastInputAt = Date.now();
      const text = rest + (typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8'));
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      await flush(lines);
    }
    await flush(rest === '' ? [''] : [rest, '']);
  };

  /** a uevent → its draft; a PCI add/remove also takes a fresh topology snapshot */
  const onUevent = (): ((u: Uevent) => ParseOutcome) => {
    let pciTopologyChanged = false;
    return (u) => {
      if ((u.action === 'add' || u.action === 'remove') && u.env.SUBSYSTEM === 'pci') pciTopologyChanged = true;
      if (pciTopologyChanged) {
        pciTopologyChanged = false;
        // taken by the reader at this line's place (after what it read before, before what it reads next)
        snapshotAt = `pci-${u.action}`;
      }
      const r = ueventToDraft(u, (device) => lastDriver.get(device));
      if (r.kind === 'event' && (r.draft.type === 'DriverBound' || r.draft.type === 'DriverUnbound')) for (const t of touchedSince) t.add(String(r.draft.data.device));
      // the driver a device is bound to changes as each uevent is read, not when its batch is stored: an unbind
      // later in the same read names the driver this bind named
      if (r.kind === 'event' && r.draft.type === 'DriverBound') lastDriver.set(String(r.draft.data.device), String(r.draft.data.driver));
      if (r.kind === 'event' && r.draft.type === 'DriverUnbound') lastDriver.delete(String(r.draft.data.device));
      return r;
    };
  };

  const udevHandler = (): LineHandler => {
    const parser = createUdevadmParser();
    const handle = onUevent();
    return (line) => {
      const u = parser.push(line);
      return u ? handle(u) : undefined;
    };
  };

  /** raw NETLINK_KOBJECT_UEVENT datagrams, one per line as hex (a capture, or a native netlink reader) */
  const netlinkHandler = (): LineHandler => {
    const handle = onUevent();
    return (line) => {
      if (line === '') return ignoredBy('netlink.end-of-input');
      if (!/^(?:[0-9a-f]{2})+$/i.test(line)) return invalid(`netlink: not a hex datagram: ${JSON.stringify(line.slice(0, 80))}`);
      const bytes = Buffer.from(line, 'hex');
      if (bytes.subarray(0, 8).toString('latin1') === 'libudev\0') return ignoredBy('netlink.libudev-rebroadcast');
      const u = parseNetlinkUevent(bytes);
      return u ? handle(u) : invalid(`netlink: no ACTION@DEVPATH header: ${JSON.stringify(bytes.toString('utf8').slice(0, 80))}`);
    };
  };

  return {
    /** a TopologySnapshotTaken now (at start, on SIGUSR1, after PCI hotplug) */
    snapshot,
    /** `udevadm monitor --kernel --property --subsystem-match=pci` output */
    readUdevadm: (input: Readable) => pump(input, udevHandler(), 'udev'),
    /** raw netlink uevent datagrams, hex, one per line */
    readNetlinkHex: (input: Readable) => pump(input, netlinkHandler(), 'netlink'),
    /** tracefs trace_pipe with the iommu events (and intel_iommu cache_tag_*, reset-fence kprobes) enabled */
    readTracePipe: (input: Readable) => pump(input, createTracePipeParser(), 'ftrace'),
    /** deploy/collector/iommutrail.bt output */
    readBpftrace: (input: Readable) => pump(input, parseBpftraceLine, 'bpftrace'),
    /** resolves once every hotplug snapshot started so far is spooled (or has failed and been logged) */
    snapshotsSpooled: async (): Promise<void> => {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    /** resolves once no source delivered anything for `quietMs` (at most `maxMs`): what the kernel already sent is read before a stop */
    async settle(quietMs = 500, maxMs = 5_000): Promise<void> {
      const until = Date.now() + maxMs;
      while (Date.now() < until && Date.now() - lastInputAt < quietMs) await new Promise((r) => setTimeout(r, Math.min(quietMs, 50)));
    },
    stats,
  };
};
export type Collector = ReturnType<typeof createCollector>;
