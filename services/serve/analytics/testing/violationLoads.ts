import type { ViolationRecord } from '../analyticsSink.js';

/** a fixed pseudo-random sequence (the same violations on every run) */
const random = (seed: number): (() => number) => {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
};

/** a rule of each severity, two of them warnings: the (rule, severity) pairs the analytics specs write violations of */
export const RULES_OF_EVERY_SEVERITY: readonly (readonly [string, string])[] = [
  ['tenant-mixing', 'critical'],
  ['unsafe-interrupts', 'warning'],
  ['passthrough-refused-not-viable', 'warning'],
  ['translated-by-unattached-domain', 'info'],
];

export interface ViolationLoadsOptions {
  readonly seed: number;
  readonly hosts: readonly string[];
  /** (rule, severity) pairs */
  readonly rules: readonly (readonly [string, string])[];
  readonly loads: number;
  readonly stepsPerLoad: number;
  /** the first event's time, ns */
  readonly startNs: bigint;
  /** the time from one event to the next, drawn from the same sequence @defaultValue one second, none drawn */
  readonly gapNs?: (next: () => number) => bigint;
}

/**
 * Violations as the analyzer writes them, in loads of rows: a condition (host, rule, subject) opens an occurrence (key:
 * the condition and the opening event), which may be written again while open (its evidence grows), closes with a row
 * of its own, and may open again later as a new occurrence; an occurrence opened and closed by one event is written
 * closed only. Row versions are the events' positions, from 1.
 */
export const violationLoads = (o: ViolationLoadsOptions): ViolationRecord[][] => {
  const next = random(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const open = new Map<string, ViolationRecord>();
  const loads: ViolationRecord[][] = [];
  let position = 0n;
  let time = o.startNs;
  for (let load = 0; load < o.loads; load++) {
    const rows: ViolationRecord[] = [];
    for (let step = 0; step < o.stepsPerLoad; step++) {
      position++;
      time += o.gapNs === undefined ? 1_000_000_000n : o.gapNs(next);
      const host = pick(o.hosts);
      const [rule, severity] = pick(o.rules);
      const subject = Math.floor(next() * 3);
      const condition = `${rule}|${host}|${subject}`;
      const at = { eventId: `e${position}`, globalPosition: position, timeNs: time };
      const current = open.get(condition);
      const r = next();
      if (current === undefined) {
        const opened: ViolationRecord = { key: `${condition}@e${position}`, host, group: subject, rule, severity, message: condition, opened: at, evidence: [at.eventId], version: position };
        if (r < 0.15) rows.push({ ...opened, closed: at });
        else {
          rows.push(opened);
          open.set(condition, opened);
        }
      } else if (r < 0.45) {
        rows.push({ ...current, closed: at, evidence: [...current.evidence, at.eventId], version: position });
        open.delete(condition);
      } else {
        const again: ViolationRecord = { ...current, evidence: [...current.evidence, at.eventId], version: position };
        rows.push(again);
        open.set(condition, again);
      }
    }
    loads.push(rows);
  }
  return loads;
};
