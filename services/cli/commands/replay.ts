import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import {
  diffExpectations,
  formatReport,
  replayHistory,
  resolveStage,
  toExpectation,
  VARIANT_NAMES,
  type Expectation,
  type ProtocolDecider,
  type ReplayReport,
} from '../../../replay/index.js';
import { ValidationError } from '../../../schemas/index.js';
import { readHistoryFile, type HistoryLine } from '../../shared/files/historyFile.js';
import { createSequenceCheck, missingSeqsText, type MissingSeqs } from '../../shared/files/sequenceCheck.js';
import { isStageFile, loadStageFile } from '../../replay/stageFile.js';
import { goldenPathFor, historyDigest, readGoldenFile, writeGoldenFile, type StoredGoldenFile } from '../../replay/goldenFiles.js';
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

/** `--stage`: `all`, or a comma list of variants, `upstream@<release>` stages and stage files (`*.yaml`, `*.json`) */
const stagesOf = (stage: string): ProtocolDecider[] => {
  if (stage === 'all') return VARIANT_NAMES.map((n) => resolveStage(n));
  return stage.split(',').map((s) => (isStageFile(s.trim()) ? loadStageFile(s.trim()) : resolveStage(s.trim())));
};

const goldenOrder = (names: readonly string[]): string[] => [
  ...VARIANT_NAMES.filter((v) => names.includes(v)),
  ...names.filter((n) => !(VARIANT_NAMES as readonly string[]).includes(n)).sort(),
];

/** newline count, for the progress bar total (only for inputs big enough to need one) */
const countLines = async (path: string): Promise<number> => {
  let n = 0;
  for await (const chunk of createReadStream(path)) for (const byte of chunk as Buffer) if (byte === 10) n += 1;
  return n;
};

const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

/** what reading a history taught besides its events: per-host seq holes, and each event's line (check mode) */
interface HistoryFacts {
  readonly sequence: ReturnType<typeof createSequenceCheck>;
  readonly lines: Map<string, number> | null;
}

async function* observed(file: string, facts: HistoryFacts | null): AsyncGenerator<HistoryLine> {
  for await (const l of readHistoryFile(file)) {
    if (facts && l.ok) {
      facts.sequence.observe(l.event, l.line);
      facts.lines?.set(`${l.event.host}|${l.event.seq}`, l.line);
    }
    yield l;
  }
}

const replayFile = async (file: string, variant: ProtocolDecider, compareWith: ProtocolDecider | undefined, bar: SingleBar | null, facts: HistoryFacts | null): Promise<ReplayReport> => {
  let done = 0;
  return replayHistory({
    variant,
    ...(compareWith ? { compareWith } : {}),
    events: observed(file, facts),
    source: file,
    ...(bar ? { onProgress: (n: number) => (bar.increment(n - done), (done = n)) } : {}),
  });
};

// a diff line's path: hosts.<host>.divergences.seq <n>.<field>
const DIVERGENCE_PATH = /^hosts\.(.+?)\.divergences\.seq (\d+)(?:\.(\w+))?:/;

/**
 * A regression for a person: first whether the history or the model changed (the history's digest against the
 * golden's, else which side of the outcomes differs), then each difference with the line of its event in the
 * history and the rule's text.
 */
const explainRegression = (
  lines: readonly string[],
  variant: ProtocolDecider,
  golden: StoredGoldenFile | null,
  digest: string,
  facts: HistoryFacts,
  expected: Expectation | undefined,
  actual: Expectation,
): string[] => {
  const recordedSide = lines.some((l) => /\.(recorded|type): /.test(l) || /^inputErrors/.test(l));
  const cause =
    golden?.historySha256 === undefined
      ? `${recordedSide ? 'the recorded outcomes differ: the history changed' : 'only the replayed outcomes differ: the model changed'} (the golden records no history digest; --update records one)`
      : golden.historySha256 !== digest
        ? 'the history changed since the golden was recorded (its sha256 differs)'
        : 'the model changed: the history is the one the golden was recorded from (same sha256)';
  const rules = variant.rules;
  const out = [cause];
  for (const l of lines) {
    out.push(l);
    const m = DIVERGENCE_PATH.exec(l);
    if (!m) continue;
    const [, host, seq] = m;
    const line = facts.lines?.get(`${host}|${seq}`);
    const key = `seq ${seq}`;
    const was = expected?.hosts[host!]?.divergences[key];
    const now = actual.hosts[host!]?.divergences[key];
    const rule = now?.rule ?? was?.rule;
    out.push(`  ${line !== undefined ? `line ${line}` : 'no line: the event is not in the history'}${rule ? `; rule ${rule}: ${rules[rule]?.text ?? '(not a rule of this model)'}` : ''}${was?.rule && now?.rule && was.rule !== now.rule ? ` (was ${was.rule}: ${rules[was.rule]?.text ?? 'a rule this model no longer has'})` : ''}`);
  }
  return out;
};

