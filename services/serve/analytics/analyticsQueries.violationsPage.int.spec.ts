import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsQueries, type TableParams } from './analyticsQueries.js';
import type { ViolationRecord } from './analyticsSink.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { migrate } from './migrate.js';
import { chdbAvailability } from './testing/chdbAvailability.js';
import { recordingClient } from './testing/recordingClient.js';

const SECOND = 1_000_000_000n;
const D1 = 1_732_406_400_000_000_000n; // 2024-11-24T00:00:00Z
const HOSTS = ['h1', 'h2', 'h3'];
const RULES: readonly (readonly [string, string])[] = [
  ['tenant-mixing', 'critical'],
  ['unsafe-interrupts', 'warning'],
  ['translated-by-unattached-domain', 'info'],
];
/** what only the two steps' second statement has */
const TWO_STEP = 'version DESC LIMIT 1 BY host, violation_key';

/**
 * Occurrences opened at 60 moments (two on each of a third of them: ties on the opening), each written as versions:
 * open, open again (evidence grown), then closed for some, each in an insert of its own; a restart writes them again,
 * and some closed rows come before their open ones (out of order). The newest occurrence is written again many times
 * (the last one closed), so that among the newest versions a key takes many places.
 */
const generate = (): { batches: ViolationRecord[][]; later: ViolationRecord[][]; latest: Map<string, ViolationRecord> } => {
  const batches: ViolationRecord[][] = [];
  const later: ViolationRecord[][] = [];
  const latest = new Map<string, ViolationRecord>();
  let version = 0n;
  for (let i = 0; i < 60; i++) {
    const atNs = D1 + BigInt(i) * SECOND;
    for (let twin = 0; twin < (i % 3 === 0 ? 2 : 1); twin++) {
      const host = HOSTS[(i + twin) % HOSTS.length] ?? 'h1';
      const [rule, severity] = RULES[(i * 7 + twin) % RULES.length] ?? ['r', 'warning'];
      const key = `${rule}|${host}|${twin}@e${i}`;
      const opened = { eventId: `e${i}`, globalPosition: BigInt(i), timeNs: atNs };
      const first: ViolationRecord = { key, host, group: twin, rule, severity, message: key, opened, evidence: [opened.eventId], version: ++version };
      const again: ViolationRecord = { ...first, evidence: [opened.eventId, `x${i}`], version: ++version };
      const rows = [first, again];
      if (i % 2 === 0 || i % 4 === 1) rows.push({ ...again, closed: { eventId: `c${i}`, globalPosition: BigInt(i) + 100n, timeNs: atNs + 5n * SECOND }, version: ++version });
      // one insert each (within one the engine keeps a key's latest version only); out of order: the latest first
      for (const row of i % 5 === 0 ? [...rows].reverse() : rows) batches.push([row]);
      // a restart writing the same versions again (after the first writes were merged: older versions than the merged)
      if (i % 4 === 1) for (const row of rows) later.push([row]);
      latest.set(key, rows.reduce((a, b) => (b.version > a.version ? b : a)));
    }
  }
  const newest = [...latest.values()].reduce((a, b) => (b.opened.timeNs > a.opened.timeNs || (b.opened.timeNs === a.opened.timeNs && b.key < a.key) ? b : a));
  // written again eleven times open, then closed
  const versions = Array.from({ length: 12 }, (_, n) => ({ ...newest, evidence: [...newest.evidence, `y${version}`], version: ++version, ...(n === 11 ? { closed: { eventId: 'z', globalPosition: 1000n, timeNs: newest.opened.timeNs + SECOND } } : {}) }));
  for (const v of versions) later.push([v]);
  latest.set(newest.key, versions.at(-1) ?? newest);
  return { batches, later, latest };
};

