import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createEventBuilder } from '../../../../schemas/index.js';
import { createAnalyticsClient } from '../../analytics/clickhouseClient.js';
import { chdbAvailability } from '../../analytics/testing/chdbAvailability.js';
import { engineError, faultyClient } from '../../analytics/testing/faultyClient.js';
import { createAnalyticsExtension } from '../../extensions.js';
import { startTestService, type TestService } from '../../testing/service.js';
import { describeWithEngine } from '../../../shared/testing/engines.js';

describeWithEngine('chdb', chdbAvailability(), 'Service > analytics sink health (readiness, metrics, status for the dashboard banner)', () => {
  let dir: string;
  let svc: TestService;
  let full = false;
  const b = createEventBuilder({ host: 'disk' });
  const append = (n: number) => svc.store.appendToStream('host-disk', Array.from({ length: n }, () => b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })));
  const sinkUp = async (): Promise<string | undefined> => (await (await svc.call('/metrics', { as: 'read' })).text()).match(/^iommutrail_analytics_sink_up (\d)/m)?.[1];
  const status = async () => (await (await svc.call('/v1/analytics/status', { as: 'read' })).json()) as { state: string; writing: boolean; position: string; lastError: string | null };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-sinkhealth-'));
    const ac = createAnalyticsClient({ target: { kind: 'embedded', path: join(dir, 'clickhouse') } });
    const client = faultyClient(ac, () => (full ? engineError('243', 'Cannot reserve 1.00 MiB, not enough space') : undefined));
    svc = await startTestService({}, async (core) => [await createAnalyticsExtension(core, { client, retry: { initialMs: 5, maxMs: 40 } })]);
  });
  afterAll(async () => {
    await svc?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hardening #8: a sink that cannot write makes /readyz 503 with the reason, the metric 0 and the status say so; it recovers by itself', async () => {
    await append(50);
    const head1 = (await svc.store.headPosition()).toString();
    await vi.waitFor(async () => expect((await status()).position).toBe(head1), { timeout: 60_000, interval: 20 });
    expect((await svc.call('/readyz', { as: 'none' })).status).toBe(200);
    expect(await sinkUp()).toBe('1');

    full = true;
    await append(50);
    await vi.waitFor(async () => expect((await svc.call('/readyz', { as: 'none' })).status).toBe(503), { timeout: 30_000, interval: 20 });
    // the open /readyz carries a stable code; the engine's text is in the authenticated status below
    expect(await (await svc.call('/readyz', { as: 'none' })).json()).toEqual({ status: 'not ready', component: 'analytics', reason: 'sink_retrying' });
    expect(await sinkUp()).toBe('0');
    expect(await status()).toMatchObject({ state: 'retrying', writing: false, position: head1, lastError: expect.stringContaining('not enough space') as unknown });
    expect(await (await svc.call('/metrics', { as: 'read' })).text()).toMatch(/^iommutrail_analytics_sink_failures_total [1-9]/m);

    full = false;
    const head2 = (await svc.store.headPosition()).toString();
    await vi.waitFor(async () => expect((await status()).position).toBe(head2), { timeout: 30_000, interval: 20 });
    expect((await svc.call('/readyz', { as: 'none' })).status).toBe(200);
    expect(await sinkUp()).toBe('1');
    expect(await status()).toMatchObject({ state: 'ok', writing: true, lastError: null });
  });
});
