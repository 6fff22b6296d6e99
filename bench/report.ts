/**
 * Pure logic of the bench runner: ratios, growth across sizes, comparisons between runs, and the text
 * report. No I/O here, so it is unit-tested (report.unit.spec.ts); bench/run.ts does the measuring.
 */
import type { Measurement } from './harness.js';

export const RESULTS_FORMAT = 'iommutrail-bench/1';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly platform: string;
  readonly arch: string;
  readonly osRelease: string;
  readonly node: string;
}

export interface MeasurementResult extends Measurement {
  /** value / reference.value; null when the reference is 0 or not finite */
  readonly ratio: number | null;
  /** only when the figure gives a targetRatio: higher-is-better needs ratio ≥ target, lower-is-better ratio ≤ target */
  readonly targetMet?: boolean;
}

export interface SizeResult {
  readonly size: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly measurements: readonly MeasurementResult[];
  readonly durationMs: number;
  /** process.resourceUsage().maxRSS of the worker that ran this size alone, in bytes */
  readonly peakRssBytes: number | null;
  /** rss of the same worker after loading the runner but before importing the figure */
  readonly baselineRssBytes: number | null;
  /** highest heapUsed seen by a sampler during measure (best effort: synchronous loops starve the sampler) */
  readonly peakHeapUsedBytes: number | null;
}

export interface GrowthStep {
  readonly fromSize: number;
  readonly toSize: number;
  /**
   * the exponent k in cost ∝ size^k between the two sizes: 1 is linear. For rates (unit ending in /s)
   * the cost is the total time size/value; for other units it is the value itself.
   */
  readonly exponent: number | null;
}

export interface Growth {
  readonly label: string;
  readonly unit: string;
  /** per size: the value and, for rates of items (not bytes), the time per item in nanoseconds */
  readonly points: readonly { readonly size: number; readonly value: number; readonly nsPerItem: number | null }[];
  readonly steps: readonly GrowthStep[];
}

export interface FigureResult {
  readonly name: string;
  readonly issue: number | null;
  readonly file: string;
  readonly error?: string;
  readonly sizes: readonly SizeResult[];
  readonly growth: readonly Growth[];
}

export interface BenchResults {
  readonly format: typeof RESULTS_FORMAT;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly mode: 'quick' | 'full';
  readonly machine: MachineInfo;
  readonly git: { readonly commit: string | null; readonly dirty: boolean | null };
  readonly figures: readonly FigureResult[];
  /** set by {@link mergeResults}: the runs whose sizes this file gathers */
  readonly mergedFrom?: readonly { readonly startedAt: string; readonly commit: string | null }[];
}

export const isRateUnit = (unit: string): boolean => /\/\s*s(ec)?$/i.test(unit.trim());

/** MB/s and the like: a rate of bytes, not of the items the size counts (so no time per item) */
export const isByteRate = (unit: string): boolean => /^[kKMGT]?i?B\s*\/\s*s(ec)?$/.test(unit.trim());

export const ratioOf = (value: number, reference: number): number | null => {
  if (!Number.isFinite(value) || !Number.isFinite(reference) || reference === 0) return null;
  return value / reference;
};

export const withRatio = (m: Measurement): MeasurementResult => {
  const ratio = ratioOf(m.value, m.reference.value);
  if (m.targetRatio === undefined) return { ...m, ratio };
  const targetMet = ratio !== null && (m.higherIsBetter ? ratio >= m.targetRatio : ratio <= m.targetRatio);
  return { ...m, ratio, targetMet };
};

/** cost ∝ size^k between two points; rates turn into total time (size / rate) first */
export const growthExponent = (
  a: { size: number; value: number },
  b: { size: number; value: number },
  unit: string,
): number | null => {
  if (a.size <= 0 || b.size <= 0 || a.size === b.size || a.value <= 0 || b.value <= 0) return null;
  const costA = isRateUnit(unit) ? a.size / a.value : a.value;
  const costB = isRateUnit(unit) ? b.size / b.value : b.value;
  const k = Math.log(costB / costA) / Math.log(b.size / a.size);
  return Number.isFinite(k) ? k : null;
};