describeWithEngine('chdb', chdbAvailability(), 'Analytics > the violations page in one statement over FINAL or in two steps, chosen by the table\u2019s size (issue 23, dash10)', () => {
  let dir: string;
  let ac: AnalyticsClient;
  const db = 'violationspage';
  let latest: Map<string, ViolationRecord>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-vpage-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: dir }, database: db });
    await migrate(ac);
    const sink = getClickHouseAnalyticsSink(ac);
    const generated = generate();
    latest = generated.latest;
    const write = (violations: ViolationRecord[]) => sink.write({ events: [], violations, groupStates: [], compliance: [], checkpoint: { subscriber: 'test', position: 0n } });
    for (const violations of generated.batches) await write(violations);
    // (and the findings' copy, migration 0017)
    for (const table of ['violations', 'violation_findings']) await ac.client.command({ query: `OPTIMIZE TABLE ${db}.${table} FINAL` });
    // the versions written next kept apart, as before the engine merges them (which it may do at any time, not in a test's)
    for (const table of ['violations', 'violation_findings']) await ac.client.command({ query: `SYSTEM STOP MERGES ${db}.${table}` });
    for (const violations of generated.later) await write(violations);
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** the page as the occurrences' latest versions give it: newest opening first, then by key */
  const expected = (p: TableParams, offset: number, limit: number): { keys: string[]; open: boolean[]; total: number } => {
    const all = [...latest.values()]
      .filter((v) => (p.includeInfo === true || v.severity !== 'info') && (p.host === undefined || v.host === p.host) && (p.rules === undefined || p.rules.includes(v.rule)) && (p.toNs === undefined || v.opened.timeNs <= p.toNs))
      .sort((a, b) => (a.opened.timeNs === b.opened.timeNs ? (a.key < b.key ? -1 : 1) : a.opened.timeNs > b.opened.timeNs ? -1 : 1));
    const page = all.slice(offset, offset + limit);
    return { keys: page.map((v) => v.key), open: page.map((v) => v.closed === undefined), total: all.length };
  };

  it('dash10 #23: given violations written as versions (again after a restart, out of order, ties on the opening, one key written many times among the newest), when pages are read in one statement over FINAL and in two steps, then both give the latest versions\u2019 rows and total, page by page', async () => {
    const oneSent: string[] = [];
    const twoSent: string[] = [];
    const one = createAnalyticsQueries(recordingClient(ac, oneSent), { violationsTwoStepFromRows: Number.MAX_SAFE_INTEGER });
    const two = createAnalyticsQueries(recordingClient(ac, twoSent), { violationsTwoStepFromRows: 0 });
    const filters: TableParams[] = [{}, { includeInfo: true }, { host: 'h2' }, { rules: ['tenant-mixing'] }, { toNs: D1 + 40n * SECOND, includeInfo: true }];
    for (const f of filters) {
      for (const [offset, limit] of [[0, 1], [0, 3], [1, 3], [3, 7], [10, 5], [0, 200], [35, 10], [200, 5]] as const) {
        const want = expected(f, offset, limit);
        for (const [way, q] of [['one', one], ['two', two]] as const) {
          const got = await q.page('violations', { ...f, offset, limit });
          expect({ way, keys: got.rows.map((r) => r.violation_key), open: got.rows.map((r) => r.closed_ns === null), total: got.total }).toEqual({ way, ...want });
        }
      }
    }
    // a page of findings only read the findings' copy (migration 0017), one with information records the violations
    expect(oneSent.filter((s) => s.includes(`${db}.violation_findings FINAL`)).length).toBeGreaterThan(20);
    expect(oneSent.filter((s) => s.includes(`${db}.violations FINAL`)).length).toBeGreaterThan(10);
    // each way was taken: one never read the page in two steps, two did (when the floor was found among the newest)
    expect(oneSent.filter((s) => s.includes(TWO_STEP))).toEqual([]);
    expect(twoSent.filter((s) => s.includes(TWO_STEP)).length).toBeGreaterThan(20);
  });

  it('dash10 #23: given the newest occurrence written twelve times, when the first page of three is read in two steps, then its floor is not found among the newest versions and the page is read over FINAL, the same rows', async () => {
    const sent: string[] = [];
    const two = createAnalyticsQueries(recordingClient(ac, sent), { violationsTwoStepFromRows: 0 });
    const got = await two.page('violations', { includeInfo: true, limit: 3 });
    expect(got.rows.map((r) => r.violation_key)).toEqual(expected({ includeInfo: true }, 0, 3).keys);
    expect(sent.filter((s) => s.includes(TWO_STEP))).toEqual([]);
    expect(sent.filter((s) => s.includes(`${db}.violations FINAL`)).length).toBe(1);
  });

  it('dash10 #23: given a page whose scope holds n violations (its total), when the two steps start from n, then the page is read in two steps, and from n + 1, over FINAL; no statement counts the table', async () => {
    const n = (await createAnalyticsQueries(ac, { violationsTwoStepFromRows: Number.MAX_SAFE_INTEGER }).page('violations', { limit: 5, offset: 5 })).total;
    expect(n).toBeGreaterThan(10);
    const at = async (from: number): Promise<string[]> => {
      const sent: string[] = [];
      await createAnalyticsQueries(recordingClient(ac, sent), { violationsTwoStepFromRows: from }).page('violations', { limit: 5, offset: 5 });
      return sent;
    };
    const large = await at(n);
    expect(large.filter((s) => s.includes(TWO_STEP)).length).toBe(1);
    expect(large.filter((s) => /\.violation(s|_findings) FINAL/.test(s))).toEqual([]);
    const small = await at(n + 1);
    expect(small.filter((s) => s.includes(TWO_STEP))).toEqual([]);
    expect(small.filter((s) => s.includes(`${db}.violation_findings FINAL`)).length).toBe(1);
    for (const sent of [large, small]) expect(sent.filter((s) => /SELECT count\(\) AS n FROM \S+\.violation(s|_findings)\b/.test(s))).toEqual([]);
  });
});
