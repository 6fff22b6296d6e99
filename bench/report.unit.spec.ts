import { describe, expect, it } from 'vitest';
import type { Measurement } from './harness.js';
import {
  RESULTS_FORMAT,
  compareResults,
  formatBytes,
  formatGrowth,
  formatMeasurement,
  formatSize,
  growthExponent,
  growthOf,
  isRateUnit,
  mergeResults,
  ratioOf,
  withRatio,
  type BenchResults,
  type SizeResult,
} from './report.js';

const measurement = (over: Partial<Measurement> = {}): Measurement => ({
  label: 'append',
  value: 700,
  unit: 'events/s',
  higherIsBetter: true,
  reference: { label: 'raw insert', value: 1000, kind: 'raw-limit' },
  ...over,
});

const sizeResult = (size: number, values: Record<string, number>, unit = 'events/s'): SizeResult => ({
  size,
  ok: true,
  durationMs: 1,
  peakRssBytes: null,
  baselineRssBytes: null,
  peakHeapUsedBytes: null,
  measurements: Object.entries(values).map(([label, value]) => withRatio(measurement({ label, value, unit }))),
});

const results = (values: Record<string, number>): BenchResults => ({
  format: RESULTS_FORMAT,
  startedAt: '2025-01-01T00:00:00.000Z',
  finishedAt: '2025-01-01T00:00:01.000Z',
  mode: 'quick',
  machine: { cpuModel: 'cpu', cores: 2, memoryBytes: 1, platform: 'linux', arch: 'x64', osRelease: '6', node: 'v20' },
  git: { commit: null, dirty: null },
  figures: [{ name: 'store', issue: 1, file: 'f', sizes: [sizeResult(1000, values)], growth: [] }],
});

describe('bench report > ratios', () => {
  it('given a value and a reference, when the ratio is taken, then it is value / reference', () => {
    expect(ratioOf(700, 1000)).toBeCloseTo(0.7);
  });

  it('given a zero or infinite reference, when the ratio is taken, then there is none', () => {
    expect(ratioOf(1, 0)).toBeNull();
    expect(ratioOf(1, Number.POSITIVE_INFINITY)).toBeNull();
  });

  it('given a rate with a target, when the ratio reaches the target, then the target is met', () => {
    expect(withRatio(measurement({ value: 700, targetRatio: 0.7 })).targetMet).toBe(true);
    expect(withRatio(measurement({ value: 699, targetRatio: 0.7 })).targetMet).toBe(false);
  });

  it('given a latency (lower is better) with a target, when the ratio is below the target, then the target is met', () => {
    const latency = { unit: 'ms', higherIsBetter: false, reference: { label: 'peer', value: 10, kind: 'peer' as const }, targetRatio: 1.5 };
    expect(withRatio(measurement({ ...latency, value: 14 })).targetMet).toBe(true);
    expect(withRatio(measurement({ ...latency, value: 16 })).targetMet).toBe(false);
  });

  it('given no target, when the ratio is taken, then no verdict is added', () => {
    expect(withRatio(measurement())).not.toHaveProperty('targetMet');
  });
});

describe('bench report > growth', () => {
  it('recognises rate units', () => {
    expect(isRateUnit('events/s')).toBe(true);
    expect(isRateUnit('MB/s')).toBe(true);
    expect(isRateUnit('ms')).toBe(false);
  });

  it('given a constant rate over 10× the size, when growth is computed, then total time is linear (k = 1)', () => {
    expect(growthExponent({ size: 1e4, value: 5e5 }, { size: 1e5, value: 5e5 }, 'events/s')).toBeCloseTo(1);
  });

  it('given a rate that drops 10× over 10× the size, when growth is computed, then total time is quadratic (k = 2)', () => {
    expect(growthExponent({ size: 1e4, value: 1e6 }, { size: 1e5, value: 1e5 }, 'events/s')).toBeCloseTo(2);
  });

  it('given a non-rate value (a time) that grows 100× over 10×, when growth is computed, then k = 2', () => {
    expect(growthExponent({ size: 10, value: 1 }, { size: 100, value: 100 }, 'ms')).toBeCloseTo(2);
  });

  it('given equal sizes or a zero value, when growth is computed, then there is none', () => {
    expect(growthExponent({ size: 10, value: 1 }, { size: 10, value: 2 }, 'ms')).toBeNull();
    expect(growthExponent({ size: 10, value: 0 }, { size: 100, value: 2 }, 'ms')).toBeNull();
  });

  it('given sizes out of order and one failure, when growth is built, then it uses the successful sizes ascending', () => {
    const failed: SizeResult = { ...sizeResult(1e6, { append: 1 }), ok: false, measurements: [] };
    const [g, ...rest] = growthOf([sizeResult(1e5, { append: 2e5 }), failed, sizeResult(1e4, { append: 4e5 })]);
    expect(rest).toHaveLength(0);
    expect(g?.points.map((p) => p.size)).toEqual([1e4, 1e5]);
    expect(g?.points[0]?.nsPerItem).toBeCloseTo(2500);
    expect(g?.steps[0]?.exponent).toBeCloseTo(1 + Math.log10(2));
    expect(formatGrowth(g!).join('\n')).toContain('10k→100k k=1.30');
  });

  it('given a byte rate, when growth is built, then there is an exponent but no time per item', () => {
    const [g] = growthOf([sizeResult(1e4, { out: 10 }, 'MB/s'), sizeResult(1e5, { out: 10 }, 'MB/s')]);
    expect(g?.points[0]?.nsPerItem).toBeNull();
    expect(g?.steps[0]?.exponent).toBeCloseTo(1);
    expect(formatGrowth(g!)[0]).toContain('10k: 10 MB/s');
  });

  it('given a label measured at one size only, when growth is built, then it is left out', () => {
    expect(growthOf([sizeResult(1e4, { once: 1 })])).toEqual([]);
  });
});

