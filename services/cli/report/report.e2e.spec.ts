import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createFleetProjection, foldEventsAsync, isFinding, type FleetState } from '../../../projections/index.js';
import type { RecordedEvent } from '../../../schemas/index.js';
import { chdbAvailability } from '../../serve/analytics/testing/chdbAvailability.js';
import { independentFindings, independentShare } from '../../serve/analytics/testing/independentCompliance.js';
import { sqliteStorePath } from '../../shared/eventStore/openConfiguredStore.js';
import { PUBLIC_KEY_FILE } from '../../shared/eventStore/sqlite/tamper/signing.js';
import { loadExtensions } from '../../serve/extensions.js';
import { formatTimeNs } from '../../shared/time.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { startTestService, TEST_TOKENS, type TestService } from '../../serve/testing/service.js';
import { main } from '../main.js';

const CHROMIUM = '/usr/bin/chromium';
const availability = (): { available: boolean; reason?: string } => {
  for (const bin of [CHROMIUM, '/usr/bin/pdftoppm', '/usr/bin/pdftotext']) {
    if (!existsSync(bin)) return { available: false, reason: `${bin} missing (run deploy/local/install-test-engines.sh)` };
  }
  return chdbAvailability();
};

const ARTEFACTS = 'test-results/report';

describeWithEngine('chromium', availability(), 'CLI > report: a compliance report as PDF and HTML, checked against the fold', () => {
  let svc: TestService;
  let dir: string;
  let events: RecordedEvent[];
  let state: FleetState;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-report-'));
    svc = await startTestService({ analytics: { enabled: true }, store: { checkpointIntervalMs: 50 } }, loadExtensions);
    const loaded = await svc.call('/v1/admin/demo-fleet', { method: 'POST' });
    expect(loaded.status).toBe(202);
    const head = await svc.store.headPosition();
    // the sink and the signed log follow the store: wait until both cover every event
    const until = async (done: () => Promise<boolean>): Promise<void> => {
      while (!(await done())) await new Promise((resolve) => setTimeout(resolve, 200));
    };
    await until(async () => ((await (await svc.call('/v1/analytics/status', { as: 'read' })).json()) as { position: string }).position === head.toString());
    await until(async () => ((await (await svc.call('/v1/log/checkpoint?format=json', { as: 'read' })).json()) as { size?: number }).size === Number(head));
    events = [];
    for await (const r of svc.store.readAll()) events.push(r);
    state = await foldEventsAsync(createFleetProjection(), svc.store.readAll());
    mkdirSync(ARTEFACTS, { recursive: true });
  }, 300_000);

  afterAll(async () => {
    await svc?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const report = (out: string, ...extra: string[]) => main(['report', '--url', svc.url, '--token', TEST_TOKENS.read, '--out', out, '--public-key', join(svc.dataDir, PUBLIC_KEY_FILE), ...extra]);

  it('issue 21 report: the HTML report’s headline, per-rule table and findings match the fold, and every evidence event is proved in the signed log', async () => {
    const out = join(dir, 'report.html');
    expect(await report(out)).toBe(0);
    const html = readFileSync(out, 'utf8');
    // self-contained: nothing loaded from elsewhere
    expect(html).not.toMatch(/<script|<link|src="http/);
    const findings = independentFindings(state);
    expect(findings.length).toBeGreaterThan(0);
    expect(html).toContain(`<b id="h-share">${independentShare(events, state, {})}</b>`);
    expect(html).toContain(`<b id="h-findings">${findings.length}</b>`);
    // per rule: each rule's count of findings in the period, from the fold (information records are no findings)
    const all = [...Object.values(state.violations.open), ...state.violations.closed].filter(isFinding);
    const perRule = html.slice(html.indexOf('<table class="per-rule">'), html.indexOf('</table>', html.indexOf('<table class="per-rule">')));
    for (const rule of new Set(all.map((v) => v.ruleId))) {
      const n = all.filter((v) => v.ruleId === rule).length;
      expect(perRule, rule).toMatch(new RegExp(`<td>${rule}</td><td>[a-z]+</td><td>${n}</td>`));
    }
    // every finding with its evidence, each event proved included under the signed checkpoint
    expect(html.match(/<div class="finding">/g)?.length).toBe(findings.length);
    const evidence = findings.reduce((n, v) => n + new Set([v.opened.eventId, ...v.evidence, ...(v.closed ? [v.closed.eventId] : [])]).size, 0);
    expect(html.match(/included: position \d+ proved in the signed tree/g)?.length).toBe(evidence);
    expect(html).not.toContain('NOT PROVED');
    expect(html).toContain('<pre id="checkpoint">');
    // the report checked the checkpoint's signature itself, with the key given, and says so
    expect(html).toMatch(/<p id="signature">Signature checked by this report: the checkpoint is signed for origin \S+ \(the origin it names: pin it with --origin\) by the pinned key /);
    // the rule catalogue in plain words and how to verify
    expect(html).toContain('Rule catalogue');
    expect(html).toContain('iommutrail verify');
  }, 300_000);

  it('issue 21 report: the PDF renders (pages to PNG kept as artefacts) and its text reads back with the same headline', async () => {
    const out = join(dir, 'report.pdf');
    const host = findingsHost(state);
    expect(await report(out, '--host', host)).toBe(0);
    expect(readFileSync(out).subarray(0, 5).toString()).toBe('%PDF-');
    const text = execFileSync('pdftotext', ['-layout', out, '-'], { encoding: 'utf8' });
    expect(text).toContain('IOMMU isolation compliance report');
    expect(text).toContain(`Scope: ${host}`);
    expect(text).toContain(independentShare(events, state, { host }));
    const findings = independentFindings(state).filter((v) => v.host === host);
    expect(text).toMatch(new RegExp(`Findings in the period\\s*\\n?[\\s\\S]{0,400}?${findings.length}`));
    expect(text).toContain('How to verify');
    execFileSync('pdftoppm', ['-png', '-r', '60', out, join(ARTEFACTS, 'report-page')]);
    const pages = readdirSync(ARTEFACTS).filter((f) => f.startsWith('report-page') && f.endsWith('.png'));
    expect(pages.length).toBeGreaterThan(1);
    for (const p of pages) expect(statSync(join(ARTEFACTS, p)).size).toBeGreaterThan(2_000);
  }, 300_000);

  it('issue 21 report: a tampered signed checkpoint (or one of another origin) makes the report fail with the tamper exit code, writing nothing', async () => {
    const db = new Database(sqliteStorePath(svc.dataDir));
    const latest = db.prepare<[], { size: number; note: string }>('SELECT size, note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1').get()!;
    const lines = latest.note.split('\n');
    const origin = lines[0]!;
    // the root edited: a valid-looking checkpoint whose signature no longer matches
    const root = Buffer.from(lines[2]!, 'base64');
    root[0] = root[0]! ^ 0xff;
    const tampered = [lines[0], lines[1], root.toString('base64'), ...lines.slice(3)].join('\n');
    const err: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    try {
      // the origin as given passes with the genuine checkpoint
      expect(await report(join(dir, 'origin-ok.html'), '--origin', origin)).toBe(0);
      expect(readFileSync(join(dir, 'origin-ok.html'), 'utf8')).toContain(`signed for origin ${origin} (the origin given)`);
      db.prepare('UPDATE tlog_checkpoints SET note = ? WHERE size = ?').run(tampered, latest.size);
      process.stderr.write = ((chunk: string) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
      expect(await report(join(dir, 'tampered.html'))).toBe(1);
      expect(existsSync(join(dir, 'tampered.html'))).toBe(false);
      // the genuine checkpoint under another origin than the one trusted
      db.prepare('UPDATE tlog_checkpoints SET note = ? WHERE size = ?').run(latest.note, latest.size);
      expect(await report(join(dir, 'other-origin.html'), '--origin', 'example.org/another-log')).toBe(1);
      expect(existsSync(join(dir, 'other-origin.html'))).toBe(false);
    } finally {
      process.stderr.write = write;
      db.prepare('UPDATE tlog_checkpoints SET note = ? WHERE size = ?').run(latest.note, latest.size);
      db.close();
    }
    expect(err.join('')).toMatch(/report: TAMPERED: the service's signed checkpoint does not verify .*bad signature/);
  }, 300_000);

  it('issue 21 one time format: an event’s time reads the same in `query timeline`, on the dashboard’s group timeline and in its CSV', async () => {
    const v = independentFindings(state).find((x) => x.group !== undefined)!;
    const [host, group] = [v.host, String(v.group)];
    // the CLI's human answer
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
    try {
      expect(await main(['query', 'timeline', host, '--group', group, '--limit', '1000', '--url', svc.url, '--token', TEST_TOKENS.read])).toBe(0);
    } finally {
      log.mockRestore();
    }
    const cli = out.join('\n');
    let shown = '';
    // the dashboard, in a browser, with a read token
    const context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1000 },
    });
    try {
      const page = await context.newPage();
      await page.goto(`${svc.url}/dashboard`);
      await page.evaluate(`localStorage.setItem('iommutrail.token', ${JSON.stringify(TEST_TOKENS.read)})`);
      await page.goto(`${svc.url}/dashboard?${new URLSearchParams({ subject: host, group })}`);
      await page.waitForSelector('#groupPanel:not([hidden]) [data-table="group-timeline"] tbody tr');
      const headers = await page.locator('[data-table="group-timeline"] thead th').allTextContents();
      const rows = await page.locator('[data-table="group-timeline"] tbody tr').all();
      expect(rows.length).toBeGreaterThan(3);
      const byId = new Map(events.map((r) => [String(r.event.id), r.event]));
      for (const row of rows) {
        const cells = await row.locator('td').allTextContents();
        const time = cells[headers.indexOf('time utc')]!;
        const event = byId.get(cells[headers.indexOf('event id')]!)!;
        // the one format, with its zone, and the very same text in the CLI's line for that event (host#seq)
        expect(time).toBe(formatTimeNs(BigInt(event.time)));
        expect(time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/);
        expect(cli).toContain(`${time} ${host}#${event.seq} ${event.type}`);
        shown = time;
      }
      // the slider's own time (computed in the page) in the same format
      expect(await page.textContent('#sliderTime')).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/);
      mkdirSync('test-results', { recursive: true });
      await page.locator('#groupPanel').scrollIntoViewIfNeeded();
      await page.screenshot({ path: 'test-results/dashboard-time-format.png' });
    } finally {
      await context.close();
    }
    const csv = await (await svc.call(`/v1/analytics/tables/group-timeline?${new URLSearchParams({ subject: host, group, format: 'csv' })}`, { as: 'read' })).text();
    expect(csv).toContain(`"${shown}"`);
  }, 300_000);

  it('given a wrong --out, a bad --stale-after or a missing chromium, then one line and the documented exit code', async () => {
    expect(await report(join(dir, 'report.txt'))).toBe(2);
    expect(await report(join(dir, 'r.html'), '--stale-after', 'soon')).toBe(2);
    expect(await report(join(dir, 'r.pdf'), '--chromium', join(dir, 'no-chromium'))).toBe(69);
  });
});

/** a host with at least one finding */
const findingsHost = (state: FleetState): string => independentFindings(state)[0]!.host;
