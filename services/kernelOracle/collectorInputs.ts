import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { createFleetProjection, foldEvents, type HostState } from '../../projections/index.js';
import type { IommuEvent } from '../../schemas/index.js';
import { createCollector, type Collector, type LineAudit } from '../collector/collector.js';
import { openSpool, type Spool } from '../collector/spool.js';
import type { GuestRecord, SysfsRecord } from './guestRecords.js';
import type { ScenarioHistory } from './toEvents.js';

/**
 * The collector's own code (createCollector: its sysfs snapshot through readTopology, its netlink uevent
 * and trace_pipe readers, into a real SQLite spool) run on the host over what the guest captured raw:
 * every uevent datagram, every trace_pipe line and the sysfs files readTopology reads, rebuilt as a tree.
 * This gives the step-by-step comparison; the collector process itself also runs in the guest for the whole boot
 * (boot.ts, guestCollectorChecks.ts), and its history is compared with this run's.
 */

export interface AuditedLine extends LineAudit {
  readonly machine: string;
  /** the scenario whose steps caused it; null between scenarios (restoring the drivers) */
  readonly scenario: string | null;
}

export interface CollectorScenario {
  readonly machine: string;
  readonly scenario: string;
  readonly host: string;
  readonly events: IommuEvent[];
  /** per guest step (its scenario line): the collector's last seq once that step's signals were read */
  readonly steps: { readonly line: number; readonly lastSeq: number }[];
  /** what readTopology could not read in the rebuilt tree */
  readonly sysfsProblems: string[];
}

export interface CollectorBoot {
  readonly machine: string;
  /** every event of the boot, the scenarios' and those between them (restoring the drivers), each host's in seq order */
  readonly events: IommuEvent[];
  readonly lines: AuditedLine[];
  readonly scenarios: CollectorScenario[];
  readonly signals: { readonly uevents: boolean; readonly tracePipe: boolean } | null;
  readonly stats: { readonly events: number; readonly invalid: number; readonly ignored: Record<string, number> };
}

/** the guest's sysfs entries as a tree the collector's readTopology reads (links kept as links) */
export const rebuildSysfs = (entries: readonly SysfsRecord[], root: string): void => {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  // a link that has entries below it (bus/pci/devices/X) is followed in sysfs: here it is a directory
  const parents = new Set(entries.map((e) => dirname(e.path)));
  for (const e of entries) {
    const full = join(root, e.path);
    if (e.dir || parents.has(e.path)) mkdirSync(full, { recursive: true });
    else if (e.link !== undefined) {
      mkdirSync(dirname(full), { recursive: true });
      symlinkSync(e.link, full);
    } else if (e.hex !== undefined && e.errno === undefined) {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, Buffer.from(e.hex, 'hex'));
    }
  }
};

interface Open {
  readonly collector: Collector;
  /** the rebuilt sysfs tree its snapshots read */
  readonly root: string;
  readonly spool: Spool;
  readonly scenario: CollectorScenario | null;
}

