import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../../schemas/index.js';
import { startTestService, type TestService } from '../testing/service.js';

const T0 = 1_763_870_000_000_000_000n;

interface Answer {
  accepted: number;
  duplicate: number;
  rejected: number;
  results: { status: string; errors?: { path: string; message: string }[]; conflict?: Record<string, unknown> }[];
}

const post = (svc: TestService, body: string, contentType = 'application/json') =>
  svc.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': contentType }, body });

const storedEvents = async (svc: TestService, host: string): Promise<number | undefined> => {
  const hosts = (await (await svc.call('/v1/hosts', { as: 'read' })).json()) as { items: { host: string; events: number }[] };
  return hosts.items.find((h) => h.host === host)?.events ?? 0;
};

describe('ingest hardening over HTTP', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
  });
  afterAll(async () => {
    await svc.dispose();
  });

  it('hardening #2: a time above INT64_MAX is rejected by name and its neighbours are stored (207, not 500)', async () => {
    const a = createEventBuilder({ host: 'nd-a', source: 'collector', startNs: T0 });
    const b = createEventBuilder({ host: 'nd-b', source: 'collector', startNs: T0 });
    const a1 = a.raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } });
    const a2 = { ...a.raw('IommufdOpened', { ictx: '1:2', outcome: { ok: true } }), time: '9223372036854775808' };
    const a3 = a.raw('IommufdClosed', { ictx: '1:1' });
    const b1 = b.raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } });
    const res = await post(svc, [a1, a2, a3, b1].map((e) => JSON.stringify(e)).join('\n'), 'application/x-ndjson');
    expect(res.status).toBe(207);
    const body = (await res.json()) as Answer;
    expect(body).toMatchObject({ accepted: 3, rejected: 1 });
    expect(body.results[1]!.status).toBe('rejected');
    expect(body.results[1]!.errors![0]!.path).toBe('events[1].time');
    expect(body.results[1]!.errors![0]!.message).toMatch(/out of range.*9223372036854775807/);
    expect(await storedEvents(svc, 'nd-a')).toBe(2);
    expect(await storedEvents(svc, 'nd-b')).toBe(1);
  });

  it('hardening #2: INT64_MAX itself is a valid time and is stored', async () => {
    const a = createEventBuilder({ host: 'nd-max', source: 'collector', startNs: 9_223_372_036_854_775_807n });
    const res = await post(svc, JSON.stringify(a.raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } })));
    expect(res.status).toBe(200);
    expect(await storedEvents(svc, 'nd-max')).toBe(1);
  });

  it('hardening #12: an event id re-sent in upper case is the same idempotency key: a duplicate, not stored twice', async () => {
    const a = createEventBuilder({ host: 'idcase', source: 'collector', startNs: T0 });
    const e = a.raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } });
    expect((await post(svc, JSON.stringify(e))).status).toBe(200);
    const res = await post(svc, JSON.stringify({ ...e, id: String(e.id).toUpperCase() }));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: 0, duplicate: 1 });
    expect(await storedEvents(svc, 'idcase')).toBe(1);
  });

  it('hardening #12: a re-sent id with other content is a conflict naming the stored event (409 alone, 207 beside a stored event), never a duplicate', async () => {
    const a = createEventBuilder({ host: 'idconflict', source: 'collector', startNs: T0 });
    const e1 = a.raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } });
    const first = (await (await post(svc, JSON.stringify(e1))).json()) as Answer;
    expect(first.accepted).toBe(1);
    const changed = { ...e1, seq: 7, data: { ictx: '9:9', outcome: { ok: true } } };
    const alone = await post(svc, JSON.stringify(changed));
    expect(alone.status).toBe(409);
    const body = (await alone.json()) as Answer & { conflict: number };
    expect(body).toMatchObject({ accepted: 0, duplicate: 0, conflict: 1, rejected: 0 });
    expect(body.results[0]).toMatchObject({ status: 'conflict', conflict: { id: e1.id, host: 'idconflict', seq: 1, stream: 'host-idconflict', revision: '0' } });
    expect(body.results[0]!.conflict!.position).toMatch(/^[1-9][0-9]*$/);
    expect(body.results[0]!.errors![0]!.path).toBe('events[0].id');
    expect(body.results[0]!.errors![0]!.message).toMatch(/already stored with other content \(host idconflict seq 1/);
    const e2 = a.raw('IommufdClosed', { ictx: '1:1' });
    const mixed = await post(svc, [changed, e2].map((e) => JSON.stringify(e)).join('\n'), 'application/x-ndjson');
    expect(mixed.status).toBe(207);
    expect(await mixed.json()).toMatchObject({ accepted: 1, conflict: 1 });
    expect(await storedEvents(svc, 'idconflict')).toBe(2);
    // the true retry of the stored event is still a plain duplicate
    expect(await (await post(svc, JSON.stringify(e1))).json()).toMatchObject({ duplicate: 1, conflict: 0 });
    // and the two conflicts are counted apart from duplicates
    const metrics = await (await svc.call('/metrics', { as: 'read' })).text();
    expect(metrics).toMatch(/^iommutrail_ingest_conflicts_total 2$/m);
    expect(metrics).toMatch(/^iommutrail_process_cpu_seconds_total /m);
    expect(metrics).not.toMatch(/process_process_/);
  });
});