/** one Growth per measurement label seen at two or more successful sizes, sizes ascending */
export const growthOf = (sizes: readonly SizeResult[]): Growth[] => {
  const byLabel = new Map<string, { unit: string; points: { size: number; value: number }[] }>();
  for (const s of [...sizes].filter((x) => x.ok).sort((x, y) => x.size - y.size)) {
    for (const m of s.measurements) {
      const entry = byLabel.get(m.label) ?? { unit: m.unit, points: [] };
      entry.points.push({ size: s.size, value: m.value });
      byLabel.set(m.label, entry);
    }
  }
  const out: Growth[] = [];
  for (const [label, { unit, points }] of byLabel) {
    if (points.length < 2) continue;
    const rate = isRateUnit(unit);
    const steps: GrowthStep[] = [];
    for (let i = 1; i < points.length; i += 1) {
      const a = points[i - 1]!;
      const b = points[i]!;
      steps.push({ fromSize: a.size, toSize: b.size, exponent: growthExponent(a, b, unit) });
    }
    out.push({
      label,
      unit,
      points: points.map((p) => ({ ...p, nsPerItem: rate && !isByteRate(unit) && p.value > 0 ? 1e9 / p.value : null })),
      steps,
    });
  }
  return out;
};

/**
 * Several runs as one (`npm run bench -- --merge a.json,b.json`): each figure's sizes from every run that has
 * them, a size run twice taken from the later run, sizes ascending and growth recomputed across them. Each
 * size keeps its own same-run reference; only the growth spans runs (the files' times and commits are kept).
 */
export const mergeResults = (runs: readonly BenchResults[]): BenchResults => {
  if (runs.length === 0) throw new Error('mergeResults: no runs');
  const ordered = [...runs].sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  const figures = new Map<string, FigureResult>();
  for (const run of ordered)
    for (const f of run.figures) {
      const sizes = new Map((figures.get(f.name)?.sizes ?? []).map((s) => [s.size, s]));
      for (const s of f.sizes) sizes.set(s.size, s);
      const merged = [...sizes.values()].sort((a, b) => a.size - b.size);
      figures.set(f.name, { ...f, sizes: merged, growth: growthOf(merged) });
    }
  const last = ordered.at(-1)!;
  return {
    ...last,
    startedAt: ordered[0]!.startedAt,
    figures: [...figures.values()],
    mergedFrom: ordered.flatMap((r) => r.mergedFrom ?? [{ startedAt: r.startedAt, commit: r.git.commit }]),
  };
};

// ---- comparison between two result files ----

export interface ComparisonRow {
  readonly figure: string;
  readonly label: string;
  readonly size: number;
  readonly unit: string;
  readonly before: number;
  readonly after: number;
  /** (after - before) / before */
  readonly change: number | null;
  /** the ratio to the same-run reference, before and after: robust to a faster or slower machine */
  readonly ratioBefore: number | null;
  readonly ratioAfter: number | null;
  readonly verdict: 'better' | 'worse' | 'same';
}

/** changes smaller than this fraction are reported as 'same' (run-to-run noise) */
export const NOISE_FRACTION = 0.05;

export const compareResults = (before: BenchResults, after: BenchResults, noise = NOISE_FRACTION): ComparisonRow[] => {
  const key = (figure: string, label: string, size: number) => `${figure}\u0000${label}\u0000${size}`;
  const old = new Map<string, MeasurementResult>();
  for (const f of before.figures)
    for (const s of f.sizes) for (const m of s.measurements) old.set(key(f.name, m.label, s.size), m);
  const rows: ComparisonRow[] = [];
  for (const f of after.figures)
    for (const s of f.sizes)
      for (const m of s.measurements) {
        const o = old.get(key(f.name, m.label, s.size));
        if (o === undefined) continue;
        const change = ratioOf(m.value - o.value, o.value);
        const improved = change === null ? 0 : m.higherIsBetter ? change : -change;
        const verdict = change === null || Math.abs(change) < noise ? 'same' : improved > 0 ? 'better' : 'worse';
        rows.push({
          figure: f.name,
          label: m.label,
          size: s.size,
          unit: m.unit,
          before: o.value,
          after: m.value,
          change,
          ratioBefore: o.ratio,
          ratioAfter: m.ratio,
          verdict,
        });
      }
  return rows;
};

// ---- formatting ----

const sig = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 4 });