describe('bench report > comparison', () => {
  it('given a faster rate after, when compared, then it is better with the change in percent', () => {
    const [row] = compareResults(results({ append: 1000 }), results({ append: 1200 }));
    expect(row?.verdict).toBe('better');
    expect(row?.change).toBeCloseTo(0.2);
  });

  it('given a slower rate after, when compared, then it is worse', () => {
    expect(compareResults(results({ append: 1000 }), results({ append: 800 }))[0]?.verdict).toBe('worse');
  });

  it('given a change within the noise band, when compared, then it is the same', () => {
    expect(compareResults(results({ append: 1000 }), results({ append: 1010 }))[0]?.verdict).toBe('same');
  });

  it('given measurements absent from the old run, when compared, then they are skipped', () => {
    expect(compareResults(results({ append: 1 }), results({ other: 1 }))).toEqual([]);
  });
});

describe('bench report > formatting', () => {
  it('formats sizes and bytes for people', () => {
    expect(formatSize(10_000)).toBe('10k');
    expect(formatSize(1_500_000)).toBe('1.5M');
    expect(formatSize(999)).toBe('999');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(null)).toBe('n/a');
  });

  it('prints value, reference, ratio and the target verdict on one line', () => {
    const line = formatMeasurement(withRatio(measurement({ targetRatio: 0.8 })));
    expect(line).toContain('append: 700 events/s');
    expect(line).toContain('raw-limit raw insert: 1,000 events/s');
    expect(line).toContain('ratio 0.700×');
    expect(line).toContain('target ≥ 0.800× NOT met');
  });
});

describe('bench report > merging runs', () => {
  it('given the small sizes and the big one of a figure in two runs, when merged, then its sizes are ascending with growth across both runs', () => {
    const small = { ...results({ append: 1000 }), startedAt: '2025-01-01T00:00:00.000Z' };
    const big: BenchResults = {
      ...results({ append: 100 }),
      startedAt: '2025-01-01T01:00:00.000Z',
      git: { commit: 'abc', dirty: false },
      figures: [{ name: 'store', issue: 1, file: 'f', sizes: [sizeResult(10_000, { append: 100 }), sizeResult(1000, { append: 900 })], growth: [] }],
    };
    const merged = mergeResults([big, small]);
    const store = merged.figures.find((f) => f.name === 'store')!;
    // the size run in both runs is the later run's (900), each size keeps its own ratio
    expect(store.sizes.map((s) => [s.size, s.measurements[0]!.value])).toEqual([[1000, 900], [10_000, 100]]);
    expect(store.growth[0]!.steps[0]!.exponent).toBeCloseTo(Math.log((10_000 / 100) / (1000 / 900)) / Math.log(10));
    expect(merged.startedAt).toBe('2025-01-01T00:00:00.000Z');
    expect(merged.mergedFrom).toEqual([{ startedAt: small.startedAt, commit: null }, { startedAt: big.startedAt, commit: 'abc' }]);
  });

  it('given a figure in one run only, when merged, then it is kept as it was', () => {
    const other: BenchResults = { ...results({ append: 5 }), figures: [{ name: 'other', issue: 2, file: 'g', sizes: [sizeResult(10, { x: 1 })], growth: [] }] };
    expect(mergeResults([results({ append: 5 }), other]).figures.map((f) => f.name)).toEqual(['store', 'other']);
  });
});
