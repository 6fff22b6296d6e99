import express from 'express';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createFleetProjection, foldEventsAsync, type FleetState } from '../../../projections/index.js';
import { createAnalyticsProjector, type AnalyticsProjector, type AnalyticsProjectorStatus } from '../../analytics/analyticsProjector.js';
import { createAnalyticsQueries } from '../../analytics/analyticsQueries.js';
import { getClickHouseAnalyticsSink } from '../../analytics/clickhouseAnalyticsSink.js';
import { createAnalyticsClient, type AnalyticsClient } from '../../analytics/clickhouseClient.js';
import { loadDemoFleet } from '../../analytics/demoFleet.js';
import { migrate } from '../../analytics/migrate.js';
import { chdbAvailability } from '../../analytics/testing/chdbAvailability.js';
import { getSqliteEventStore, type SqliteEventStore } from '../../eventStore/sqlite/sqliteEventStore.js';
import { describeWithEngine } from '../../testing/engines.js';
import { problemMiddleware } from '../problem.js';
import { createDashboardRouter } from './dashboardRouter.js';

const CHROMIUM = '/usr/bin/chromium';
const chromiumAvailability = (): { available: boolean; reason?: string } => {
  if (!existsSync(CHROMIUM)) return { available: false, reason: `${CHROMIUM} missing (run deploy/local/install-test-engines.sh)` };
  return chdbAvailability();
};

const DEMO = { events: 4000, hosts: 6 } as const;

/** the numbers the page must show, from the pure fold over the store (independent of the SQL) */
const expectedSummary = (state: FleetState, host?: string) => {
  const hosts = Object.keys(state.hosts).filter((h) => host === undefined || h === host);
  const open = Object.values(state.violations.open).filter((v) => host === undefined || v.host === host);
  const hostsWithOpen = new Set(open.map((v) => v.host)).size;
  return {
    hostsTracked: String(hosts.length),
    groupsTracked: String(hosts.reduce((n, h) => n + Object.keys(state.hosts[h]?.groups ?? {}).length, 0)),
    openViolations: String(open.length),
    compliantShare: `${(((hosts.length - hostsWithOpen) / Math.max(1, hosts.length)) * 100).toFixed(1)}%`,
  };
};

const summaryOnPage = async (page: Page) => ({
  hostsTracked: await page.textContent('#hostsTracked'),
  groupsTracked: await page.textContent('#groupsTracked'),
  openViolations: await page.textContent('#openViolations'),
  compliantShare: await page.textContent('#compliantShare'),
});

// evaluated in the page, where `document` exists (the repo's tsconfig has no DOM lib)
const PAGE_LOADED_AFTER = `(t) => Number(document.querySelector('#status')?.getAttribute('data-loaded') ?? 0) > t`;
const DEMO_APPENDED = `() => document.querySelector('#status')?.textContent?.includes('events appended')`;

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
    const want = expectedSummary(state);
    expect(Number(want.openViolations)).toBeGreaterThan(0);
    expect(await summaryOnPage(page)).toEqual(want);
    expect(await page.locator('[data-table="hosts"] tbody tr').count()).toBe(Number(want.hostsTracked));
  });

  it('given the loaded fleet, when filtering on one host, then the numbers change and the URL can be shared', async () => {
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    const host = Object.values(state.violations.open)[0]?.host ?? Object.keys(state.hosts)[0]!;
    await page.fill('#filters input[name="host"]', host);
    const t = Date.now();
    await page.click('#filters button[type="submit"]');
    await waitLoaded(page, t);
    expect(await summaryOnPage(page)).toEqual(expectedSummary(state, host));
    expect(new URL(page.url()).searchParams.get('host')).toBe(host);

    // the same link opened fresh shows the same view
    const other = await context.newPage();
    await other.goto(page.url());
    await waitLoaded(other, 0);
    expect(await summaryOnPage(other)).toEqual(expectedSummary(state, host));
    await other.close();
  });

  it('given a violation, when clicking it, then the events behind it are listed', async () => {
    const firstRow = page.locator('[data-table="violations"] tbody tr').first();
    const rowText = (await firstRow.textContent()) ?? '';
    await firstRow.click();
    await page.waitForSelector('#violationPanel:not([hidden]) [data-table="violation-events"] tbody tr');
    const key = new URL(page.url()).searchParams.get('violation');
    expect(key).not.toBeNull();
    expect(rowText).toContain(key!);
    const events = await page.locator('[data-table="violation-events"] tbody tr').allTextContents();
    const state = await foldEventsAsync(createFleetProjection(), store.readAll());
    const all = [...Object.values(state.violations.open), ...state.violations.closed];
    const v = all.find((x) => `${x.key}@${x.opened.eventId}` === key);
    expect(v).toBeDefined();
    expect(events.some((e) => e.includes(v!.opened.eventId))).toBe(true);
    expect(events.length).toBe(new Set([v!.opened.eventId, ...v!.evidence, ...(v!.closed ? [v!.closed.eventId] : [])]).size);
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
    const bad = await fetch(`${base}/v1/analytics/summary?from=yesterday`);
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
});
