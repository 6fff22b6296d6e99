import { Router } from 'express';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateHistory } from '../../../projections/testing/generateHistory.js';
import { createEventBuilder } from '../../../schemas/index.js';
import { TEST_TOKENS, startTestService, type TestService } from '../testing/service.js';

/** every line the service logged, as written */
const captureLog = () => {
  const lines: string[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(line) }, text: () => lines.join('') };
};

describe('hardening #9: secrets in logs', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.dispose();
    svc = undefined;
  });

  it('hardening #9: no token (valid, invalid, malformed, in a cookie or a query string, on a 5xx path) reaches a log line, a metric or an answer', async () => {
    // given a service logging at the default level, and a route that fails with the caller's header in its error
    const log = captureLog();
    const failing = Router().get('/v1/fails', (req) => {
      throw Object.assign(new Error(`upstream refused credentials ${String(req.headers.authorization)}`), { headers: { ...req.headers } });
    });
    svc = await startTestService({}, () => Promise.resolve([{ name: 'failing', routers: [failing] }]), { logTo: log.stream });
    const s = svc;
    const secrets = {
      invalid: 'not-a-real-token-7f3a9c',
      twoWords: 'malformed-secret-b81e',
      otherScheme: 'malformed-secret-c22d',
      basic: Buffer.from('user:hunter2-secret').toString('base64'),
      naked: 'naked-secret-d93f',
      cookie: 'cookie-secret-a1b2',
      query: 'query-secret-e04a',
      accessToken: 'query-secret-f15b',
    };
    const answers: string[] = [];
    const raw = async (pathname: string, headers: Record<string, string>) => {
      const res = await fetch(`${s.url}${pathname}`, { headers });
      answers.push(JSON.stringify([...res.headers]), await res.text());
      return res.status;
    };

    // when it is called with every kind of credential, good and bad
    for (const role of ['admin', 'read', 'ingest'] as const) expect(await raw('/v1/hosts', { authorization: `Bearer ${TEST_TOKENS[role]}` })).not.toBe(500);
    expect(await raw('/v1/hosts', { authorization: `Bearer ${secrets.invalid}` })).toBe(401);
    expect(await raw('/v1/hosts', { authorization: `Bearer two ${secrets.twoWords}` })).toBe(401);
    expect(await raw('/v1/hosts', { authorization: `Token ${secrets.otherScheme}` })).toBe(401);
    expect(await raw('/v1/hosts', { authorization: `Basic ${secrets.basic}` })).toBe(401);
    expect(await raw('/v1/hosts', { authorization: secrets.naked })).toBe(401);
    expect(await raw('/v1/hosts', { authorization: `Bearer ${TEST_TOKENS.read}`, cookie: `session=${secrets.cookie}` })).toBe(200);
    expect(await raw(`/v1/hosts?token=${secrets.query}&access_token=${secrets.accessToken}`, { authorization: `Bearer ${TEST_TOKENS.read}` })).toBe(400);
    expect(await raw(`/nowhere?token=${secrets.query}`, {})).toBe(404);
    expect(await raw('/v1/fails', { authorization: `Bearer ${TEST_TOKENS.admin}` })).toBe(500);
    expect(await raw('/v1/fails', { authorization: `Bearer ${secrets.invalid}` })).toBe(401);
    expect(await raw('/metrics', { authorization: `Bearer ${TEST_TOKENS.admin}` })).toBe(200);
    await s.dispose();
    svc = undefined;

    // then the log has the request lines and the failure, and no token string anywhere in it or in any answer
    const text = log.text();
    expect(text).toContain('"url":"/v1/hosts"');
    expect(text).toContain('unhandled error');
    for (const token of [...Object.values(TEST_TOKENS), ...Object.values(secrets)]) {
      expect(text, `log contains ${token}`).not.toContain(token);
      expect(answers.join('\n'), `an answer contains ${token}`).not.toContain(token);
    }
    expect(text).toContain('[redacted]');
  });
});

