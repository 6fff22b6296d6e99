import type { ModelOutcome } from '../projections/kernel/types.js';
import type { RecordedOutcome } from '../projections/kernel/operations.js';

/** where an event sits: enough to find it in the store or the file */
export interface EventRef {
  readonly id: string;
  readonly seq: number;
  readonly type: string;
  /** line in the history file, when it came from one */
  readonly line?: number;
}

export interface Divergence {
  readonly event: EventRef;
  readonly recorded: RecordedOutcome;
  /** replayed ids are given as recorded ids where bound (see idMap.ts), so both sides read alike */
  readonly replayed: ModelOutcome;
  readonly rule: string;
  readonly ruleText: string;
  /** absent on the root cause; later divergences point at it */
  readonly consequenceOf?: EventRef;
}

export interface GroupSummary {
  readonly owner: string | null;
  readonly ownerCnt: number;
  readonly attached: readonly string[];
  readonly container: string | null;
  /** device → "driver | domain" */
  readonly devices: Readonly<Record<string, { readonly driver: string | null; readonly domain: string }>>;
}

export type Verdict = 'matches' | 'diverges' | 'crashed';

export interface VariantHostReport {
  readonly variant: string;
  readonly verdict: Verdict;
  readonly operations: number;
  readonly divergences: readonly Divergence[];
  /** divergences past the report limit */
  readonly divergencesOmitted: number;
  readonly crash?: { readonly event: EventRef; readonly rule: string; readonly message: string };
  /** ids bound to a different number than recorded (allocation order shifted) */
  readonly renamedIds: number;
  readonly finalGroups: Readonly<Record<string, GroupSummary>>;
  /** for a decider that answers per kernel release (upstream): the release the host recorded, the stage's, and what it was judged as */
  readonly release?: { readonly recorded: string | null; readonly stage: string | null; readonly judgedAs: string };
}

/** the same operation decided differently by two variants (ids in recorded numbering) */
export interface VariantDifference {
  readonly event: EventRef;
  readonly outcomes: Readonly<Record<string, ModelOutcome | null>>;
  readonly rules: Readonly<Record<string, string | null>>;
}

export interface GroupDifference {
  readonly group: string;
  readonly field: string;
  readonly values: Readonly<Record<string, unknown>>;
}

export interface HostReport {
  readonly host: string;
  readonly events: number;
  readonly operations: number;
  readonly results: readonly VariantHostReport[];
  readonly comparison?: {
    readonly variants: readonly [string, string];
    readonly operations: readonly VariantDifference[];
    readonly operationsOmitted: number;
    readonly groups: readonly GroupDifference[];
  };
}

export interface InputError {
  readonly source?: string;
  readonly line?: number;
  readonly host?: string;
  readonly eventId?: string;
  readonly seq?: number;
  /** the offending field, e.g. `data.deviceFd` or `history.jsonl:12.data.device` */
  readonly path: string;
  readonly message: string;
}

/** JSON-serialisable: what the CLI prints with --json and the HTTP service returns */
export interface ReplayReport {
  readonly variant: string;
  readonly compareWith?: string;
  readonly source?: string;
  readonly hosts: readonly HostReport[];
  readonly inputErrors: readonly InputError[];
  readonly summary: {
    readonly hosts: number;
    readonly events: number;
    readonly operations: number;
    readonly divergences: number;
    readonly crashedHosts: number;
    readonly inputErrors: number;
  };
}

/**
 * An ok outcome's ids as `key=value`, keys in code-unit order: the words must not depend on how the outcome
 * object was built (parsed events have their keys sorted, a model's outcome has its own order)
 */
export const okIdsOf = (o: object): string[] =>
  Object.keys(o)
    .filter((k) => k !== 'ok')
    .sort()
    .map((k) => `${k}=${String((o as Record<string, unknown>)[k])}`);

const showOutcome = (o: RecordedOutcome | ModelOutcome | null): string => {
  if (o === null) return '(not replayed)';
  if (o.ok) {
    const ids = okIdsOf(o);
    return ids.length ? `ok (${ids.join(', ')})` : 'ok';
  }
  if ('errno' in o) return `-${o.errno}`;
  if ('crash' in o) return `CRASH: ${o.crash}`;
  return `blocks: ${o.blocks}`;
};
export const formatOutcome = showOutcome;

const at = (e: EventRef): string => `seq ${e.seq}${e.line !== undefined ? ` (line ${e.line})` : ''} ${e.type}`;

/** a human summary, root cause first */
export const formatReport = (report: ReplayReport, options: { readonly maxPerHost?: number } = {}): string => {
  const max = options.maxPerHost ?? 10;
  const out: string[] = [];
  const head = report.source ? `${report.source}: ` : '';
  for (const e of report.inputErrors) out.push(`bad input: ${e.source ?? ''}${e.line !== undefined ? `:${e.line}` : ''} ${e.path}: ${e.message}`);
  for (const h of report.hosts) {
    for (const r of h.results) {
      const tag = `${head}host ${h.host} [${r.variant}]${r.release ? ` judged as ${r.release.judgedAs}` : ''}`;
      if (r.verdict === 'matches') out.push(`${tag}: ${r.operations} operation(s), all outcomes match the recording`);
      if (r.verdict === 'crashed' && r.crash) out.push(`${tag}: KERNEL CRASH at ${at(r.crash.event)}: ${r.crash.message} [${r.crash.rule}]`);
      if (r.divergences.length > 0) {
        out.push(`${tag}: ${r.divergences.length + r.divergencesOmitted} divergence(s) in ${r.operations} operation(s)`);
        r.divergences.slice(0, max).forEach((d, i) => {
          const role = i === 0 && !d.consequenceOf ? 'root cause' : `consequence of seq ${d.consequenceOf?.seq ?? '?'}`;
          out.push(`  ${at(d.event)}: recorded ${showOutcome(d.recorded)}, replayed ${showOutcome(d.replayed)} (${role})`);
          out.push(`    rule ${d.rule}: ${d.ruleText}`);
        });
        const rest = r.divergences.length + r.divergencesOmitted - Math.min(max, r.divergences.length);
        if (rest > 0) out.push(`  … ${rest} more`);
      }
    }
    if (h.comparison) {
      const [a, b] = h.comparison.variants;
      out.push(`${head}host ${h.host}: ${a} vs ${b}: ${h.comparison.operations.length + h.comparison.operationsOmitted} operation(s) decided differently`);
      for (const d of h.comparison.operations.slice(0, max)) {
        out.push(`  ${at(d.event)}: ${a} ${showOutcome(d.outcomes[a] ?? null)} [${d.rules[a] ?? '-'}], ${b} ${showOutcome(d.outcomes[b] ?? null)} [${d.rules[b] ?? '-'}]`);
      }
      if (h.comparison.groups.length === 0) out.push('  final state: identical in every group');
      for (const g of h.comparison.groups) out.push(`  group ${g.group} ${g.field}: ${a} ${JSON.stringify(g.values[a])}, ${b} ${JSON.stringify(g.values[b])}`);
    }
  }
  const s = report.summary;
  out.push(
    `${head}${s.hosts} host(s), ${s.events} event(s), ${s.operations} operation(s) replayed on ${report.variant}: ${s.divergences} divergence(s), ${s.crashedHosts} crash(es), ${s.inputErrors} input error(s)`,
  );
  return out.join('\n');
};
