import express from 'express';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createFleetProjection, foldEventsAsync, isFinding, type FleetState, type Violation } from '../../../../projections/index.js';
import type { RecordedEvent } from '../../../../schemas/index.js';
import { createAnalyticsProjector, type AnalyticsProjector, type AnalyticsProjectorStatus } from '../../analytics/analyticsProjector.js';
import { createAnalyticsQueries } from '../../analytics/analyticsQueries.js';
import { getClickHouseAnalyticsSink } from '../../analytics/clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from '../../analytics/clickhouseClient.js';
import { loadDemoFleet } from '../../analytics/demoFleet.js';
import { migrate } from '../../analytics/migrate.js';
import { chdbAvailability } from '../../analytics/testing/chdbAvailability.js';
import { independentShare } from '../../analytics/testing/independentCompliance.js';
import { getSqliteEventStore, type SqliteEventStore } from '../../../shared/eventStore/sqlite/sqliteEventStore.js';
import { describeWithEngine } from '../../../shared/testing/engines.js';
import { formatTimeNs } from '../../../shared/time.js';
import { problemMiddleware } from '../problem.js';
import { createDashboardRouter } from './dashboardRouter.js';

const CHROMIUM = '/usr/bin/chromium';
const chromiumAvailability = (): { available: boolean; reason?: string } => {
  if (!existsSync(CHROMIUM)) return { available: false, reason: `${CHROMIUM} missing (run deploy/local/install-test-engines.sh)` };
  return chdbAvailability();
};

// a fleet with open findings at its end (an unsafe-interrupts host keeps VMs bound), closed ones with a group, and
// more than a page (20) of stories; 6.1 hosts joined the default kernel mix (their VMs use the legacy container
// API only, so a fleet makes fewer mistakes than before), hence 9,000 events over 8 hosts
const DEMO = { events: 9000, hosts: 8 } as const;

/** the fold's findings (what the dashboard counts: information records are not findings) */
const findingsOf = (state: FleetState): { open: Violation[]; closed: Violation[] } => ({
  open: Object.values(state.violations.open).filter(isFinding),
  closed: state.violations.closed.filter(isFinding),
});

/** the numbers the page must show, from the pure fold over the store (independent of the SQL) */
const expectedSummary = (events: readonly RecordedEvent[], state: FleetState, host?: string) => {
  const hosts = Object.keys(state.hosts).filter((h) => host === undefined || h === host);
  const open = findingsOf(state).open.filter((v) => host === undefined || v.host === host);
  return {
    hostsTracked: String(hosts.length),
    groupsTracked: String(hosts.reduce((n, h) => n + Object.keys(state.hosts[h]?.groups ?? {}).length, 0)),
    openViolations: String(open.length),
    compliantShare: independentShare(events, state, host === undefined ? {} : { host }),
  };
};

const readAll = async (store: SqliteEventStore): Promise<RecordedEvent[]> => {
  const out: RecordedEvent[] = [];
  for await (const r of store.readAll()) out.push(r);
  return out;
};

const summaryOnPage = async (page: Page) => ({
  hostsTracked: await page.textContent('#hostsTracked'),
  groupsTracked: await page.textContent('#groupsTracked'),
  openViolations: await page.textContent('#openViolations'),
  compliantShare: await page.textContent('#compliantShare'),
});

// evaluated in the page, where `document` exists (the repo's tsconfig has no DOM lib)
const PAGE_LOADED_AFTER = `(t) => Number(document.querySelector('#status')?.getAttribute('data-loaded') ?? 0) > t`;
const DEMO_APPENDED = `() => document.querySelector('#demoStatus')?.textContent?.includes('events appended')`;

/** a screenshot kept as a test artefact under test-results/ */
const shot = async (page: Page, name: string): Promise<void> => {
  mkdirSync('test-results', { recursive: true });
  await page.screenshot({ path: `test-results/dashboard-${name}.png`, fullPage: false });
};

const waitLoaded = async (page: Page, after: number): Promise<void> => {
  await page.waitForFunction(`(${PAGE_LOADED_AFTER})(${after})`);
};