describe('hardening #15: readiness', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await svc?.dispose();
    svc = undefined;
  });

  it('hardening #15: /readyz names the failing component and a stable reason code, never the exception text (which is logged instead)', async () => {
    // given a service whose store fails with an internal message
    const log = captureLog();
    svc = await startTestService({}, undefined, { logTo: log.stream });
    expect((await svc.call('/readyz', { as: 'none' })).status).toBe(200);
    vi.spyOn(svc.store, 'headPosition').mockRejectedValue(new Error('SQLITE_IOERR: disk I/O error reading /srv/internal/events.db'));

    // when a probe asks
    const res = await svc.call('/readyz', { as: 'none' });

    // then 503 with the component and a code, and the raw text only in the log
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ status: 'not ready', component: 'event-store', reason: 'store_unavailable' });
    expect(text).not.toContain('SQLITE_IOERR');
    expect(text).not.toContain('/srv/internal');
    vi.restoreAllMocks();
    await svc.dispose();
    svc = undefined;
    expect(log.text()).toContain('SQLITE_IOERR: disk I/O error');
  });
});

describe('hardening #6: heavy reads cannot starve the service', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.dispose();
    svc = undefined;
  });

  it('hardening #6: replays beyond the admission limit get 503 with Retry-After and a problem body, and /healthz still answers', async () => {
    // given a host with a long history and a limit of one replay running and one waiting
    svc = await startTestService({ http: { heavyConcurrency: 1, heavyQueue: 1 } });
    const s = svc;
    const events = generateHistory({ events: 8_000, hosts: 1 });
    for (let i = 0; i < events.length; i += 2_000) {
      const res = await s.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events.slice(i, i + 2_000)) });
      expect(res.status).toBe(200);
    }
    const host = events[0]!.host;
    const replay = async () => {
      const res = await s.call(`/v1/hosts/${host}/replay?variant=upstream`, { method: 'POST', as: 'read' });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), type: res.headers.get('content-type'), body: (await res.json()) as { title?: string; summary?: unknown } };
    };

    // when bursts of concurrent replays arrive (a few, in case one burst happens not to overlap), with a health check amid each
    const answers: Awaited<ReturnType<typeof replay>>[] = [];
    for (let burst = 0; burst < 5 && !answers.some((a) => a.status === 503); burst++) {
      const replays = Array.from({ length: 8 }, replay);
      const health = await fetch(`${s.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      answers.push(...(await Promise.all(replays)));
    }

    // then the surplus is refused at once, politely, and the admitted ones are answered in full
    const refused = answers.filter((a) => a.status === 503);
    expect(refused.length).toBeGreaterThan(0);
    for (const a of refused) {
      expect(a.retryAfter).toMatch(/^\d+$/);
      expect(a.type).toMatch(/^application\/problem\+json/);
      expect(a.body.title).toBe('service busy');
    }
    const served = answers.filter((a) => a.status === 200);
    expect(served.length).toBeGreaterThanOrEqual(2);
    for (const a of served) expect(a.body.summary).toBeDefined();
    expect(answers.length).toBe(refused.length + served.length);
    const metrics = await (await s.call('/metrics', { as: 'read' })).text();
    expect(metrics).toMatch(/^iommutrail_http_heavy_rejected_total [1-9]/m);
  });
});

describe('hardening #5: time travel over a host clock that went back', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.dispose();
    svc = undefined;
  });

  it('hardening #5: ?at= after a future-dated event answers with every event dated up to T, and names the clock step it depends on', async () => {
    // given 400 events of one host, the 100th dated 2100, the next one's clock back in 2026 (the builder goes on from there)
    svc = await startTestService({});
    const b = createEventBuilder({ host: 'clock-h', startNs: 1_767_225_600_000_000_000n });
    const events = Array.from({ length: 400 }, (_, i) =>
      b.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' }, i === 99 ? { atNs: 4_102_444_800_000_000_000n } : i === 100 ? { atNs: 1_767_225_600_000_000_000n + 100_000_000n } : {}),
    );
    const posted = await svc.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
    expect(posted.status).toBe(200);

    // when the host is asked for as of 2099-12-31 and as of the 50th event
    const at = async (t: string) => (await (await svc!.call(`/v1/hosts/clock-h/state?at=${t}`, { as: 'read' })).json()) as { state: { eventCount: number }; clockNotMonotonic?: { event: { eventId: string } }[] };
    const late = await at("2099-12-31T00:00:00Z");
    const early = await at(BigInt(events[49]!.time).toString());

    // then the later answer holds all 400 events and names the event whose time went back; the early one is plain
    expect(late.state.eventCount).toBe(400);
    expect(late.clockNotMonotonic?.map((c) => c.event.eventId)).toEqual([events[100]!.id]);
    expect(early.state.eventCount).toBe(50);
    expect(early.clockNotMonotonic).toBeUndefined();
  });

  it('hardening #5: a device timeline up to T after a future-dated event lists the changes recorded after it and dated up to T', async () => {
    // given a device's history whose clock jumps to 2100 at the second event and comes back for the rest
    svc = await startTestService({});
    const b = createEventBuilder({ host: 'clock-t', startNs: 1_767_225_600_000_000_000n, stepNs: 1_000_000_000n });
    const events = [
      b.raw('TopologySnapshotTaken', {
        capabilities: { iommu: true, interruptRemapping: true },
        groups: [{ group: 7, devices: ['0000:01:00.0'] }],
        devices: [{ device: '0000:01:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'igb', group: 7 }],
      }),
      b.raw('DriverUnbound', { device: '0000:01:00.0', driver: 'igb' }, { atNs: 4_102_444_800_000_000_000n }),
      b.raw('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }, { atNs: 1_767_225_700_000_000_000n }),
    ];
    const posted = await svc.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
    expect(posted.status).toBe(200);

    // when the device's timeline is asked up to 2026-12-31
    const res = await svc.call('/v1/hosts/clock-t/devices/0000:01:00.0/timeline?to=2026-12-31T00:00:00Z', { as: 'read' });
    const body = (await res.json()) as { items: { event: { seq: number } }[] };

    // then it holds the unbind dated 2100 (recorded before the clock came back) and the bind after it
    expect(res.status).toBe(200);
    expect(body.items.map((i) => i.event.seq)).toEqual([1, 2, 3]);
  });
});

describe('hardening #1: the reorder buffer through the API', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.dispose();
    svc = undefined;
  });

  it('hardening #1: events held behind a gap are named by seq and id in the host state, and applied once the gap fills', async () => {
    // given seq 1 and 3 of a host (seq 2 late)
    svc = await startTestService({});
    const b = createEventBuilder({ host: 'gap-h' });
    const events = [1, 2, 3].map(() => b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }));
    const post = (list: typeof events) => svc!.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': 'application/json' }, body: JSON.stringify(list) });
    expect((await post([events[0]!, events[2]!])).status).toBe(200);
    const state = async () => ((await (await svc!.call('/v1/hosts/gap-h/state', { as: 'read' })).json()) as { state: { held: unknown[]; eventCount: number } }).state;

    // when the host is read, then seq 3 is held and named without its body
    await vi.waitFor(async () => expect((await state()).held).toEqual([{ seq: 3, id: events[2]!.id, position: expect.any(String) as unknown }]), { timeout: 10_000, interval: 50 });

    // when seq 2 arrives, then nothing is held and all three are applied
    expect((await post([events[1]!])).status).toBe(200);
    await vi.waitFor(async () => expect(await state()).toMatchObject({ held: [], eventCount: 3 }), { timeout: 10_000, interval: 50 });
  });
});
