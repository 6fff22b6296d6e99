import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import {
  diffExpectations,
  formatReport,
  isVariantName,
  replayHistory,
  toExpectation,
  VARIANT_NAMES,
  type Expectation,
  type GoldenFile,
  type ReplayReport,
  type VariantName,
} from '../../../replay/index.js';
import { ValidationError } from '../../../schemas/index.js';
import { readHistoryFile } from '../../files/historyFile.js';
import { goldenPathFor, readGoldenFile, writeGoldenFile } from '../../replay/goldenFiles.js';
import { writeJunitReport, type JunitCase } from '../../replay/junitReport.js';
import { EXIT } from '../exitCodes.js';
import type { RegisterCommand } from '../program.js';

interface ReplayCliOptions {
  stage: string;
  compareWith?: string;
  json?: boolean;
  check?: boolean;
  update?: boolean;
  goldenDir?: string;
  junit?: string;
  progress: boolean;
}

const variantsOf = (stage: string): VariantName[] => {
  if (stage === 'all') return [...VARIANT_NAMES];
  const names = stage.split(',').map((s) => s.trim());
  for (const n of names) if (!isVariantName(n)) throw new ValidationError(`--stage: unknown variant ${JSON.stringify(n)} (expected ${VARIANT_NAMES.join(', ')} or all)`);
  return names as VariantName[];
};

/** newline count, for the progress bar total (only for inputs big enough to need one) */
const countLines = async (path: string): Promise<number> => {
  let n = 0;
  for await (const chunk of createReadStream(path)) for (const byte of chunk as Buffer) if (byte === 10) n += 1;
  return n;
};

const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

const replayFile = async (file: string, variant: VariantName, compareWith: VariantName | undefined, bar: SingleBar | null): Promise<ReplayReport> => {
  let done = 0;
  return replayHistory({
    variant,
    ...(compareWith ? { compareWith } : {}),
    events: readHistoryFile(file),
    source: file,
    ...(bar ? { onProgress: (n: number) => (bar.increment(n - done), (done = n)) } : {}),
  });
};

/**
 * `iommutrail replay --stage <variant> <history...>`: replays recorded histories against protocol models.
 * Plain mode prints a summary (exit 1 when a variant diverges). `--check` is CI mode: each history is
 * compared with its golden file (`<name>.golden.json`): exit 0 unchanged, 1 regression (with a diff),
 * 2 bad input (wins over 1: results of bad input can't be trusted). `--update` rewrites the goldens.
 */
