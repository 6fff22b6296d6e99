import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { corpusCounts, statesFinding, toCorpusTable, withCorpusTable } from './corpusTable.js';
import { corpusRows } from './corpus/loadCorpus.js';

// real posted reports (corpus/index.json): diagnose reads the files as a user would paste them
const rows = corpusRows();

describe('diagnose on the corpus of real reports (issue 22)', () => {
  it('issue 22: the corpus holds at least 40 real reports, each with its source thread', () => {
    expect(rows.length).toBeGreaterThanOrEqual(40);
    expect(rows.every(({ c }) => /^https:\/\/github\.com\/[^/]+\/[^/]+\/(?:issues|pull)\/\d+$/.test(c.source))).toBe(true);
  });

  it.each(rows.map((r) => [r.c.case, r] as const))('issue 22: %s gets the verdict its paste supports, never a wrong one', (_, { c, d }) => {
    expect(d.verdict).toBe(c.expected.verdict);
    if (c.expected.wanted) expect(d.considered).toEqual(c.expected.wanted);
    if (c.expected.blockers) expect(d.groups.filter((g) => d.considered.includes(g.group)).flatMap((g) => g.blockers)).toEqual(c.expected.blockers);
    if (d.verdict === 'unknown') {
      expect(d.next.length).toBeGreaterThan(0);
      if (c.expected.settle) expect(d.next.join('\n')).toContain(c.expected.settle);
    }
  });

  it('issue 22: a settled case comes out decided (a verdict, or the finding the thread settled), or the corpus says it was settled in prose only', () => {
    const silent = rows
      .filter(({ c, d }) => c.outcome !== 'unsettled' && d.verdict === 'unknown' && !c.settledInProseOnly && c.expected.finding === undefined)
      .map(({ c }) => c.case);
    expect(silent).toEqual([]);
    const stale = rows.filter(({ c, d }) => c.settledInProseOnly && (d.verdict !== 'unknown' || c.expected.finding !== undefined)).map(({ c }) => c.case);
    expect(stale).toEqual([]);
  });

  it.each(rows.filter((r) => r.c.expected.finding !== undefined).map((r) => [r.c.case, r] as const))(
    'issue 22: %s: diagnose names the finding its thread settled',
    (_, { c, d }) => {
      expect(statesFinding(d, c.expected.finding!)).toBe(true);
    },
  );

  it('issue 22: the table counts settled cases decided right, settled in prose only, and wrong verdicts (none)', () => {
    const n = corpusCounts(rows);
    expect(n.wrong).toBe(0);
    expect(n.byVerdict + n.byFinding + n.proseOnly).toBe(n.settled);
  });

  it('issue 22: the fix advice on every case appends to files (tee -a) and gives softdep a module name', () => {
    const fixes = rows.flatMap(({ d }) => [...d.groups.flatMap((g) => g.fix), ...d.devices.flatMap((v) => v.fix)]);
    for (const line of fixes.filter((f) => / tee (?:-a )?\/etc\//.test(f))) expect(line).toContain('tee -a /etc/');
    for (const m of fixes.flatMap((f) => [...f.matchAll(/"softdep (\S+) pre:/g)])) expect(m[1]).toMatch(/^[a-z0-9_]+$/);
  });

  it('issue 22: on every case, each append into /etc comes after a grep that shows what is there already', () => {
    const unchecked = rows.flatMap(({ c, d }) =>
      [...d.groups.map((g) => g.fix), ...d.devices.map((v) => v.fix)].flatMap((fix) =>
        fix
          .filter((f, i) => / tee -a \/etc\//.test(f) && !/grep .*tee -a/.test(f) && !fix.slice(0, i).some((p) => p.startsWith('grep ')))
          .map((f) => `${c.case}: ${f}`),
      ),
    );
    expect(unchecked).toEqual([]);
  });

  it('issue 22: corpus/README.md carries the table of what diagnose answers now', () => {
    const readme = readFileSync(fileURLToPath(new URL('./corpus/README.md', import.meta.url)), 'utf8');
    // regenerate with: npx tsx services/diagnose/corpus/writeTable.ts
    expect(readme).toBe(withCorpusTable(readme, toCorpusTable(rows)));
  });
});
