import { okIdsOf, type GroupSummary, type ReplayReport, type Verdict } from './report.js';

/**
 * CI expectations ("golden" files): what replaying a history under each variant is expected to give.
 * Only what a reviewer cares about is kept (verdicts, divergences keyed by seq, crash, final groups),
 * so a diff reads as "seq 12: expected replayed -EBUSY, got ok".
 */
export interface ExpectedDivergence {
  readonly type: string;
  readonly recorded: string;
  readonly replayed: string;
  readonly rule: string;
  readonly rootCause: boolean;
}

export interface HostExpectation {
  readonly verdict: Verdict;
  readonly crash?: { readonly seq: number; readonly rule: string };
  readonly divergences: Readonly<Record<string, ExpectedDivergence>>;
  readonly finalGroups: Readonly<Record<string, GroupSummary>>;
}

export interface Expectation {
  readonly hosts: Readonly<Record<string, HostExpectation>>;
  readonly inputErrors: readonly string[];
}

export interface GoldenFile {
  readonly history: string;
  readonly note: string;
  /** by variant or stage name (`upstream`, `upstream@6.1`, a stage file's name) */
  readonly variants: Partial<Record<string, Expectation>>;
}

const show = (o: { ok: boolean } & Record<string, unknown>): string => {
  if (o.ok) {
    const ids = okIdsOf(o);
    return ids.length ? `ok ${ids.join(' ')}` : 'ok';
  }
  if ('errno' in o) return `-${String(o.errno)}`;
  if ('crash' in o) return `crash`;
  return 'blocks';
};

/** the primary variant's results as an expectation */
export const toExpectation = (report: ReplayReport): Expectation => {
  const hosts: Record<string, HostExpectation> = {};
  for (const h of report.hosts) {
    const r = h.results[0];
    if (!r) continue;
    const divergences: Record<string, ExpectedDivergence> = {};
    for (const d of r.divergences) {
      divergences[`seq ${d.event.seq}`] = { type: d.event.type, recorded: show(d.recorded), replayed: show(d.replayed), rule: d.rule, rootCause: d.consequenceOf === undefined };
    }
    hosts[h.host] = {
      verdict: r.verdict,
      ...(r.crash ? { crash: { seq: r.crash.event.seq, rule: r.crash.rule } } : {}),
      divergences,
      finalGroups: r.finalGroups,
    };
  }
  return { hosts, inputErrors: report.inputErrors.map((e) => `${e.line !== undefined ? `line ${e.line} ` : ''}${e.path}: ${e.message}`) };
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** readable differences, one line per changed leaf: `hosts.lab-s7.divergences.seq 10.replayed: expected "-EBUSY", got "ok ptId=5"` */
export const diffExpectations = (expected: unknown, actual: unknown, path = ''): string[] => {
  if (isObject(expected) && isObject(actual)) {
    const out: string[] = [];
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])];
    for (const k of keys) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in actual)) out.push(`${p}: expected ${JSON.stringify(expected[k])}, now missing`);
      else if (!(k in expected)) out.push(`${p}: new, ${JSON.stringify(actual[k])}`);
      else out.push(...diffExpectations(expected[k], actual[k], p));
    }
    return out;
  }
  return JSON.stringify(expected) === JSON.stringify(actual) ? [] : [`${path || '(root)'}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
};
