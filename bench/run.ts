/**
 * `npm run bench [-- --quick] [--only <name>] [--json <file>] [--compare <old.json>] [--sizes 1e4,1e5]`
 *
 * Discovers bench/figures/*.bench.ts, runs each figure at each of its sizes in a fresh worker process
 * (bench/figureWorker.ts) and prints, per measurement, the value, the reference measured in the same run and
 * their ratio (with the target when the figure gives one: informational, never a failure), plus the machine,
 * Node version, size, peak memory, and how cost grows between sizes. All results go to a JSON file
 * (default bench/results/<timestamp>.json) for comparison between commits. A figure that fails is reported and
 * the run goes on; the exit code is non-zero only when the runner itself breaks (bad arguments, unwritable file).
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { WorkerMessage } from './figureWorker.js';
import { loadFigure } from './figureWorker.js';
import {
  RESULTS_FORMAT,
  compareResults,
  formatComparison,
  formatFigure,
  formatMachine,
  growthOf,
  mergeResults,
  withRatio,
  type BenchResults,
  type FigureResult,
  type MachineInfo,
  type SizeResult,
} from './report.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoDir = resolve(benchDir, '..');
const workerFile = join(benchDir, `figureWorker${import.meta.url.endsWith('.js') ? '.js' : '.ts'}`);
// under `tsx` the loader is already in execArgv; elsewhere (vitest, plain node) a .ts worker needs it added
// --expose-gc: figures that report memory may call globalThis.gc?.() first
const workerExecArgv = [
  ...(workerFile.endsWith('.ts') && !process.execArgv.some((a) => a.includes('tsx')) ? ['--import', 'tsx'] : process.execArgv),
  '--expose-gc',
];

export interface RunOptions {
  readonly mode: 'quick' | 'full';
  readonly only: readonly string[];
  readonly figuresDir: string;
  readonly jsonOut: string;
  readonly compare?: string;
  readonly sizes?: readonly number[];
  readonly timeoutMs: number;
  readonly out: (line: string) => void;
}

export const machineInfo = (): MachineInfo => {
  const cpuList = cpus();
  return {
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memoryBytes: totalmem(),
    platform: process.platform,
    arch: process.arch,
    osRelease: release(),
    node: process.version,
  };
};

const gitInfo = (): BenchResults['git'] => {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { commit, dirty: status.trim().length > 0 };
  } catch {
    return { commit: null, dirty: null };
  }
};

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** run one figure file at one size in a worker process */
const runSize = (file: string, size: number, mode: 'quick' | 'full', timeoutMs: number): Promise<SizeResult> =>
  new Promise((resolveSize) => {
    const started = performance.now();
    const child = fork(workerFile, [file, String(size), mode], { execArgv: workerExecArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let message: WorkerMessage | undefined;
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), timeoutMs) : undefined;
    child.on('message', (m) => (message = m as WorkerMessage));
    const finish = (fallbackError: string) => {
      if (timer !== undefined) clearTimeout(timer);
      const base = { size, durationMs: message?.durationMs ?? performance.now() - started };
      if (message?.type === 'result')
        resolveSize({
          ...base,
          ok: true,
          measurements: message.measurements.map(withRatio),
          peakRssBytes: message.peakRssBytes,
          baselineRssBytes: message.baselineRssBytes,
          peakHeapUsedBytes: message.peakHeapUsedBytes,
        });
      else
        resolveSize({
          ...base,
          ok: false,
          error: message?.type === 'error' ? message.message : fallbackError,
          measurements: [],
          peakRssBytes: message?.peakRssBytes ?? null,
          baselineRssBytes: message?.baselineRssBytes ?? null,
          peakHeapUsedBytes: message?.peakHeapUsedBytes ?? null,
        });
    };
    child.on('error', (e) => finish(`worker failed to start: ${errorText(e)}`));
    child.on('exit', (code, signal) =>
      finish(timedOut ? `timed out after ${timeoutMs} ms` : `worker exited without a result (code ${code}, signal ${signal})`),
    );
  });

export const discoverFigures = async (dir: string): Promise<string[]> =>
  (await readdir(dir))
    .filter((f) => f.endsWith('.bench.ts') || f.endsWith('.bench.js'))
    .sort()
    .map((f) => join(dir, f));

const matchesOnly = (only: readonly string[], name: string, file: string): boolean =>
  only.length === 0 || only.some((o) => o === name || o === basename(file).replace(/\.bench\.[jt]s$/, ''));

