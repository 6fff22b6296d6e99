import type { IommuEvent, RecordedEvent, ValidationError } from '../schemas/index.js';
import { createHistoryTracker, isOperationEvent, type HistoryTracker } from './historyCheck.js';
import { createIdMap, type IdMap } from './idMap.js';
import type { Domain, ModelOutcome, ModelState, ProtocolDecider } from '../projections/kernel/types.js';
import { NO_CHANGES, type ModelChanges } from '../projections/kernel/mutate.js';
import { ictxOfOperation, isObservation, recordedOutcomeOf, toOperation, type RecordedOutcome } from '../projections/kernel/operations.js';
import type { Divergence, EventRef, GroupDifference, GroupSummary, HostReport, InputError, ReplayReport, VariantDifference, VariantHostReport } from './report.js';
import { evolveWithDecision } from '../projections/kernel/decider.js';
import { judgedReleaseText, resolveStage } from './stages/releaseStage.js';

/** a history file line as services/shared/files/historyFile.ts yields it */
export type HistoryLineInput = { readonly ok: true; readonly line: number; readonly event: IommuEvent } | { readonly ok: false; readonly line: number; readonly error: ValidationError };
export type ReplayInput = IommuEvent | RecordedEvent | HistoryLineInput;

export interface ReplayOptions {
  /** a variant or stage by name (`stage2`, `upstream@6.1`: stages/releaseStage.ts), or a stage's decider (stages/dataStage.ts) */
  readonly variant: string | ProtocolDecider;
  readonly events: Iterable<ReplayInput> | AsyncIterable<ReplayInput>;
  /** replay a second variant side by side and report where the two decide differently */
  readonly compareWith?: string | ProtocolDecider;
  /** how messages name the input, e.g. the file name */
  readonly source?: string;
  /** divergences kept per host and variant @defaultValue 1000 */
  readonly maxDivergences?: number;
  /** called every 4096 events with the count so far (for a progress bar) */
  readonly onProgress?: (events: number) => void;
}

const ID_KEYS = new Set(['devId', 'ioasId', 'hwptId', 'ptId', 'viommuId', 'vdeviceId', 'veventqId', 'hwQueueId', 'faultId']);
/** ids that are always fresh allocations (pt_id may name an existing hwpt) */
const FRESH_KEYS = new Set(['devId', 'ioasId', 'hwptId', 'viommuId', 'vdeviceId', 'veventqId', 'hwQueueId', 'faultId']);

interface Machine {
  readonly decider: ProtocolDecider;
  readonly state: ModelState;
  readonly ids: IdMap;
  /** what the model tells as it applies a decision: the freed objects' ids forgotten */
  readonly changes: ModelChanges;
  readonly divergences: Divergence[];
  omitted: number;
  root: EventRef | null;
  crash: VariantHostReport['crash'] | null;
  operations: number;
  last: { outcome: ModelOutcome; rule: string } | null;
}

interface HostRun {
  readonly host: string;
  /** the kernel release its first topology snapshot records (null: none recorded) */
  recordedRelease: string | null;
  readonly tracker: HistoryTracker;
  readonly machines: Machine[];
  events: number;
  operations: number;
  readonly differences: VariantDifference[];
  differencesOmitted: number;
}

/** a freed object's recorded id must not reach whatever reuses the slot: the replay's id map forgets it as the transition frees it */
const forgettingFreed = (ids: IdMap): ModelChanges => ({ ...NO_CHANGES, freed: (ictx, id) => ids.forgetReplayed(ictx, id) });

const newMachine = (decider: ProtocolDecider): Machine => {
  const ids = createIdMap();
  return { decider, state: decider.initialState(), ids, changes: forgettingFreed(ids), divergences: [], omitted: 0, root: null, crash: null, operations: 0, last: null };
};