export const formatNumber = (n: number): string => {
  if (!Number.isFinite(n)) return String(n);
  return sig.format(n);
};

/** 10000 → 10k, 1000000 → 1M, 1500 → 1.5k */
export const formatSize = (n: number): string => {
  const units: [number, string][] = [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [scale, suffix] of units) if (Math.abs(n) >= scale) return `${formatNumber(n / scale)}${suffix}`;
  return String(n);
};

export const formatBytes = (n: number | null): string => {
  if (n === null) return 'n/a';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
};

export const formatRatio = (r: number | null): string => (r === null ? 'n/a' : `${r.toFixed(r < 10 ? 3 : 1)}×`);

export const formatMeasurement = (m: MeasurementResult): string => {
  const target =
    m.targetRatio === undefined
      ? ''
      : `  target ${m.higherIsBetter ? '≥' : '≤'} ${formatRatio(m.targetRatio)} ${m.targetMet ? 'met' : 'NOT met'}`;
  return (
    `${m.label}: ${formatNumber(m.value)} ${m.unit}` +
    `  | ${m.reference.kind} ${m.reference.label}: ${formatNumber(m.reference.value)} ${m.unit}` +
    `  | ratio ${formatRatio(m.ratio)} (${m.higherIsBetter ? 'higher' : 'lower'} is better)${target}`
  );
};

export const formatGrowth = (g: Growth): string[] => {
  const rate = isRateUnit(g.unit);
  const pts = g.points
    .map((p) => `${formatSize(p.size)}: ${rate && p.nsPerItem !== null ? `${formatNumber(p.nsPerItem)} ns/item` : `${formatNumber(p.value)} ${g.unit}`}`)
    .join(', ');
  const steps = g.steps
    .map((s) => `${formatSize(s.fromSize)}→${formatSize(s.toSize)} k=${s.exponent === null ? 'n/a' : s.exponent.toFixed(2)}`)
    .join(', ');
  return [`growth ${g.label}: ${pts}`, `  ${rate ? 'total time' : g.unit} ∝ size^k (k=1 linear): ${steps}`];
};

export const formatMachine = (m: MachineInfo): string =>
  `${m.cpuModel} × ${m.cores} cores, ${formatBytes(m.memoryBytes)} RAM, ${m.platform}/${m.arch} ${m.osRelease}, Node ${m.node}`;

export const formatSizeResult = (s: SizeResult): string[] => {
  const head =
    `size ${formatSize(s.size)} (${s.size}): ${s.ok ? 'ok' : 'FAILED'} in ${formatNumber(s.durationMs)} ms, ` +
    `peak rss ${formatBytes(s.peakRssBytes)} (baseline ${formatBytes(s.baselineRssBytes)}), ` +
    `peak heapUsed ${formatBytes(s.peakHeapUsedBytes)}`;
  const lines = [head];
  if (s.error !== undefined) lines.push(`  error: ${s.error}`);
  for (const m of s.measurements) lines.push(`  ${formatMeasurement(m)}`);
  return lines;
};

export const formatFigure = (f: FigureResult): string[] => {
  const lines = [`== ${f.name}${f.issue === null ? '' : ` (issue ${f.issue})`}  [${f.file}]`];
  if (f.error !== undefined) lines.push(`  FAILED: ${f.error}`);
  for (const s of f.sizes) lines.push(...formatSizeResult(s).map((l) => `  ${l}`));
  for (const g of f.growth) lines.push(...formatGrowth(g).map((l) => `  ${l}`));
  return lines;
};

export const formatComparison = (rows: readonly ComparisonRow[]): string[] => {
  if (rows.length === 0) return ['compare: no measurement in common with the old results'];
  return rows.map(
    (r) =>
      `${r.verdict === 'better' ? '+' : r.verdict === 'worse' ? '-' : '='} ${r.figure} / ${r.label} @ ${formatSize(r.size)}: ` +
      `${formatNumber(r.before)} → ${formatNumber(r.after)} ${r.unit} (${r.change === null ? 'n/a' : `${r.change >= 0 ? '+' : ''}${(r.change * 100).toFixed(1)}%`}), ` +
      `ratio ${formatRatio(r.ratioBefore)} → ${formatRatio(r.ratioAfter)}`,
  );
};