/** feeds one boot's captured inputs through the collector, one collector and spool per scenario */
export const runCollectorOn = async (machine: string, records: readonly GuestRecord[], workDir: string): Promise<CollectorBoot> => {
  const lines: AuditedLine[] = [];
  const scenarios: CollectorScenario[] = [];
  const stats = { events: 0, invalid: 0, ignored: {} as Record<string, number> };
  const spools: Spool[] = [];
  const events: IommuEvent[] = [];
  let signals: CollectorBoot['signals'] = null;
  const open = (name: string, scenario: string | null, sysRoot: string, kernelRelease?: string): Open => {
    const host = `oracle-collector-${machine}-${name}`;
    let clock = 1_000_000_000n;
    const spool = openSpool({ path: join(workDir, `${host}.spool.sqlite`), host, durability: 'normal', nowNs: () => (clock += 1_000n) });
    spools.push(spool);
    const s: CollectorScenario | null = scenario === null ? null : { machine, scenario, host, events: [], steps: [], sysfsProblems: [] };
    // the problems readTopology reports (logged as collector.sysfs.problem) are kept with the scenario
    const logger = { warn: (o: object) => void ('problem' in o && s?.sysfsProblems.push(String(o.problem))), info: () => undefined, error: () => undefined };
    const collector = createCollector(spool, { sysRoot, logger, ...(kernelRelease ? { kernelRelease } : {}), audit: (a) => lines.push({ ...a, machine, scenario }) });
    if (s) scenarios.push(s);
    return { collector, spool, root: sysRoot, scenario: s };
  };
  let cur = open('between', null, join(workDir, 'no-sysfs'));
  const between = cur;
  let uevents: string[] = [];
  let traces: string[] = [];
  let sysfs: SysfsRecord[] | null = null;
  /** a dump after a step that changed the PCI tree (remove, rescan): the tree the collector's hotplug snapshot reads */
  let stepSysfs: SysfsRecord[] = [];
  let begin: { scenario: string; release: string } | null = null;
  let stepLine: number | null = null;
  /** reads what the guest shipped since the last step into the collector, then closes that step */
  const flush = async (): Promise<void> => {
    // a PCI add or remove uevent makes the collector take a snapshot (in the background): the step is not
    // read until that snapshot is spooled, so it lands in its own step and reads its own tree
    if (uevents.length > 0) await cur.collector.readNetlinkHex(Readable.from([uevents.join('\n')]));
    await cur.collector.snapshotsSpooled();
    if (traces.length > 0) await cur.collector.readTracePipe(Readable.from([traces.join('\n')]));
    uevents = [];
    traces = [];
    if (cur.scenario && stepLine !== null) cur.scenario.steps.push({ line: stepLine, lastSeq: cur.spool.nextSeq() - 1 });
    stepLine = null;
  };
  const collectEvents = (): void => {
    if (cur.scenario) cur.scenario.events.push(...cur.spool.peek(1_000_000).map((e) => e.event));
  };
  const allEvents = (): IommuEvent[] => [...scenarios.flatMap((s) => s.events), ...between.spool.peek(1_000_000).map((e) => e.event)];
  try {
    for (const r of records) {
      switch (r.t) {
        case 'signals': {
          // a later record with false (the netlink socket overflowed) sticks: something was lost
          const was = signals as CollectorBoot['signals'];
          signals = { uevents: (was?.uevents ?? true) && r.uevents, tracePipe: (was?.tracePipe ?? true) && r.tracePipe };
          break;
        }
        case 'uevent':
          uevents.push(r.hex);
          break;
        case 'trace':
          traces.push(r.line);
          break;
        case 'begin':
          await flush();
          collectEvents();
          begin = { scenario: r.scenario, release: r.release };
          sysfs = [];
          break;
        case 'sysfs':
          if (sysfs) sysfs.push(r);
          else stepSysfs.push(r);
          break;
        case 'sysfs-end': {
          if ((!begin || !sysfs) && cur.scenario) {
            // after a remove or rescan step: the tree as it is now, then that step's signals
            rebuildSysfs(stepSysfs, cur.root);
            await flush();
          }
          stepSysfs = [];
          if (!begin || !sysfs) break;
          const root = join(workDir, 'sysfs', machine, begin.scenario);
          rebuildSysfs(sysfs, root);
          cur = open(begin.scenario, begin.scenario, root, begin.release);
          // the collector's start-up snapshot, through its own readTopology
          await cur.collector.snapshot('start');
          sysfs = null;
          begin = null;
          break;
        }
        case 'op':
          await flush();
          stepLine = r.line;
          break;
        case 'end':
        case 'done':
          await flush();
          collectEvents();
          cur = between;
          break;
        default:
          break;
      }
    }
    await flush();
    collectEvents();
    events.push(...allEvents());
  } finally {
    for (const s of spools) s.close();
  }
  for (const l of lines) {
    if (l.outcome?.kind === 'event') stats.events += 1;
    else if (l.outcome?.kind === 'invalid') stats.invalid += 1;
    else if (l.outcome?.kind === 'ignored') stats.ignored[l.outcome.rule] = (stats.ignored[l.outcome.rule] ?? 0) + 1;
  }
  return { machine, events, lines, scenarios, signals, stats };
};