/** what a seq hole explains: the input errors and divergences of its host after it, named with their first line */
const rootCauseNote = (report: ReplayReport, m: MissingSeqs): string => {
  const errors = report.inputErrors.filter((e) => e.line !== undefined && e.line >= m.beforeLine);
  const divergences = (report.hosts.find((h) => h.host === m.host)?.results[0]?.divergences ?? []).filter((d) => d.event.seq > m.from);
  const after = [
    errors.length > 0 ? `${errors.length} input error(s) from line ${errors[0]!.line}` : '',
    divergences.length > 0 ? `${divergences.length} divergence(s) from seq ${divergences[0]!.event.seq}${divergences[0]!.event.line !== undefined ? ` (line ${divergences[0]!.event.line})` : ''}` : '',
  ].filter(Boolean);
  return after.length > 0 ? `; the likely root cause of the ${after.join(' and ')}` : '';
};

/** the last line of a check: "unchanged" only when every history was read and checked clean */
const checkSummary = (c: { histories: number; variants: number; checked: number; unread: number; update: boolean; finding: boolean; badInput: boolean }): string => {
  const total = c.histories * c.variants;
  const what = `${c.checked} of ${total} check(s) ran (${c.histories} history file(s) × ${c.variants} variant(s))`;
  if (c.checked === 0) return `${what}: NOTHING CHECKED${c.unread > 0 ? `, ${c.unread} file(s) not read` : ''}`;
  const verb = c.update ? 'updated' : c.finding ? 'regressions found' : c.checked === total && !c.badInput ? 'unchanged' : 'no regression in what ran';
  return `${what}: ${verb}${c.unread > 0 ? `, ${c.unread} file(s) not read` : ''}${c.badInput ? ', with bad input' : ''}`;
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
    .description('replay recorded histories against a protocol variant (legacy, stage1, stage2, stage3, upstream) or stage (upstream@<release>)')
    .argument('<histories...>', 'history files (JSON Lines)')
    .option(
      '--stage <variant>',
      `variant to replay on: ${VARIANT_NAMES.join(', ')}, upstream@<release> (every host judged as that kernel release, e.g. upstream@6.1), a stage file (replay/stages/README.md), a comma list, or all (default upstream; all with --check)`,
    )
    .option('--compare-with <variant>', 'also replay on this variant and show where the two differ, with the final state per group')
    .option('--json', 'print the reports as JSON')
    .option('--check', 'CI mode: compare with the golden file of each history (exit 0 unchanged, 1 regression, 2 bad input)')
    .option('--update', 'with --check: rewrite the golden files with the current results')
    .option('--golden-dir <dir>', 'where golden files live (default: beside each history)')
    .option('--junit <file>', 'write a JUnit XML report')
    .option('--no-progress', 'no progress bar')
    .action((histories: string[], opts: ReplayCliOptions & { stage?: string }) =>
      run(async () => {
        const variants = stagesOf(opts.stage ?? (opts.check ? 'all' : 'upstream'));
        const compareWith = opts.compareWith === undefined ? undefined : stagesOf(opts.compareWith)[0];
        if (opts.update && !opts.check) throw new ValidationError('--update only makes sense with --check');

        const showBar = opts.progress && !opts.json && process.stderr.isTTY === true;
        const big = showBar ? histories.filter((h) => existsSync(h) && statSync(h).size >= PROGRESS_MIN_BYTES) : [];
        const bar = big.length > 0 ? new SingleBar({ format: 'replay [{bar}] {percentage}% | {value}/{total} events | {eta}s' }, Presets.shades_classic) : null;
        if (bar) bar.start((await Promise.all(big.map(countLines))).reduce((a, b) => a + b, 0) * variants.length, 0);

        let badInput = false;
        let finding = false;
        let checked = 0;
        const reports: ReplayReport[] = [];
        const cases: JunitCase[] = [];
        const diffs: string[] = [];
        const gaps: string[] = [];
        const unread: string[] = [];
        for (const file of histories) {
          if (!existsSync(file) || !statSync(file).isFile()) {
            badInput = true;
            unread.push(file);
            const why = !existsSync(file) ? (/[*?[]/.test(file) ? 'no file matches this pattern (the shell passed it unexpanded)' : 'no such file or directory') : 'is a directory, expected a file';
            console.error(`iommutrail: ${file}: ${why}`);
            cases.push({ suite: basename(file), name: 'read', status: 'bad-input', details: [`${file}: ${why}`] });
            continue;
          }
          const goldenPath = goldenPathFor(file, opts.goldenDir);
          const golden = opts.check ? readGoldenFile(goldenPath) : null;
          const digest = opts.check ? historyDigest(file) : '';
          const updated: Partial<Record<string, Expectation>> = { ...(golden?.variants ?? {}) };
          const facts: HistoryFacts = { sequence: createSequenceCheck(), lines: opts.check ? new Map() : null };
          for (const [i, variant] of variants.entries()) {
            const report = await replayFile(file, variant, compareWith, bar && big.includes(file) ? bar : null, i === 0 ? facts : null);
            if (i === 0) for (const m of facts.sequence.missing()) gaps.push(`${file}:${m.beforeLine}: ${missingSeqsText(m)}${rootCauseNote(report, m)}`);
            reports.push(report);
            const inputBad = report.inputErrors.length > 0;
            badInput ||= inputBad;
            const name = `${basename(file)} [${variant.variant}]`;
            if (inputBad) {
              cases.push({ suite: basename(file), name, status: 'bad-input', details: report.inputErrors.map((e) => `${file}${e.line !== undefined ? `:${e.line}` : ''} ${e.path}: ${e.message}`) });
            }
            if (!opts.check) {
              finding ||= report.summary.divergences > 0 || report.summary.crashedHosts > 0;
              continue;
            }
            const actual = toExpectation(report);
            updated[variant.variant] = actual;
            const expected = golden?.variants[variant.variant];
            const lines = expected ? diffExpectations(expected, actual) : [`no expectation for ${variant.variant} in ${goldenPath} (run with --update to record it)`];
            if (lines.length > 0 && !opts.update) {
              finding = true;
              const explained = expected ? explainRegression(lines, variant, golden, digest, facts, expected, actual) : lines;
              diffs.push(`REGRESSION ${name}:`, ...explained.map((l) => `  ${l}`));
            }
            if (!inputBad) {
              checked += 1;
              cases.push({ suite: basename(file), name, status: lines.length > 0 && !opts.update ? 'regression' : 'passed', details: lines });
            }
          }
          if (opts.check && opts.update) {
            const out: StoredGoldenFile = {
              history: basename(file),
              note: 'expected replay results per variant; rewrite on purpose with `iommutrail replay --check --update`',
              historySha256: digest,
              // built-in variants in protocol order, then the stages (upstream@<release>, stage files) by name
              variants: Object.fromEntries(goldenOrder(Object.keys(updated)).map((v) => [v, updated[v]])),
            };
            writeGoldenFile(goldenPath, out);
          }
        }
        bar?.stop();

        // a report of nothing checked would read as a pass: no JUnit file then, the failure is on stderr and in the exit code
        if (opts.junit && (checked > 0 || !opts.check)) writeJunitReport(opts.junit, cases);
        else if (opts.junit) console.error(`iommutrail: --junit: ${opts.junit} not written: nothing was checked`);
        const total = histories.length * variants.length;
        if (opts.json) console.log(JSON.stringify(opts.check ? { checked, total, unread, sequenceGaps: gaps, reports, regressions: diffs } : reports.length === 1 ? reports[0] : reports));
        else {
          for (const g of gaps) console.log(`sequence gap: ${g}`);
          if (!opts.check) for (const r of reports) console.log(formatReport(r));
          else {
            for (const r of reports) for (const e of r.inputErrors) console.error(`bad input: ${e.source ?? ''}${e.line !== undefined ? `:${e.line}` : ''} ${e.path}: ${e.message}`);
            for (const d of diffs) console.log(d);
            console.log(checkSummary({ histories: histories.length, variants: variants.length, checked, unread: unread.length, update: opts.update === true, finding, badInput }));
          }
        }
        if (badInput) return EXIT.badInput;
        return finding ? EXIT.finding : EXIT.ok;
      }),
    );
};