export const registerReplay: RegisterCommand = (program, run) => {
  program
    .command('replay')
    .description('replay recorded histories against a protocol variant (legacy, stage1, stage2, stage3, upstream)')
    .argument('<histories...>', 'history files (JSON Lines)')
    .option('--stage <variant>', `variant to replay on: ${VARIANT_NAMES.join(', ')}, a comma list, or all (default upstream; all with --check)`)
    .option('--compare-with <variant>', 'also replay on this variant and show where the two differ, with the final state per group')
    .option('--json', 'print the reports as JSON')
    .option('--check', 'CI mode: compare with the golden file of each history (exit 0 unchanged, 1 regression, 2 bad input)')
    .option('--update', 'with --check: rewrite the golden files with the current results')
    .option('--golden-dir <dir>', 'where golden files live (default: beside each history)')
    .option('--junit <file>', 'write a JUnit XML report')
    .option('--no-progress', 'no progress bar')
    .action((histories: string[], opts: ReplayCliOptions & { stage?: string }) =>
      run(async () => {
        const variants = variantsOf(opts.stage ?? (opts.check ? 'all' : 'upstream'));
        let compareWith: VariantName | undefined;
        if (opts.compareWith !== undefined) {
          if (!isVariantName(opts.compareWith)) throw new ValidationError(`--compare-with: unknown variant ${JSON.stringify(opts.compareWith)}`);
          compareWith = opts.compareWith;
        }
        if (opts.update && !opts.check) throw new ValidationError('--update only makes sense with --check');

        const showBar = opts.progress && !opts.json && process.stderr.isTTY === true;
        const big = showBar ? histories.filter((h) => existsSync(h) && statSync(h).size >= PROGRESS_MIN_BYTES) : [];
        const bar = big.length > 0 ? new SingleBar({ format: 'replay [{bar}] {percentage}% | {value}/{total} events | {eta}s' }, Presets.shades_classic) : null;
        if (bar) bar.start((await Promise.all(big.map(countLines))).reduce((a, b) => a + b, 0) * variants.length, 0);

        let badInput = false;
        let finding = false;
        const reports: ReplayReport[] = [];
        const cases: JunitCase[] = [];
        const diffs: string[] = [];
        for (const file of histories) {
          if (!existsSync(file)) {
            badInput = true;
            console.error(`iommutrail: ${file}: no such file`);
            cases.push({ suite: basename(file), name: 'read', status: 'bad-input', details: [`${file}: no such file`] });
            continue;
          }
          const goldenPath = goldenPathFor(file, opts.goldenDir);
          const golden = opts.check ? readGoldenFile(goldenPath) : null;
          const updated: Partial<Record<VariantName, Expectation>> = { ...(golden?.variants ?? {}) };
          for (const variant of variants) {
            const report = await replayFile(file, variant, compareWith, bar && big.includes(file) ? bar : null);
            reports.push(report);
            const inputBad = report.inputErrors.length > 0;
            badInput ||= inputBad;
            const name = `${basename(file)} [${variant}]`;
            if (inputBad) {
              cases.push({ suite: basename(file), name, status: 'bad-input', details: report.inputErrors.map((e) => `${file}${e.line !== undefined ? `:${e.line}` : ''} ${e.path}: ${e.message}`) });
            }
            if (!opts.check) {
              finding ||= report.summary.divergences > 0 || report.summary.crashedHosts > 0;
              continue;
            }
            const actual = toExpectation(report);
            updated[variant] = actual;
            const expected = golden?.variants[variant];
            const lines = expected ? diffExpectations(expected, actual) : [`no expectation for ${variant} in ${goldenPath} (run with --update to record it)`];
            if (lines.length > 0 && !opts.update) {
              finding = true;
              diffs.push(`REGRESSION ${name}:`, ...lines.map((l) => `  ${l}`));
            }
            if (!inputBad) cases.push({ suite: basename(file), name, status: lines.length > 0 && !opts.update ? 'regression' : 'passed', details: lines });
          }
          if (opts.check && opts.update) {
            const out: GoldenFile = {
              history: basename(file),
              note: 'expected replay results per variant; rewrite on purpose with `iommutrail replay --check --update`',
              variants: Object.fromEntries(VARIANT_NAMES.filter((v) => updated[v]).map((v) => [v, updated[v]])),
            };
            writeGoldenFile(goldenPath, out);
          }
        }
        bar?.stop();

        if (opts.junit) writeJunitReport(opts.junit, cases);
        if (opts.json) console.log(JSON.stringify(opts.check ? { reports, regressions: diffs } : reports.length === 1 ? reports[0] : reports));
        else {
          if (!opts.check) for (const r of reports) console.log(formatReport(r));
          else {
            for (const r of reports) for (const e of r.inputErrors) console.error(`bad input: ${e.source ?? ''}${e.line !== undefined ? `:${e.line}` : ''} ${e.path}: ${e.message}`);
            for (const d of diffs) console.log(d);
            const verb = opts.update ? 'updated' : finding ? 'regressions found' : 'unchanged';
            console.log(`${histories.length} history file(s) × ${variants.length} variant(s): ${verb}${badInput ? ', with bad input' : ''}`);
          }
        }
        if (badInput) return EXIT.badInput;
        return finding ? EXIT.finding : EXIT.ok;
      }),
    );
};
