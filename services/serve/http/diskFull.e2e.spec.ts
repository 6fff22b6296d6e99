import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { createEventBuilder } from '../../../schemas/index.js';
import { getSqliteEventStore } from '../../shared/eventStore/sqlite/sqliteEventStore.js';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { startTestService, type TestService } from '../testing/service.js';
import { mountTmpfs, tmpfsAvailability, type SmallFilesystem } from '../../shared/testing/tmpfs.js';

let fs: SmallFilesystem | undefined;
let svc: TestService | undefined;

const post = (s: TestService, events: unknown[]) =>
  s.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
const events = (n: number, from = 0) => {
  const b = createEventBuilder({ host: 'full', source: 'collector', firstSeq: from + 1 });
  return Array.from({ length: n }, (_, i) => b.raw('IommufdOpened', { ictx: `1:${from + i}`, outcome: { ok: true } }, { labels: ['x'.repeat(100)] }));
};

describeWithEngine('tmpfs', tmpfsAvailability(), 'service > disk full', () => {
  afterEach(async () => {
    await svc?.dispose().catch(() => undefined);
    svc = undefined;
    fs?.unmount();
    fs = undefined;
  });

  it('hardening #8: /readyz says not ready while every write fails on a full disk, and ready again once space returns', async () => {
    fs = mountTmpfs(4 * 1024 * 1024);
    svc = await startTestService({ dataDir: fs.dir });
    expect((await post(svc, events(5))).status).toBe(200);
    expect((await svc.call('/readyz', { as: 'none' })).status).toBe(200);
    const giveBack = fs.fill();
    expect((await post(svc, events(300, 5))).status).toBe(503);
    const full = await svc.call('/readyz', { as: 'none' });
    expect(full.status).toBe(503);
    // a stable code in the open answer (the SQLite text goes to the log: hardening #15)
    expect(await full.json()).toEqual({ status: 'not ready', component: 'event-store', reason: 'store_unavailable' });
    giveBack();
    expect((await svc.call('/readyz', { as: 'none' })).status).toBe(200);
    expect((await post(svc, events(5, 5))).status).toBe(200);
  });

  it('hardening #8: a shutdown while the disk is full finishes and closes the store instead of crashing', async () => {
    fs = mountTmpfs(4 * 1024 * 1024);
    svc = await startTestService({ dataDir: fs.dir });
    expect((await post(svc, events(5))).status).toBe(200);
    await svc.live.notify();
    const giveBack = fs.fill();
    expect((await post(svc, events(300, 5))).status).toBe(503);
    const running = svc;
    svc = undefined;
    await expect(running.shutdown('SIGTERM')).resolves.toBeUndefined();
    // the store was closed (its connection released): reopened, it holds exactly what was acknowledged
    giveBack();
    const reopened = getSqliteEventStore({ path: join(fs.dir, 'events.sqlite'), writer: 'inline' });
    try {
      let stored = 0;
      for await (const _ of reopened.readAll()) stored += 1;
      expect(stored).toBe(5);
    } finally {
      await reopened.close();
    }
  });
});
