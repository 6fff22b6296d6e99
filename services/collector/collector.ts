import type { Readable } from 'node:stream';
import { ignoredBy, invalid, type EventDraft, type ParseOutcome } from './eventDraft.js';
import type { TraceReadEmpty } from './followTracePipe.js';
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
  /** trace_pipe's timestamps are CLOCK_MONOTONIC (tracefs trace_clock `mono`), the clock of udevadm's KERNEL[...] */
  readonly traceClockMono?: boolean;
  /** longest a uevent waits for a live trace_pipe to be read past it (default 2 s) */
  readonly maxHoldMs?: number;
}

const isEmptyRead = (chunk: unknown): chunk is TraceReadEmpty => typeof chunk === 'object' && chunk !== null && 'emptyReadStartedNs' in chunk;

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
  /*
   * Kernel order across uevents and trace_pipe. The two sources reach this process independently, so a trace line
   * the kernel wrote before a uevent can be read after it (issue 17/19 order: s14's re-add of 01:02.0 after s15's
   * bind). A read of trace_pipe returns every line written before it started, so a live trace_pipe
   * (followTracePipe) reports each read that found the ring buffer empty; a uevent read at time R is held until such
   * a read started after R (or the trace source ended, or maxHoldMs passed): the kernel sent the uevent before R,
   * so every trace line written before it has then been read. The trace lines read meanwhile are held too and
   * placed among the uevents by kernel time (uevents by udevadm's receive time, same clock with trace_clock mono;
   * without it they go before the uevents, the side the kernel's own order favours for what was read before).
   */
  const maxHoldMs = options.maxHoldMs ?? 2_000;
  /** a trace_pipe that reports its empty reads is being read; the start of the latest such read */
  let traceLive = false;
  let traceEmptyAt = 0n;
  const gateWaiters = new Set<() => void>();
  const wakeGateWaiters = (): void => {
    for (const w of [...gateWaiters]) w();
  };
  /** uevent reads waiting for trace_pipe; trace drafts read meanwhile */
  let ueventsWaiting = 0;
  const heldTrace: EventDraft[] = [];
  /** the kernel time of the uevent the handler saw last (udevadm's receive time) */
  let lastUeventNs: bigint | undefined;
  const traceReadPast = async (readAt: bigint): Promise<void> => {
    if (!traceLive || traceEmptyAt >= readAt) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        gateWaiters.delete(check);
        resolve();
      };
      const check = (): void => {
        if (!traceLive || traceEmptyAt >= readAt) done();
      };
      const timer = setTimeout(() => {
        log.warn({ maxHoldMs }, 'collector.order.hold-expired');
        done();
      }, maxHoldMs);
      gateWaiters.add(check);
    });
  };
  /** held trace drafts the kernel wrote before `ns` (all of them when the clocks cannot be compared) */
  const takeHeldBefore = (ns: bigint | undefined): EventDraft[] => {
    const comparable = options.traceClockMono === true && ns !== undefined;
    let n = 0;
    while (n < heldTrace.length && (!comparable || (heldTrace[n]!.monoNs ?? 0n) < ns)) n += 1;
    return heldTrace.splice(0, n);
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
    const uevents = name === 'udev' || name === 'netlink';
    const flush = async (lines: string[]): Promise<void> => {
      const drafts: EventDraft[] = [];
      const earlier: Promise<void>[] = [];
      for (const line of lines) {
        const r = handle(line);
        stats.lines[name] = (stats.lines[name] ?? 0) + 1;
        options.audit?.({ source: name, line, outcome: r });
        // the trace lines written before this uevent go before it (and before its snapshot)
        if (uevents && r !== undefined) drafts.push(...takeHeldBefore(lastUeventNs));
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
        } else if (name === 'ftrace' && ueventsWaiting > 0) heldTrace.push(r.draft);
        else drafts.push(r.draft);
      }
      if (uevents && ueventsWaiting === 1) drafts.push(...heldTrace.splice(0));
      if (drafts.length > 0) earlier.push(inOrder(() => store(drafts)));
      await Promise.all(earlier);
    };
    /** a uevent source's lines wait until trace_pipe was read past the moment they were read */
    const flushInOrder = async (lines: string[], readAt: bigint): Promise<void> => {
      if (!uevents) return flush(lines);
      ueventsWaiting += 1;
      try {
        await traceReadPast(readAt);
        await flush(lines);
      } finally {
        ueventsWaiting -= 1;
      }
    };
    try {
      for await (const chunk of input) {
        if (isEmptyRead(chunk)) {
          traceLive = true;
          if (chunk.emptyReadStartedNs > traceEmptyAt) traceEmptyAt = chunk.emptyReadStartedNs;
          wakeGateWaiters();
          continue;
        }
        const readAt = process.hrtime.bigint();
        lastInputAt = Date.now();
        const text = rest + (typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8'));
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        await flushInOrder(lines, readAt);
      }
      await flushInOrder(rest === '' ? [''] : [rest, ''], process.hrtime.bigint());
    } finally {
      if (name === 'ftrace') {
        // a stopped or ended trace_pipe holds no uevent back, and what it read meanwhile goes in
        traceLive = false;
        wakeGateWaiters();
        if (ueventsWaiting === 0 && heldTrace.length > 0) await inOrder(() => store(heldTrace.splice(0)));
      }
    }
  };

  /** a uevent → its draft; a PCI add/remove also takes a fresh topology snapshot */
  const onUevent = (): ((u: Uevent) => ParseOutcome) => {
    let pciTopologyChanged = false;
    return (u) => {
      lastUeventNs = u.monoNs;
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
