import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESULTS_FORMAT, type BenchResults } from './report.js';
import { runBench } from './run.js';

// a tiny figure and a broken one, written to a temp folder so the smoke run does not depend on real figures
const tinyFigure = `export default {
  name: 'tiny', issue: 10, sizes: { quick: [10, 100], full: [1000] },
  async measure(size, ctx) {
    ctx.log('tiny at ' + size);
    const t0 = performance.now();
    let s = 0;
    for (let i = 0; i < size; i++) s += JSON.stringify({ i }).length;
    const ms = Math.max(performance.now() - t0, 1e-3);
    return [{ label: 'stringify', value: size / (ms / 1000), unit: 'items/s', higherIsBetter: true,
      reference: { label: 'twice as fast', value: (2 * size) / (ms / 1000), kind: 'raw-limit' }, targetRatio: 0.4 },
      { label: 'chars', value: s, unit: 'chars', higherIsBetter: false, reference: { label: 'same', value: s, kind: 'peer' } }];
  },
};
`;
const brokenFigure = `export default { name: 'broken', issue: 10, sizes: { quick: [1], full: [1] }, async measure() { throw new Error('boom'); } };`;

describe('bench runner > smoke run (quick mode, worker processes)', () => {
  let dir: string;
  let results: BenchResults;
  let lines: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
    await writeFile(join(dir, 'tiny.bench.ts'), tinyFigure);
    await writeFile(join(dir, 'broken.bench.ts'), brokenFigure);
    lines = [];
    results = await runBench({ mode: 'quick', only: [], figuresDir: dir, jsonOut: join(dir, 'out', 'r.json'), timeoutMs: 60_000, out: (l) => lines.push(l) });
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('given a working figure, when run in quick mode, then every quick size has measurements with ratios and peak memory', () => {
    const tiny = results.figures.find((f) => f.name === 'tiny');
    expect(tiny?.sizes.map((s) => [s.size, s.ok])).toEqual([[10, true], [100, true]]);
    const first = tiny?.sizes[0]?.measurements[0];
    expect(first?.ratio).toBeCloseTo(0.5);
    expect(first?.targetMet).toBe(true);
    expect(tiny?.sizes[0]?.peakRssBytes).toBeGreaterThan(0);
    expect(tiny?.growth.map((g) => g.label)).toEqual(['stringify', 'chars']);
  });

  it('given a figure that throws, when run, then the failure is reported and the run goes on', () => {
    const broken = results.figures.find((f) => f.name === 'broken');
    expect(broken?.sizes[0]?.ok).toBe(false);
    expect(broken?.sizes[0]?.error).toContain('boom');
    expect(lines.join('\n')).toContain('1 with failures: broken');
  });

  it('writes the same results as JSON for comparison between commits', async () => {
    const written = JSON.parse(await readFile(join(dir, 'out', 'r.json'), 'utf8')) as BenchResults;
    expect(written.format).toBe(RESULTS_FORMAT);
    expect(written.machine.node).toBe(process.version);
    expect(written.figures.map((f) => f.name).sort()).toEqual(['broken', 'tiny']);
  });

  it('prints the machine, the figure logs and the ratio lines', () => {
    const text = lines.join('\n');
    expect(text).toContain(`Node ${process.version}`);
    expect(text).toMatch(/stringify: .* items\/s {2}\| raw-limit twice as fast: .* \| ratio 0\.500×/);
  });
});
