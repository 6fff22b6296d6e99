import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { VARIANTS } from '../../../replay/index.js';
import { main } from '../main.js';

const CORPUS = 'replay/corpus';
let dir: string;
let out: string[];
let err: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'replay-e2e-'));
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
});
afterEach(() => vi.restoreAllMocks());

const copy = (name: string): string => {
  copyFileSync(join(CORPUS, `${name}.jsonl`), join(dir, `${name}.jsonl`));
  copyFileSync(join(CORPUS, `${name}.golden.json`), join(dir, `${name}.golden.json`));
  return join(dir, `${name}.jsonl`);
};

/** s07 copied with its stage2 golden expecting -EINVAL at seq 10, where the model says -EBUSY */
const copyWithStaleGolden = (): string => {
  const file = copy('s07-replace');
  const goldenPath = join(dir, 's07-replace.golden.json');
  const golden = JSON.parse(readFileSync(goldenPath, 'utf8'));
  golden.variants.stage2.hosts['lab-s7'].divergences['seq 10'].replayed = '-EINVAL';
  writeFileSync(goldenPath, JSON.stringify(golden));
  return file;
};

describe('iommutrail replay (CLI)', () => {
  it('given unchanged histories, when checked, then exit 0 and a passing JUnit report', async () => {
    const files = [copy('s07-replace'), copy('s27-hotplug-live-group')];
    const junit = join(dir, 'junit.xml');
    expect(await main(['replay', '--check', '--junit', junit, ...files])).toBe(0);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toContain('tests="10"');
    expect(xml).toContain('failures="0"');
  });

  it('given a golden that no longer matches, when checked, then exit 1 with a readable diff and a JUnit failure', async () => {
    const file = copyWithStaleGolden();
    const junit = join(dir, 'junit.xml');
    expect(await main(['replay', '--check', '--stage', 'stage2', '--junit', junit, file])).toBe(1);
    expect(out.join('\n')).toContain('hosts.lab-s7.divergences.seq 10.replayed: expected "-EINVAL", got "-EBUSY"');
    expect(readFileSync(junit, 'utf8')).toContain('<failure');
    // --update rewrites the golden on purpose, after which the check passes again
    expect(await main(['replay', '--check', '--update', '--stage', 'stage2', file])).toBe(0);
    expect(await main(['replay', '--check', file])).toBe(0);
  });

  it('given a bad history beside a good one, when checked, then exit 2 naming file, line and field, and the good one still runs', async () => {
    const good = copy('s01-singleton-happy-path');
    const lines = readFileSync(join(CORPUS, 's03-repeated-bind.jsonl'), 'utf8').split('\n');
    lines[3] = '{"type":"NoSuchEvent","schemaVersion":1}';
    lines[5] = lines[5]!.replace('"nic0"', '"nic9"');
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, lines.join('\n'));
    const junit = join(dir, 'junit.xml');
    expect(await main(['replay', '--check', '--stage', 'upstream', '--junit', junit, good, bad])).toBe(2);
    const errors = err.join('\n');
    expect(errors).toContain(`${bad}:4 `);
    expect(errors).toContain('type: unknown event type "NoSuchEvent"');
    expect(errors).toMatch(/:6 data\.deviceFd: device fd "nic9" is not open/);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toContain('<error');
    expect(xml).toContain('s01-singleton-happy-path.jsonl [upstream]');
  });

  it('given plain mode, when a variant diverges, then exit 1 and --json prints a report', async () => {
    const file = copy('s07-replace');
    expect(await main(['replay', '--stage', 'stage2', '--json', file])).toBe(1);
    const report = JSON.parse(out.join(''));
    expect(report.variant).toBe('stage2');
    expect(report.hosts[0].results[0].divergences[0].rule).toBe('seed.attach.already-attached');
    expect(await main(['replay', '--stage', 'upstream', '--compare-with', 'stage3', file])).toBe(0);
    expect(out.join('\n')).toContain('upstream vs stage3');
  });

  it('given an unknown variant or a missing file, then exit 2', async () => {
    expect(await main(['replay', '--stage', 'stage9', copy('s07-replace')])).toBe(2);
    expect(await main(['replay', join(dir, 'missing.jsonl')])).toBe(2);
    expect(existsSync(join(dir, 'missing.golden.json'))).toBe(false);
  });

  it('issue 21: the README example runs as written from the repository root', async () => {
    const corpus = readdirSync(CORPUS).filter((f) => f.endsWith('.jsonl')).map((f) => join(CORPUS, f));
    const junit = join(dir, 'out.xml');
    // README: iommutrail replay --stage stage2,upstream --check --junit out.xml replay/corpus/*.jsonl
    expect(readFileSync('README.md', 'utf8')).toContain('replay --stage stage2,upstream --check --junit out.xml replay/corpus/*.jsonl');
    expect(await main(['replay', '--stage', 'stage2,upstream', '--check', '--junit', junit, ...corpus])).toBe(0);
    expect(out.at(-1)).toBe(`${corpus.length * 2} of ${corpus.length * 2} check(s) ran (${corpus.length} history file(s) × 2 variant(s)): unchanged`);
    expect(readFileSync(junit, 'utf8')).toContain('failures="0"');
  });

  it('issue 21: nothing checked never reads "unchanged", and no JUnit file claims success', async () => {
    const junit = join(dir, 'out.xml');
    // an unmatched shell pattern arrives as is
    expect(await main(['replay', '--stage', 'stage2,upstream', '--check', '--junit', junit, 'corpus/*.jsonl'])).toBe(2);
    expect(out.join('\n')).not.toContain('unchanged');
    expect(out.at(-1)).toBe('0 of 2 check(s) ran (1 history file(s) × 2 variant(s)): NOTHING CHECKED, 1 file(s) not read');
    expect(err.join('\n')).toContain('iommutrail: corpus/*.jsonl: no file matches this pattern (the shell passed it unexpanded)');
    expect(existsSync(junit)).toBe(false);
  });

  it('issue 21: a --check regression names the line, the rule text (not "[object Object]"), and that the model (not the history) changed', async () => {
    const file = copy('s07-replace');
    expect(await main(['replay', '--check', '--update', '--stage', 'stage2', file])).toBe(0);
    const goldenPath = join(dir, 's07-replace.golden.json');
    const golden = JSON.parse(readFileSync(goldenPath, 'utf8'));
    golden.variants.stage2.hosts['lab-s7'].divergences['seq 10'].replayed = '-EINVAL';
    writeFileSync(goldenPath, JSON.stringify(golden));
    out = [];
    expect(await main(['replay', '--check', '--stage', 'stage2', file])).toBe(1);
    const text = out.join('\n');
    expect(text).toContain('the model changed: the history is the one the golden was recorded from (same sha256)');
    const line = readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes('"seq":10,')) + 1;
    // the rule's own words (the catalogue's text), never an object printed as "[object Object]"
    expect(text).toContain(`line ${line}; rule seed.attach.already-attached: ${VARIANTS.stage2.rules['seed.attach.already-attached']!.text}`);
    expect(text).not.toContain('[object Object]');
    // the history edited instead: the digest tells
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n`);
    out = [];
    expect(await main(['replay', '--check', '--stage', 'stage2', file])).toBe(1);
    expect(out.join('\n')).toContain('the history changed since the golden was recorded (its sha256 differs)');
  });

  it('hardening: a --check regression shows the rule text, not "[object Object]"', async () => {
    const file = copyWithStaleGolden();
    expect(await main(['replay', '--check', '--stage', 'stage2', file])).toBe(1);
    const text = out.join('\n');
    expect(text).not.toContain('[object Object]');
    expect(text).toContain('rule seed.attach.already-attached: attach on an attached device: the seed has no replace');
  });

  it('issue 19: --stage upstream@6.1 judges a history recorded on 6.12 as 6.1: root cause first, the release named in text and JSON', async () => {
    const file = copy('s01-singleton-happy-path');
    expect(await main(['replay', '--stage', 'upstream@6.1', file])).toBe(1);
    const lines = out.join('\n').split('\n');
    expect(lines[0]).toContain("host lab-s1 [upstream@6.1] judged as 6.1 (the stage's release; the host records 6.12.0): 11 divergence(s)");
    expect(lines[1]).toContain('seq 4 (line 5) IommufdOpened: recorded ok, replayed -ENOENT (root cause)');
    expect(lines[2]).toContain('rule release.iommufd.no-node:');
    out = [];
    expect(await main(['replay', '--stage', 'upstream@6.1', '--json', file])).toBe(1);
    const report = JSON.parse(out.join(''));
    expect(report.variant).toBe('upstream@6.1');
    expect(report.hosts[0].results[0].release).toEqual({ recorded: '6.12.0', stage: '6.1', judgedAs: "6.1 (the stage's release; the host records 6.12.0)" });
  });

  it('issue 19: the corpus goldens record what moving to 6.1 changes; --check of upstream@6.1 passes, and reports and JUnit name the stage', async () => {
    const files = [copy('s01-singleton-happy-path'), copy('s25-group-node-twice')];
    const junit = join(dir, 'junit.xml');
    expect(await main(['replay', '--check', '--stage', 'upstream,upstream@6.1', '--junit', junit, ...files])).toBe(0);
    expect(out.at(-1)).toBe('4 of 4 check(s) ran (2 history file(s) × 2 variant(s)): unchanged');
    expect(readFileSync(junit, 'utf8')).toContain('s01-singleton-happy-path.jsonl [upstream@6.1]');
    const golden = JSON.parse(readFileSync(join(dir, 's01-singleton-happy-path.golden.json'), 'utf8'));
    expect(golden.variants['upstream@6.1'].hosts['lab-s1'].divergences['seq 4']).toEqual({
      type: 'IommufdOpened',
      recorded: 'ok',
      replayed: '-ENOENT',
      rule: 'release.iommufd.no-node',
      rootCause: true,
    });
  });

  it('issue 19: a release stage that is not one exits 2 with one line naming it', async () => {
    const file = copy('s07-replace');
    expect(await main(['replay', '--stage', 'stage2@6.1', file])).toBe(2);
    expect(err).toEqual(['iommutrail: --stage: "stage2@6.1": stage2 does not decide per kernel release (only upstream does: upstream@7.3)']);
  });

  it('issue 19: the example stage file replays the corpus against its goldens as the README says, reported like a variant in text, JSON and JUnit', async () => {
    const corpus = readdirSync(CORPUS).filter((f) => f.endsWith('.jsonl')).map((f) => join(CORPUS, f));
    const example = 'replay/stages/site-strict-7.3';
    expect(readFileSync('replay/stages/README.md', 'utf8')).toContain(`replay --stage ${example}/stage.yaml --check --golden-dir ${example}/goldens replay/corpus/*.jsonl`);
    const junit = join(dir, 'out.xml');
    expect(await main(['replay', '--stage', `${example}/stage.yaml`, '--check', '--golden-dir', `${example}/goldens`, '--junit', junit, ...corpus])).toBe(0);
    expect(out.at(-1)).toBe(`${corpus.length} of ${corpus.length} check(s) ran (${corpus.length} history file(s) × 1 variant(s)): unchanged`);
    expect(readFileSync(junit, 'utf8')).toContain('s29-bridge-in-group.jsonl [site-strict-7.3]');
    out = [];
    expect(await main(['replay', '--stage', `${example}/stage.yaml`, '--json', join(CORPUS, 's29-bridge-in-group.jsonl')])).toBe(1);
    const report = JSON.parse(out.join(''));
    expect(report.variant).toBe('site-strict-7.3');
    expect(report.hosts[0].results[0].divergences[0].rule).toBe('site.bind.group-spans-bridge');
    out = [];
    expect(await main(['replay', '--stage', `upstream,${example}/stage.yaml`, join(CORPUS, 's29-bridge-in-group.jsonl')])).toBe(1);
    expect(out.join('\n')).toContain('host lab-s29 [site-strict-7.3] judged as 7.3 (the stage\'s release; the host records 6.12.0): 2 divergence(s) in 7 operation(s)');
  });

  it('issue 19: a stage file with a wrong rule exits 2 with one line naming the file, the rule and the field; a missing one or bad YAML too', async () => {
    const file = copy('s07-replace');
    const bad = join(dir, 'bad-stage.yaml');
    writeFileSync(bad, ['name: bad', 'base: upstream@7.3', 'description: d', 'rules:', '  remove:', '    - id: upstream.claim.ownd', '      reason: r', '      source: s', ''].join('\n'));
    expect(await main(['replay', '--stage', bad, file])).toBe(2);
    expect(err).toEqual([`iommutrail: ${bad}: rules.remove[0] (upstream.claim.ownd).id: upstream@7.3 has no rule "upstream.claim.ownd"; did you mean "upstream.claim.owned"?`]);
    err = [];
    writeFileSync(bad, 'name: [unclosed\n');
    expect(await main(['replay', '--stage', bad, file])).toBe(2);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(new RegExp(`^iommutrail: ${bad}: not valid YAML: .* at line \\d+, column \\d+$`));
    err = [];
    expect(await main(['replay', '--stage', join(dir, 'none.yaml'), file])).toBe(2);
    expect(err).toEqual([`iommutrail: ${join(dir, 'none.yaml')}: no such file or directory`]);
  });

  it('issue 21: a history with an event removed (a seq gap) is flagged by validate and replay, naming the missing seq as root cause', async () => {
    const lines = readFileSync(join(CORPUS, 's07-replace.jsonl'), 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('"seq":3,'));
    const gapped = join(dir, 'gapped.jsonl');
    writeFileSync(gapped, lines.filter((_, i) => i !== at).join('\n'));
    expect(await main(['validate', gapped])).toBe(1);
    expect(err.join('\n')).toContain(`sequence gap: ${gapped}:${at + 1}: host lab-s7: seq 3 missing (between line ${at} and line ${at + 1}): an event removed or lost`);
    // the events after the hole use an fd it opened: bad input (exit 2), explained by the missing seq first
    out = [];
    expect(await main(['replay', '--stage', 'upstream', gapped])).toBe(2);
    expect(out[0]).toMatch(/^sequence gap: .*host lab-s7: seq 3 missing .*; the likely root cause of the 4 input error\(s\) from line 4 and 1 divergence\(s\) from seq 12 \(line 12\)$/);
  });
});