/** compare and, for fresh allocations, bind recorded ↔ replayed ids */
const matches = (recorded: RecordedOutcome, replayed: ModelOutcome, ids: IdMap, ictx: string | undefined): boolean => {
  if (!recorded.ok || !replayed.ok) {
    return !recorded.ok && !replayed.ok && 'errno' in replayed && replayed.errno === recorded.errno;
  }
  let same = true;
  for (const key in replayed) {
    if (key === 'ok') continue;
    const value = (replayed as Record<string, unknown>)[key];
    const rec = recorded[key];
    if (rec === undefined) continue;
    if (ID_KEYS.has(key) && ictx !== undefined && typeof value === 'number' && typeof rec === 'number') {
      if (FRESH_KEYS.has(key)) {
        ids.bind(ictx, rec, value);
        continue;
      }
      const boundRec = ids.toRecorded(ictx, value);
      const boundRep = ids.boundReplayed(ictx, rec);
      if (boundRec === undefined && boundRep === undefined) ids.bind(ictx, rec, value);
      else if (boundRec !== rec) same = false;
      continue;
    }
    if (rec !== value) same = false;
  }
  return same;
};

/** replayed ids shown as their recorded names, so a divergence reads in the recording's numbering */
const inRecordedIds = (o: ModelOutcome, ids: IdMap, ictx: string | undefined): ModelOutcome => {
  if (!o.ok || ictx === undefined) return o;
  let out: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(o)) {
    if (!ID_KEYS.has(k) || typeof v !== 'number') continue;
    const rec = ids.toRecorded(ictx, v);
    if (rec !== undefined && rec !== v) (out ??= { ...o })[k] = rec;
  }
  return (out as ModelOutcome | null) ?? o;
};

const refOf = (e: IommuEvent, line: number | undefined): EventRef => (line === undefined ? { id: e.id, seq: e.seq, type: e.type } : { id: e.id, seq: e.seq, type: e.type, line });

const showDomain = (d: Domain, ids: IdMap): string => {
  switch (d.kind) {
    case 'default':
      return 'default';
    case 'blocking':
      return d.ictx ? `blocking(${d.ictx})` : 'blocking';
    case 'hwpt':
      return `hwpt ${ids.toRecorded(d.ictx, d.hwpt) ?? `#${d.hwpt}`}@${d.ictx}`;
    case 'container':
      return `container ${d.container}`;
    default: {
      const unreachable: never = d;
      return unreachable;
    }
  }
};

export const summarizeGroups = (state: ModelState, ids: IdMap = createIdMap()): Record<string, GroupSummary> => {
  const out: Record<string, GroupSummary> = {};
  const sorted = [...state.groups.values()].sort((a, b) => a.id - b.id);
  for (const g of sorted) {
    const devices: Record<string, { driver: string | null; domain: string }> = {};
    for (const name of g.devices) {
      const d = state.devices.get(name);
      if (d) devices[name] = { driver: d.driver, domain: showDomain(d.domain, ids) };
    }
    out[String(g.id)] = {
      owner: g.owner === null ? null : g.owner.kind === 'ictx' ? `iommufd ${g.owner.ictx}` : `container ${g.owner.container}`,
      ownerCnt: g.ownerCnt,
      attached: [...g.attached],
      container: g.container ? `${g.container.kind} ${g.container.handle}` : null,
      devices,
    };
  }
  return out;
};

const diffGroups = (names: readonly [string, string], a: Record<string, GroupSummary>, b: Record<string, GroupSummary>): GroupDifference[] => {
  const out: GroupDifference[] = [];
  const groups = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort((x, y) => Number(x) - Number(y));
  for (const g of groups) {
    const ga = a[g];
    const gb = b[g];
    const fields = new Set<string>(['owner', 'ownerCnt', 'attached', 'container']);
    for (const d of [...Object.keys(ga?.devices ?? {}), ...Object.keys(gb?.devices ?? {})]) fields.add(`devices.${d}`);
    for (const f of fields) {
      const pick = (s: GroupSummary | undefined): unknown => (s === undefined ? undefined : f.startsWith('devices.') ? s.devices[f.slice(8)] : s[f as keyof GroupSummary]);
      const va = pick(ga);
      const vb = pick(gb);
      if (JSON.stringify(va) !== JSON.stringify(vb)) out.push({ group: g, field: f, values: { [names[0]]: va ?? null, [names[1]]: vb ?? null } });
    }
  }
  return out;
};