describeWithEngine('chromium', chromiumAvailability(), 'Dashboard > in a real browser (chromium headless, express, chdb)', () => {
  let dir: string;
  let store: SqliteEventStore;
  let ac: AnalyticsClient;
  let projector: AnalyticsProjector;
  let server: Server;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  // what the page is told about the sink, over the real projector's status
  let sinkOverride: Partial<AnalyticsProjectorStatus> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-dashboard-'));
    store = getSqliteEventStore({ path: join(dir, 'events.db'), durability: 'normal', pollIntervalMs: 20 });
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(dir, 'clickhouse') } });
    await migrate(ac);
    projector = createAnalyticsProjector({ store, sink: getClickHouseAnalyticsSink(ac), fold: createFleetProjection() });
    await projector.start();

    const app = express();
    app.use(createDashboardRouter({ analytics: createAnalyticsQueries(ac), loadDemoFleet: () => loadDemoFleet(store, DEMO), sinkStatus: () => ({ ...projector.status(), ...sinkOverride }) }));
    app.use(problemMiddleware);
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1000 },
    });
    page = await context.newPage();
  });

  afterAll(async () => {
    await context?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await projector?.stop();
    await ac?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('given an empty store, when the demo fleet is loaded from the page, then the summary shows the fold’s numbers', async () => {
    await page.goto(`${base}/dashboard`);
    await waitLoaded(page, 0);
    expect(await page.textContent('#hostsTracked')).toBe('0');

    await page.click('#loadDemo');
    await page.waitForFunction(`(${DEMO_APPENDED})()`, undefined, { timeout: 120_000 });
    // the sink follows the store asynchronously: wait until it has written the head
    const head = await store.headPosition();
    await expect.poll(() => projector.position(), { timeout: 120_000, interval: 100 }).toBe(head);

    const t = Date.now();
    await page.reload();
    await waitLoaded(page, t - 1);
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    const want = expectedSummary(await readAll(store), state);
    expect(Number(want.openViolations)).toBeGreaterThan(0);
    expect(await summaryOnPage(page)).toEqual(want);
    expect(await page.locator('[data-table="hosts"] tbody tr').count()).toBe(Number(want.hostsTracked));
  });

  it('given the loaded fleet, when filtering on one host, then the numbers change and the URL can be shared', async () => {
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    const host = findingsOf(state).open[0]?.host ?? Object.keys(state.hosts)[0]!;
    await page.fill('#filters input[name="host"]', host);
    const t = Date.now();
    await page.click('#filters button[type="submit"]');
    await waitLoaded(page, t);
    const events = await readAll(store);
    expect(await summaryOnPage(page)).toEqual(expectedSummary(events, state, host));
    expect(new URL(page.url()).searchParams.get('host')).toBe(host);
    await shot(page, 'filter-host');

    // the same link opened fresh shows the same view
    const other = await context.newPage();
    await other.goto(page.url());
    await waitLoaded(other, 0);
    expect(await summaryOnPage(other)).toEqual(expectedSummary(events, state, host));
    await other.close();
  });

  it('issue 21 drill-down: clicking a violation shows its whole story in view: context, opening, closing, actors, the rule, a link to the group then', async () => {
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    // a closed violation with a group: the story has both ends
    const v = findingsOf(state).closed.find((x) => x.group !== undefined);
    expect(v).toBeDefined();
    const key = `${v!.key}@${v!.opened.eventId}`;
    // keyboard: the row of our violation takes focus and Enter opens it
    await page.goto(`${base}/dashboard?${new URLSearchParams({ host: v!.host })}`);
    await waitLoaded(page, 0);
    const rows = page.locator('[data-table="violations"] tbody tr');
    const n = await rows.count();
    let target = -1;
    for (let i = 0; i < n && target < 0; i++) if ((await rows.nth(i).textContent())?.includes(v!.ruleId) && (await rows.nth(i).textContent())?.includes(new Date(Number(BigInt(v!.opened.timeNs) / 1_000_000n)).toISOString().slice(0, 19))) target = i;
    expect(target).toBeGreaterThanOrEqual(0);
    await rows.nth(target).focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#violationPanel:not([hidden]) [data-table="violation-events"] tbody tr');
    expect(new URL(page.url()).searchParams.get('violation')).toBe(key);

    // in view: the panel's top is inside the viewport after the click
    const box = await page.locator('#violationPanel').boundingBox();
    expect(box).not.toBeNull();
    expect(box!.y).toBeGreaterThanOrEqual(0);
    expect(box!.y).toBeLessThan(1000);

    const lines = await page.locator('[data-table="violation-events"] tbody tr').allTextContents();
    const byRole = (role: string) => lines.filter((l) => l.startsWith(role));
    expect(byRole('opening').some((l) => l.includes(v!.opened.eventId))).toBe(true);
    expect(byRole('closing').some((l) => l.includes(v!.closed!.eventId))).toBe(true);
    expect(lines.filter((l) => !l.startsWith('context')).length).toBe(new Set([v!.opened.eventId, ...v!.evidence, v!.closed!.eventId]).size);
    expect(byRole('context').length).toBeGreaterThan(0);
    const facts = (await page.textContent('#storyFacts')) ?? '';
    expect(facts).toContain('why it matters');
    expect(facts).toContain(v!.ruleId);
    expect(facts).toContain(`group ${v!.group}`);
    expect(facts).toContain('actors');
    const link = await page.getAttribute('#storyGroupLink', 'href');
    expect(link).toContain(`group=${v!.group}`);
    expect(link).toContain(`at=${v!.opened.timeNs}`);
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard-violation-story.png' });

    // the link opens the group's timeline with the slider at the opening moment
    await page.click('#storyGroupLink');
    await page.waitForSelector('#groupPanel:not([hidden]) [data-table="group-timeline"] tbody tr');
    expect(Number(await page.inputValue('#timeSlider'))).toBeLessThanOrEqual(1000);
    expect(await page.getAttribute('#groupStateAt', 'data-state')).toMatch(/^[a-z-]+$/);
  });

  it('issue 21 actors: a violation’s story names who acted (pid and comm of the process, VM, tenant), and its device events carry the group', async () => {
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    const byId = new Map((await readAll(store)).map((r) => [String(r.event.id), r.event]));
    // a violation whose own events name the whole actor
    const full = (id: string) => {
      const a = byId.get(id)?.actor;
      return a?.pid !== undefined && a.comm !== undefined && a.vm !== undefined && a.tenant !== undefined ? a : undefined;
    };
    const all = [...Object.values(state.violations.open), ...state.violations.closed];
    const v = all.find((x) => x.group !== undefined && x.device !== undefined && [x.opened.eventId, ...x.evidence].some((id) => full(id) !== undefined));
    expect(v).toBeDefined();
    const actor = [v!.opened.eventId, ...v!.evidence].map(full).find((a) => a !== undefined)!;
    const key = `${v!.key}@${v!.opened.eventId}`;
    await page.goto(`${base}/dashboard?${new URLSearchParams({ violation: key })}`);
    await page.waitForSelector('#violationPanel:not([hidden]) [data-table="violation-events"] tbody tr');
    await page.locator('#violationPanel').scrollIntoViewIfNeeded();
    const facts = (await page.textContent('#storyFacts')) ?? '';
    expect(facts).toContain(`process ${actor.comm} (pid ${actor.pid})`);
    expect(facts).toContain(`VM ${actor.vm}`);
    expect(facts).toContain(`tenant ${actor.tenant}`);
    // the events table shows the pid too
    const headers = await page.locator('[data-table="violation-events"] thead th').allTextContents();
    expect(headers).toContain('actor pid');
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard-story-actors.png' });
    // events whose data names a device and no group carry the device's group (the demo fleet never moves a device)
    const events = (await (await fetch(`${base}/v1/analytics/tables/events?limit=100000`)).json()) as { rows: { host: string; device: string | null; group_id: number | null; data: string }[] };
    const deviceOnly = events.rows.filter((e) => e.device !== null && !('group' in (JSON.parse(e.data) as object)) && typeof state.hosts[e.host]?.devices[e.device]?.group === 'number');
    expect(deviceOnly.length).toBeGreaterThan(0);
    expect(deviceOnly.filter((e) => e.group_id !== state.hosts[e.host]!.devices[e.device!]!.group)).toEqual([]);
  });

  it('issue 21 report speed: the stories of every violation come in a fixed number of queries, the same as asked one by one', async () => {
    let queries = 0;
    const counted: AnalyticsClient = {
      ...ac,
      client: new Proxy(ac.client, {
        get: (t, k) => {
          const v = Reflect.get(t, k) as unknown;
          if (k === 'query') queries++;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
        },
      }),
    };
    const q = createAnalyticsQueries(counted);
    const all = await q.stories({ limit: 100_000 }, 8);
    const batchQueries = queries;
    expect(all.total).toBeGreaterThan(20);
    expect(all.stories).toHaveLength(all.total);
    // the page and its count, the event ids, the events, the context: however many violations
    expect(batchQueries).toBeLessThanOrEqual(5);
    for (const s of all.stories) expect(s).toEqual(await q.story(String(s.violation.violation_key), 8));
    // over HTTP, paged
    const page = (await (await fetch(`${base}/v1/analytics/stories?limit=5&offset=5`)).json()) as { stories: { violation: { violation_key: string } }[]; total: number };
    expect(page.total).toBe(all.total);
    expect(page.stories.map((s) => s.violation.violation_key)).toEqual(all.stories.slice(5, 10).map((s) => s.violation.violation_key));
  });

  it('given a host, when drilling into a group, then its timeline and the slider’s state as of a moment show', async () => {
    await page.locator('[data-table="hosts"] tbody tr').first().click();
    await page.waitForSelector('#hostPanel:not([hidden]) [data-table="host-groups"] tbody tr');
    await page.locator('[data-table="host-groups"] tbody tr').first().click();
    await page.waitForSelector('#groupPanel:not([hidden]) [data-table="group-timeline"] tbody tr');
    const latest = await page.getAttribute('#groupStateAt', 'data-state');
    expect(latest).toMatch(/^(kernel-idle|kernel-dma|user-blocked|user-attached|two-owners)$/);
    await page.fill('#timeSlider', '0');
    const first = await page.locator('[data-table="group-timeline"] tbody tr').first().locator('td').nth(4).textContent();
    expect(await page.getAttribute('#groupStateAt', 'data-state')).toBe(first);

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });
  });

  it('given a table, when exported as CSV, then the file has a header and the rows', async () => {
    const res = await fetch(`${base}/v1/analytics/tables/hosts?format=csv`);
    expect(res.headers.get('content-type')).toMatch(/text\/csv/);
    const lines = (await res.text()).trim().split('\n');
    expect(lines[0]).toContain('"host"');
    expect(lines.length).toBe(1 + DEMO.hosts);
    // the page's own CSV button downloads the same complete file
    await page.goto(`${base}/dashboard`);
    await waitLoaded(page, 0);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-table="hosts"] button[data-csv="hosts"]')]);
    const file = await download.path();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1 + DEMO.hosts);
    await page.locator('[data-table="hosts"]').scrollIntoViewIfNeeded();
    await shot(page, 'csv-export');
    // 'yesterday' is a relative time now (one time rule, params.parseTimeNs); 'noon' names no day
    const bad = await fetch(`${base}/v1/analytics/summary?from=noon`);
    expect(bad.status).toBe(400);
  });

  it('hardening #3/#8: when the sink cannot write or set rows aside, the page shows a banner saying so; when it writes, none', async () => {
    const bannerAfterReload = async () => {
      const t = Date.now();
      await page.reload();
      await waitLoaded(page, t - 1);
      await page.waitForFunction(`() => document.querySelector('#sinkBanner')?.dataset.state !== undefined`);
      return { hidden: await page.locator('#sinkBanner').isHidden(), text: await page.textContent('#sinkBanner') };
    };
    expect((await bannerAfterReload()).hidden).toBe(true);

    sinkOverride = { state: 'retrying', consecutiveFailures: 4, lastError: 'writing a batch: Cannot reserve 1.00 MiB, not enough space', failingSinceMs: 0, quarantinedRows: 2, lastQuarantineReason: 'time 9223372036854775808 ns is outside DateTime64(9)' };
    const failing = await bannerAfterReload();
    expect(failing.hidden).toBe(false);
    expect(failing.text).toContain('not writing (retrying, 4 failed attempts');
    expect(failing.text).toContain('not enough space');
    expect(failing.text).toContain('2 row(s) could not be written');

    sinkOverride = {};
    expect((await bannerAfterReload()).hidden).toBe(true);
  });

  it('issue 21 #1: a panel that fails says so in place, its old figures cleared, and the other panels still show', async () => {
    await page.goto(`${base}/dashboard`);
    await waitLoaded(page, 0);
    expect(await page.locator('[data-table="compliance"] tbody tr').count()).toBeGreaterThan(0);
    const before = await summaryOnPage(page);
    expect(before.openViolations).not.toBe('–');

    // the compliance table and the summary fail on the next load
    await page.route('**/v1/analytics/tables/compliance?*', (r) => r.fulfill({ status: 500, contentType: 'application/problem+json', body: '{"title":"internal","detail":"boom"}' }));
    await page.route('**/v1/analytics/summary?*', (r) => r.fulfill({ status: 500, contentType: 'application/problem+json', body: '{"title":"internal","detail":"summary down"}' }));
    const t = Date.now();
    await page.fill('#filters input[name="to"]', '2024-11-24T03:12:00Z');
    await page.click('#filters button[type="submit"]');
    await waitLoaded(page, t);
    expect(await page.textContent('[data-table="compliance"] .panel-error')).toContain('boom');
    expect(await page.locator('[data-table="compliance"] tbody tr').count()).toBe(0);
    // stale numbers are never shown as current
    expect(await summaryOnPage(page)).toEqual({ hostsTracked: '–', groupsTracked: '–', openViolations: '–', compliantShare: '–' });
    expect(await page.textContent('#period')).toContain('summary down');
    // the other panels loaded
    for (const name of ['hosts', 'violations', 'trends', 'open-by-rule', 'host-compliance']) {
      expect(await page.getAttribute(`[data-table="${name}"]`, 'data-state'), name).toBe('loaded');
    }
    expect(await page.locator('[data-table="hosts"] tbody tr').count()).toBe(DEMO.hosts);
    expect(await page.textContent('#status')).toContain('could not load');
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard-panel-failed.png' });
    await page.unrouteAll();
  });

  it('issue 21 #1: From/To filters answer on every panel, with the open violations as of To from the fold', async () => {
    const events = await readAll(store);
    const times = events.map((r) => BigInt(r.event.time)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const from = times[0]!;
    const to = times[Math.floor(times.length / 2)]!;
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    const all = [...findingsOf(state).open, ...findingsOf(state).closed];
    const openAtTo = all.filter((v) => BigInt(v.opened.timeNs) <= to && (v.closed === undefined || BigInt(v.closed.timeNs) > to)).length;
    const iso = (ns: bigint) => `${new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
    await page.goto(`${base}/dashboard`);
    await waitLoaded(page, 0);
    await page.fill('#filters input[name="from"]', iso(from));
    await page.fill('#filters input[name="to"]', iso(to));
    const t = Date.now();
    await page.click('#filters button[type="submit"]');
    await waitLoaded(page, t);
    expect(await page.locator('[data-state="failed"]').count()).toBe(0);
    expect(await page.textContent('#openViolations')).toBe(String(openAtTo));
    expect(await page.textContent('#compliantShare')).toBe(independentShare(events, state, { toNs: to }));
    expect(await page.textContent('#period')).toContain(formatTimeNs(to));
    await shot(page, 'filter-from-to');
  });

  it('issue 21 #4: violations page with a total ("1–7 of N"), next page, and a CSV with every row', async () => {
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    const total = findingsOf(state).open.length + findingsOf(state).closed.length;
    expect(total).toBeGreaterThan(7);
    await page.goto(`${base}/dashboard?pageSize=7`);
    await waitLoaded(page, 0);
    const count = page.locator('[data-table="violations"] .tools span');
    expect(await count.textContent()).toBe(`1–7 of ${total}`);
    expect(await page.locator('[data-table="violations"] tbody tr').count()).toBe(7);
    await page.click('[data-table="violations"] button[data-page="next"]');
    await page.waitForFunction(`document.querySelector('[data-table="violations"] .tools span')?.textContent === '8–14 of ${total}'`);
    await page.locator('[data-table="violations"]').scrollIntoViewIfNeeded();
    await shot(page, 'paging');
    const res = await fetch(`${base}/v1/analytics/tables/violations?format=csv&limit=7`);
    const lines = (await res.text()).trim().split('\n');
    expect(lines.length).toBe(1 + total);
    expect(lines[0]).toContain('"violation"');
    const json = (await (await fetch(`${base}/v1/analytics/tables/violations?limit=7&offset=7`)).json()) as { rows: unknown[]; total: number; offset: number };
    expect(json).toMatchObject({ total, offset: 7 });
    expect(json.rows).toHaveLength(7);
  });

  it('issue 21 #4: open-only, readable durations and yes/no, and hosts with open-since and rules', async () => {
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    const open = findingsOf(state).open;
    await page.goto(`${base}/dashboard`);
    await waitLoaded(page, 0);
    await page.check('#filters input[name="open"]');
    const t = Date.now();
    await page.click('#filters button[type="submit"]');
    await waitLoaded(page, t);
    expect(new URL(page.url()).searchParams.get('open')).toBe('1');
    await shot(page, 'filter-open-only');
    expect(await page.getAttribute('[data-table="violations"] .tools span', 'data-total')).toBe(String(open.length));
    const headers = await page.locator('[data-table="violations"] thead th').allTextContents();
    expect(headers).toContain('violation');
    expect(headers).not.toContain('duration ns');
    expect(headers).not.toContain('violation key');
    const openCells = await page.locator('[data-table="violations"] tbody tr td:nth-child(' + String(headers.indexOf('open') + 1) + ')').allTextContents();
    expect(new Set(openCells)).toEqual(new Set(['yes']));
    const hostHeaders = await page.locator('[data-table="hosts"] thead th').allTextContents();
    expect(hostHeaders).toEqual(expect.arrayContaining(['open since utc', 'open rules']));
    const closed = await (await fetch(`${base}/v1/analytics/tables/violations?limit=100000`)).json() as { rows: { duration: string; open: string; opened_utc: string; opened_ns: string }[] };
    for (const r of closed.rows) {
      expect(r.open).toMatch(/^(yes|no)$/);
      if (r.open === 'no') expect(r.duration).toMatch(/^\d+(\.\d+)? (ns|µs|ms|s|min|h|d)$/);
      // the one time format (the CLI's formatTimeNs), to the ns
      expect(r.opened_utc).toBe(formatTimeNs(BigInt(r.opened_ns)));
    }
  });

  it('issue 21 #2: a misspelt host or an unknown rule gets a warning and "no data", never an all-green page', async () => {
    await page.goto(`${base}/dashboard?host=demo-gpu-l&rule=two-ownres`);
    await waitLoaded(page, 0);
    expect(await page.isVisible('#warnings')).toBe(true);
    const w = (await page.textContent('#warnings')) ?? '';
    expect(w).toContain('no host named "demo-gpu-l"');
    expect(w).toContain('no rule named "two-ownres"');
    expect(await page.textContent('#compliantShare')).toBe('no data');
    expect(await page.textContent('#complianceDetail')).toBe('no data in this scope');
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard-unknown-filter.png' });
  });

  it('issue 21 #4: the period picker sets a relative period (last 24 h) in the URL and the page echoes the resolved UTC period', async () => {
    await page.goto(`${base}/dashboard`);
    await waitLoaded(page, 0);
    const t = Date.now();
    await page.selectOption('#asOf', '-24h');
    await waitLoaded(page, t);
    expect(new URL(page.url()).searchParams.get('from')).toBe('-24h');
    await shot(page, 'time-picker');
    // the demo fleet is dated 2024: nothing in the last 24 hours
    expect(await page.textContent('#compliantShare')).toBe('no data');
    expect(await page.textContent('#period')).toMatch(/^period \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z → /);
    const bare = await fetch(`${base}/v1/analytics/summary?from=2024-11-24`);
    expect(bare.status).toBe(200);
  });

  it('issue 21 #4: auto-refresh reloads the page’s figures by itself', async () => {
    await page.goto(`${base}/dashboard?refresh=1`);
    await waitLoaded(page, 0);
    const first = Number(await page.getAttribute('#status', 'data-loaded'));
    await waitLoaded(page, first);
    await page.selectOption('#autoRefresh', '');
    expect(new URL(page.url()).searchParams.get('refresh')).toBeNull();
  });

  it('issue 21 #4: "Load demo fleet" refused for want of a token says so, naming the admin role', async () => {
    await page.route('**/v1/admin/demo-fleet', (r) => r.fulfill({ status: 401, contentType: 'application/problem+json', body: '{"title":"unauthorized"}' }));
    await page.goto(`${base}/dashboard`);
    await waitLoaded(page, 0);
    await page.click('#loadDemo');
    await page.waitForFunction(`document.querySelector('#demoStatus')?.textContent?.includes('failed')`);
    const text = (await page.textContent('#demoStatus')) ?? '';
    expect(text).toContain('admin role');
    await shot(page, 'demo-load-refused');
    expect(text).not.toContain('read role');
    expect(await page.isVisible('#auth')).toBe(true);
    await page.unrouteAll();
  });
});