export const runBench = async (opts: RunOptions): Promise<BenchResults> => {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const git = gitInfo();
  opts.out(`iommutrail bench (${opts.mode}) on ${formatMachine(machine)}`);
  opts.out(`commit ${git.commit ?? 'unknown'}${git.dirty ? ' (uncommitted changes)' : ''}`);
  const figures: FigureResult[] = [];
  for (const file of await discoverFigures(opts.figuresDir)) {
    const shown = relative(repoDir, file);
    let figure;
    try {
      figure = await loadFigure(file);
    } catch (e) {
      const stem = basename(file).replace(/\.bench\.[jt]s$/, '');
      if (!matchesOnly(opts.only, stem, file)) continue;
      const failed: FigureResult = { name: stem, issue: null, file: shown, error: `could not load: ${errorText(e)}`, sizes: [], growth: [] };
      figures.push(failed);
      for (const l of formatFigure(failed)) opts.out(l);
      continue;
    }
    if (!matchesOnly(opts.only, figure.name, file)) continue;
    opts.out('');
    opts.out(`running ${figure.name} at sizes ${(opts.sizes ?? figure.sizes[opts.mode]).join(', ')}`);
    const sizes: SizeResult[] = [];
    for (const size of opts.sizes ?? figure.sizes[opts.mode]) sizes.push(await runSize(file, size, opts.mode, opts.timeoutMs));
    const result: FigureResult = { name: figure.name, issue: figure.issue, file: shown, sizes, growth: growthOf(sizes) };
    figures.push(result);
    for (const l of formatFigure(result)) opts.out(l);
  }
  const results: BenchResults = { format: RESULTS_FORMAT, startedAt, finishedAt: new Date().toISOString(), mode: opts.mode, machine, git, figures };
  await mkdir(dirname(opts.jsonOut), { recursive: true });
  await writeFile(opts.jsonOut, `${JSON.stringify(results, null, 2)}\n`);
  opts.out('');
  const failed = figures.filter((f) => f.error !== undefined || f.sizes.some((s) => !s.ok));
  opts.out(`${figures.length} figure(s), ${failed.length} with failures${failed.length ? `: ${failed.map((f) => f.name).join(', ')}` : ''}`);
  opts.out(`results written to ${relative(process.cwd(), opts.jsonOut) || opts.jsonOut}`);
  if (opts.compare !== undefined) {
    const old = JSON.parse(await readFile(opts.compare, 'utf8')) as BenchResults;
    if (old.format !== RESULTS_FORMAT) throw new Error(`--compare ${opts.compare}: not a bench results file (format ${String(old.format)})`);
    opts.out('');
    opts.out(`compared with ${opts.compare} (commit ${old.git.commit ?? 'unknown'}, ${old.startedAt}):`);
    for (const l of formatComparison(compareResults(old, results))) opts.out(`  ${l}`);
  }
  return results;
};

const parseSizes = (raw: string): number[] =>
  raw.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--sizes: expected positive integers like 1e4,1e5, got ${JSON.stringify(s)}`);
    return n;
  });

export const cli = async (argv: readonly string[]): Promise<number> => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      json: { type: 'string' },
      compare: { type: 'string' },
      sizes: { type: 'string' },
      figures: { type: 'string' },
      timeout: { type: 'string' },
      merge: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      'usage: npm run bench -- [--quick] [--only <figure>]... [--sizes 1e4,1e5] [--json <file>] [--compare <old.json>] [--figures <dir>] [--timeout <seconds>]\n' +
        '       npm run bench -- --merge <a.json>,<b.json>[,...] --json <out.json>   (sizes of several runs as one, growth recomputed)',
    );
    return 0;
  }
  if (values.merge !== undefined) {
    if (values.json === undefined) throw new Error('--merge: give the merged file with --json <file>');
    const runs = await Promise.all(values.merge.split(',').map(async (f) => JSON.parse(await readFile(resolve(f.trim()), 'utf8')) as BenchResults));
    const bad = runs.find((r) => r.format !== RESULTS_FORMAT);
    if (bad) throw new Error(`--merge: not a bench results file (format ${String(bad.format)})`);
    const merged = mergeResults(runs);
    for (const f of merged.figures) for (const l of ['', ...formatFigure(f)]) console.log(l);
    await mkdir(dirname(resolve(values.json)), { recursive: true });
    await writeFile(resolve(values.json), `${JSON.stringify(merged, null, 2)}\n`);
    console.log(`\nmerged ${runs.length} run(s) into ${values.json}`);
    return 0;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const timeout = values.timeout === undefined ? 0 : Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout < 0) throw new Error(`--timeout: expected seconds ≥ 0, got ${values.timeout}`);
  await runBench({
    mode: values.quick ? 'quick' : 'full',
    only: values.only ?? [],
    figuresDir: resolve(values.figures ?? join(benchDir, 'figures')),
    jsonOut: resolve(values.json ?? join(benchDir, 'results', `${stamp}.json`)),
    ...(values.compare === undefined ? {} : { compare: resolve(values.compare) }),
    ...(values.sizes === undefined ? {} : { sizes: parseSizes(values.sizes) }),
    timeoutMs: timeout * 1000,
    out: (line) => console.log(line),
  });
  return 0;
};

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = await cli(process.argv.slice(2));
  } catch (e) {
    console.error(`bench: ${errorText(e)}`);
    process.exitCode = 2;
  }
}