/**
 * Replays a recorded history against a protocol model (and optionally a second one), per host, starting
 * from the recorded topology. Pure: same input, same report (no clock, no randomness).
 */
export const replayHistory = async (options: ReplayOptions): Promise<ReplayReport> => {
  const stageOf = (s: string | ProtocolDecider): ProtocolDecider => (typeof s === 'string' ? resolveStage(s) : s);
  const primary = stageOf(options.variant);
  const second = options.compareWith === undefined ? undefined : stageOf(options.compareWith);
  const deciders = [primary, ...(second && second.variant !== primary.variant ? [second] : [])];
  const max = options.maxDivergences ?? 1000;
  const hosts = new Map<string, HostRun>();
  const inputErrors: InputError[] = [];
  let count = 0;

  const hostRun = (host: string): HostRun => {
    let run = hosts.get(host);
    if (!run) {
      run = { host, recordedRelease: null, tracker: createHistoryTracker(), machines: deciders.map(newMachine), events: 0, operations: 0, differences: [], differencesOmitted: 0 };
      hosts.set(host, run);
    }
    return run;
  };

  const step = (event: IommuEvent, line: number | undefined): void => {
    const run = hostRun(event.host);
    run.events += 1;
    const operation = isOperationEvent(event);
    const recorded = operation ? recordedOutcomeOf(event) : null;
    const problem = run.tracker.check(event, recorded);
    if (problem) {
      inputErrors.push({
        ...(options.source !== undefined ? { source: options.source } : {}),
        ...(line !== undefined ? { line } : {}),
        host: event.host,
        eventId: event.id,
        seq: event.seq,
        path: problem.path,
        message: problem.message,
      });
      return;
    }
    if (!operation || recorded === null) {
      if (event.type === 'TopologySnapshotTaken') run.recordedRelease ??= event.data.capabilities.kernelRelease ?? null;
      if (isObservation(event)) for (const m of run.machines) if (!m.crash) m.decider.evolve(m.state, event);
      run.tracker.apply(event, null);
      return;
    }
    run.operations += 1;
    const pair = run.machines.length === 2;
    let ref: EventRef | null = null;
    for (const m of run.machines) {
      m.last = null;
      if (m.crash) continue;
      m.operations += 1;
      const op = toOperation(event, m.ids.toReplayed, run.tracker.fdIctx);
      // decide, then evolve with the variant's own decision (its recorded event), whatever the record says
      const decision = m.decider.decide(op, m.state);
      evolveWithDecision(m.decider, m.state, decision, m.changes);
      const ictx = decision.outcome.ok ? ictxOfOperation(op, run.tracker.fdIctx) : undefined;
      const same = matches(recorded, decision.outcome, m.ids, ictx);
      // the recorded-numbering view of the outcome is only needed for reports
      if (pair) m.last = { outcome: inRecordedIds(decision.outcome, m.ids, ictx), rule: decision.rule };
      if (!same) {
        ref ??= refOf(event, line);
        if (m.divergences.length < max) {
          m.divergences.push({
            event: ref,
            recorded,
            replayed: inRecordedIds(decision.outcome, m.ids, ictx),
            rule: decision.rule,
            ruleText: m.decider.rules[decision.rule]?.text ?? '',
            ...(m.root ? { consequenceOf: m.root } : {}),
          });
        } else m.omitted += 1;
        m.root ??= ref;
      }
      if (!decision.outcome.ok && 'crash' in decision.outcome) m.crash = { event: (ref ??= refOf(event, line)), rule: decision.rule, message: decision.outcome.crash };
    }
    if (pair) {
      const [a, b] = run.machines as [Machine, Machine];
      if (JSON.stringify(a.last?.outcome ?? null) !== JSON.stringify(b.last?.outcome ?? null)) {
        if (run.differences.length < max) {
          run.differences.push({
            event: (ref ??= refOf(event, line)),
            outcomes: { [a.decider.variant]: a.last?.outcome ?? null, [b.decider.variant]: b.last?.outcome ?? null },
            rules: { [a.decider.variant]: a.last?.rule ?? null, [b.decider.variant]: b.last?.rule ?? null },
          });
        } else run.differencesOmitted += 1;
      }
    }
    run.tracker.apply(event, recorded);
  };

  const consume = (input: ReplayInput): void => {
    count += 1;
    if (options.onProgress && (count & 4095) === 0) options.onProgress(count);
    // a bare event is the common case (and `type` is read from every event anyway)
    if (typeof (input as Partial<IommuEvent>).type !== 'string') {
      if ('streamName' in input) return step(input.event, undefined);
      if ('ok' in input && 'line' in input) {
        if (input.ok) return step(input.event, input.line);
        for (const issue of input.error.issues.length ? input.error.issues : [{ path: options.source ?? '(input)', message: input.error.message }]) {
          inputErrors.push({ ...(options.source !== undefined ? { source: options.source } : {}), line: input.line, path: issue.path, message: issue.message });
        }
        return;
      }
    }
    step(input as IommuEvent, undefined);
  };

  if (Symbol.asyncIterator in options.events) for await (const input of options.events as AsyncIterable<ReplayInput>) consume(input);
  else for (const input of options.events as Iterable<ReplayInput>) consume(input);
  options.onProgress?.(count);

  const hostReports: HostReport[] = [...hosts.values()]
    .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0))
    .map((run) => {
      const results = run.machines.map(
        (m): VariantHostReport => ({
          variant: m.decider.variant,
          verdict: m.crash ? 'crashed' : m.divergences.length + m.omitted > 0 ? 'diverges' : 'matches',
          operations: m.operations,
          divergences: m.divergences,
          divergencesOmitted: m.omitted,
          ...(m.crash ? { crash: m.crash } : {}),
          renamedIds: m.ids.renamed(),
          finalGroups: summarizeGroups(m.state, m.ids),
          ...(m.decider.release ? { release: { recorded: run.recordedRelease, stage: m.decider.release.fixed, judgedAs: judgedReleaseText(m.decider.release.fixed, run.recordedRelease) } } : {}),
        }),
      );
      const report: HostReport = { host: run.host, events: run.events, operations: run.operations, results };
      if (results.length === 2) {
        const [a, b] = results as [VariantHostReport, VariantHostReport];
        const variants = [a.variant, b.variant] as const;
        return { ...report, comparison: { variants, operations: run.differences, operationsOmitted: run.differencesOmitted, groups: diffGroups(variants, a.finalGroups, b.finalGroups) } };
      }
      return report;
    });

  const primaryResults = hostReports.map((h) => h.results[0]!);
  return {
    variant: primary.variant,
    ...(second ? { compareWith: second.variant } : {}),
    ...(options.source !== undefined ? { source: options.source } : {}),
    hosts: hostReports,
    inputErrors,
    summary: {
      hosts: hostReports.length,
      events: hostReports.reduce((n, h) => n + h.events, 0),
      operations: hostReports.reduce((n, h) => n + h.operations, 0),
      divergences: primaryResults.reduce((n, r) => n + r.divergences.length + r.divergencesOmitted, 0),
      crashedHosts: primaryResults.filter((r) => r.verdict === 'crashed').length,
      inputErrors: inputErrors.length,
    },
  };
};