/**
 * What the collector's signals cannot tell, so its view says "unknown" for them:
 * - owner: no uevent, sysfs file or iommu tracepoint marks a group's user owner (iommu_group_claim_dma_owner
 *   is silent; a VFIO bind emits no uevent);
 * - domain kind: attach_device_to_domain (drivers/iommu/iommu.c __iommu_attach_device) names the device,
 *   not the domain or its kind; /sys/kernel/iommu_groups/N/type is the default domain's type only.
 */
export const UNOBSERVABLE = ['owner', 'domainKind'] as const;

/** the state both sides can see: per group its members, owner and domain kind; per device its driver */
export interface ObservableView {
  readonly groups: Record<string, { members: string[]; owner: string; domainKind: string }>;
  readonly drivers: Record<string, string | null>;
}

export const viewOf = (host: HostState | undefined, observedByCollector: boolean): ObservableView => {
  const groups: ObservableView['groups'] = {};
  const drivers: ObservableView['drivers'] = {};
  for (const [g, s] of Object.entries(host?.groups ?? {})) {
    // from the collector's signals alone the projection itself says owner and domain kind are unknown
    // (ownerKnown false); the recorded side knows them from its first VFIO or iommufd call on
    const unknown = s.ownerKnown === false;
    if (observedByCollector && !unknown) throw new Error(`group ${g}: the collector's projection claims to know the owner`);
    const owner = unknown ? 'unknown' : (s.userOwner?.kind ?? 'none');
    const domainKind = unknown ? 'unknown' : s.domain.kind;
    groups[g] = { members: [...s.members].sort(), owner, domainKind };
  }
  for (const [d, s] of Object.entries(host?.devices ?? {})) drivers[d] = s.driver;
  return { groups, drivers };
};

export interface StepComparison {
  readonly line: number;
  readonly recorded: ObservableView;
  readonly observed: ObservableView;
}

/**
 * At every step: the projection of the recorded operations up to that step, and the projection of what
 * the collector had read by then. Owner and domain kind come out "unknown" on the collector side
 * ({@link UNOBSERVABLE}); members and drivers must be equal.
 */
export const compareSteps = (history: ScenarioHistory, observed: CollectorScenario): StepComparison[] => {
  const lineOf = (e: IommuEvent): number | undefined => {
    const l = e.labels?.find((x) => x.startsWith('line:'));
    return l === undefined ? undefined : Number(l.slice(5));
  };
  return observed.steps.map((step) => {
    let upTo = 0;
    for (let i = 0; i < history.events.length; i++) {
      const l = lineOf(history.events[i]!);
      if (l !== undefined && l > step.line) break;
      upTo = i + 1;
    }
    const recorded = foldEvents(createFleetProjection(), history.events.slice(0, upTo)).hosts[history.host];
    const seen = foldEvents(createFleetProjection(), observed.events.filter((e) => e.seq <= step.lastSeq)).hosts[observed.host];
    return { line: step.line, recorded: viewOf(recorded, false), observed: viewOf(seen, true) };
  });
};

/**
 * What the observed view must equal: the recorded view, with "unknown" where the observed view said so
 * for an unobservable field (never for members or drivers). A known owner or domain kind on the observed
 * side must be the recorded one.
 */
export const expectedObservation = (recorded: ObservableView, observed: ObservableView): ObservableView => ({
  drivers: recorded.drivers,
  groups: Object.fromEntries(
    Object.entries(recorded.groups).map(([g, s]) => {
      const o = observed.groups[g];
      return [g, { ...s, owner: o?.owner === 'unknown' ? 'unknown' : s.owner, domainKind: o?.domainKind === 'unknown' ? 'unknown' : s.domainKind }];
    }),
  ),
});
