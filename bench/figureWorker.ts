/**
 * Runs ONE figure at ONE size in its own process, so peak memory (maxRSS) belongs to that figure and size
 * alone, and a figure that crashes or runs out of memory cannot take the runner down. Forked by bench/run.ts;
 * argv: <figure file> <size> <quick|full>. Replies over IPC with a {@link WorkerMessage}.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { BenchFigure, Measurement } from './harness.js';

export type WorkerMessage =
  | {
      readonly type: 'result';
      readonly measurements: readonly Measurement[];
      readonly durationMs: number;
      readonly peakRssBytes: number;
      readonly baselineRssBytes: number;
      readonly peakHeapUsedBytes: number;
    }
  | {
      readonly type: 'error';
      readonly message: string;
      readonly durationMs: number;
      readonly peakRssBytes: number;
      readonly baselineRssBytes: number;
      readonly peakHeapUsedBytes: number;
    };

const MeasurementSchema = z.object({
  label: z.string().min(1),
  value: z.number().finite(),
  unit: z.string(),
  higherIsBetter: z.boolean(),
  reference: z.object({ label: z.string(), value: z.number().finite(), kind: z.enum(['raw-limit', 'peer']) }),
  targetRatio: z.number().positive().optional(),
});

/** the figure module's default export, checked enough to call it */
export const FigureModuleSchema = z.object({
  name: z.string().min(1),
  issue: z.number().int(),
  sizes: z.object({ quick: z.array(z.number().positive()), full: z.array(z.number().positive()) }),
  measure: z.custom<BenchFigure['measure']>((v) => typeof v === 'function', 'measure must be a function'),
});

export const loadFigure = async (file: string): Promise<BenchFigure> => {
  const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  const parsed = FigureModuleSchema.safeParse(mod.default);
  if (!parsed.success)
    throw new Error(`${file}: default export is not a BenchFigure (use defineFigure): ${z.prettifyError(parsed.error)}`);
  return mod.default as BenchFigure;
};

const main = async (): Promise<void> => {
  const [file, sizeArg, modeArg] = process.argv.slice(2);
  const baselineRssBytes = process.memoryUsage().rss;
  let peakHeapUsedBytes = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    peakHeapUsedBytes = Math.max(peakHeapUsedBytes, process.memoryUsage().heapUsed);
  }, 10);
  sampler.unref();
  const started = performance.now();
  const stats = () => {
    peakHeapUsedBytes = Math.max(peakHeapUsedBytes, process.memoryUsage().heapUsed);
    return {
      durationMs: performance.now() - started,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      baselineRssBytes,
      peakHeapUsedBytes,
    };
  };
  let message: WorkerMessage;
  let tmpDir: string | undefined;
  try {
    if (file === undefined || sizeArg === undefined || (modeArg !== 'quick' && modeArg !== 'full'))
      throw new Error('usage: figureWorker <file> <size> <quick|full>');
    const figure = await loadFigure(file);
    tmpDir = await mkdtemp(join(tmpdir(), 'iommutrail-bench-'));
    const raw = await figure.measure(Number(sizeArg), {
      mode: modeArg,
      tmpDir,
      log: (line) => process.stdout.write(`      | ${line}\n`),
    });
    const checked = z.array(MeasurementSchema).safeParse(raw);
    if (!checked.success) throw new Error(`measure() returned bad measurements: ${z.prettifyError(checked.error)}`);
    message = { type: 'result', measurements: raw, ...stats() };
  } catch (error) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    message = { type: 'error', message: text, ...stats() };
  } finally {
    clearInterval(sampler);
    if (tmpDir !== undefined && process.env.BENCH_KEEP_TMP !== '1') await rm(tmpDir, { recursive: true, force: true });
  }
  // exit explicitly: a figure may leave handles (servers, db connections) open
  process.send?.(message, () => process.exit(0));
};

if (process.send !== undefined && process.argv[1]?.includes('figureWorker')) await main();
