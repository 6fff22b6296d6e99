import fc from 'fast-check';
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBuilder, type IommuEventInput } from '../../../schemas/index.js';
import { TEST_TOKENS, startTestService, type TestService } from '../testing/service.js';

const T0 = 1_763_870_000_000_000_000n; // 2025-11-23T03:53:20Z
const SECOND = 1_000_000_000n;

/** group 7 (GPU + HDMI audio): audio blocks passthrough, is unbound, GPU bound to fdA and attached (S11) */
const group7History = (host = 'h12'): IommuEventInput[] => {
  const b = createEventBuilder({ host, source: 'collector', startNs: T0, stepNs: SECOND });
  return [
    b.raw('TopologySnapshotTaken', {
      capabilities: { iommu: true, interruptRemapping: true },
      groups: [{ group: 7, devices: ['0000:01:00.0', '0000:01:00.1'] }, { group: 12, devices: ['0000:03:00.0'] }],
      devices: [
        { device: '0000:01:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'vfio-pci', group: 7 },
        { device: '0000:01:00.1', vendorId: '10de', deviceId: '10f8', classCode: '040300', driver: 'snd_hda_intel', group: 7 },
        { device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'igb', group: 12 },
      ],
    }),
    b.raw('IommufdOpened', { ictx: '100:3', outcome: { ok: true } }, { actor: { pid: 100, comm: 'qemu', vm: 'vm-a', tenant: 'blue' } }),
    b.raw('VfioDeviceOpened', { device: '0000:01:00.0', deviceFd: '100:4', cdev: 'vfio0', outcome: { ok: true } }),
    // seq 4 at T0+3s: refused, audio still on snd_hda_intel
    b.raw('VfioDeviceBindIommufdIssued', { device: '0000:01:00.0', deviceFd: '100:4', ictx: '100:3', outcome: { ok: false, errno: 'EPERM' } }),
    b.raw('DriverUnbound', { device: '0000:01:00.1', driver: 'snd_hda_intel' }),
    // seq 6 at T0+5s: bound, group 7 → blocking
    b.raw('VfioDeviceBindIommufdIssued', { device: '0000:01:00.0', deviceFd: '100:4', ictx: '100:3', outcome: { ok: true, devId: 1 } }),
    b.raw('IommufdIoasAllocIssued', { ictx: '100:3', outcome: { ok: true, ioasId: 2 } }),
    // seq 8 at T0+7s: attached to auto hwpt 3
    b.raw('VfioDeviceAttachPtIssued', { device: '0000:01:00.0', deviceFd: '100:4', ptId: 2, outcome: { ok: true, ptId: 3 } }),
  ];
};

const post = (svc: TestService, body: unknown, as: 'admin' | 'ingest' | 'read' | 'none' = 'ingest', contentType = 'application/json') =>
  svc.call('/v1/events', { method: 'POST', as, headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });

const post2 = (svc: TestService, pathname: string) =>
  svc.call(pathname, { method: 'POST', as: 'read', headers: { 'content-type': 'application/json' }, body: '[]' });

describe('service over HTTP', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ http: { bodyLimitBytes: 64 * 1024, maxBatch: 50 }, metrics: { perHost: true } });
  });
  afterAll(async () => {
    await svc.dispose();
  });

  describe('ingest', () => {
    it('given a valid history as a JSON array, when posted, then every event is accepted', async () => {
      const res = await post(svc, group7History());
      expect(res.status).toBe(200);
      const body = (await res.json()) as { accepted: number; results: { status: string }[] };
      expect(body.accepted).toBe(8);
      expect(body.results.every((r) => r.status === 'accepted')).toBe(true);
    });

    it('given the same events again (a client retry), then they are duplicates and nothing is stored twice', async () => {
      const res = await post(svc, group7History());
      const body = (await res.json()) as { accepted: number; duplicate: number };
      expect(res.status).toBe(200);
      expect(body).toMatchObject({ accepted: 0, duplicate: 8 });
      const hosts = (await (await svc.call('/v1/hosts', { as: 'read' })).json()) as { items: { host: string; events: number }[] };
      expect(hosts.items.find((h) => h.host === 'h12')?.events).toBe(8);
    });

    it('given one event as an object, then it is answered as a batch of one', async () => {
      const b = createEventBuilder({ host: 'h13', source: 'api', startNs: T0 });
      const res = await post(svc, b.raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } }));
      expect(res.status).toBe(200);
      expect(((await res.json()) as { accepted: number }).accepted).toBe(1);
    });

    it('given NDJSON with a malformed line and an invalid event, then the good ones are stored and the bad ones named (207)', async () => {
      const b = createEventBuilder({ host: 'h14', source: 'collector', startNs: T0 });
      const good1 = JSON.stringify(b.raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } }));
      const bad = JSON.stringify(b.raw('DriverBound', { device: '1:0.0x', driver: 'vfio-pci' }));
      const good2 = JSON.stringify(b.raw('IommufdClosed', { ictx: '1:1' }));
      const res = await post(svc, [good1, '{"type": oops', bad, good2].join('\n'), 'ingest', 'application/x-ndjson');
      expect(res.status).toBe(207);
      const body = (await res.json()) as { accepted: number; rejected: number; results: { status: string; errors?: { path: string; message: string }[] }[] };
      expect(body).toMatchObject({ accepted: 2, rejected: 2 });
      expect(body.results[1]!.errors![0]!.message).toMatch(/not valid JSON/);
      expect(body.results[2]!.errors![0]).toEqual({ path: 'events[2].data.device', message: 'expected a PCI address like 0000:01:00.0 or an mdev UUID, got "1:0.0x"' });
    });

    it('given only invalid events, then 400 with field-level reasons and nothing stored', async () => {
      const res = await post(svc, [{ type: 'NoSuchEvent' }, { hello: 1 }]);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { results: { errors: { path: string }[] }[] };
      expect(body.results[0]!.errors[0]!.path).toBe('events[0].type');
      expect(body.results[1]!.errors[0]!.path).toBe('events[1].type');
    });

    it('given a body that is not JSON, then 400 problem+json naming the body', async () => {
      const res = await post(svc, '{not json');
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(((await res.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe('body');
    });

    it('given a sequence gap from a host, then the answer warns, and the gap is queryable and counted', async () => {
      const b = createEventBuilder({ host: 'gappy', source: 'collector', startNs: T0 });
      const events = [1, 2, 3, 4, 5].map(() => b.raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } }));
      await post(svc, events.slice(0, 2));
      const res = await post(svc, [events[4]]);
      const body = (await res.json()) as { results: { warnings?: string[] }[] };
      expect(body.results[0]!.warnings![0]).toMatch(/seq 3\.\.4 missing/);
      const seq = (await (await svc.call('/v1/hosts/gappy/sequence', { as: 'read' })).json()) as { gaps: number[][]; maxSeq: number };
      expect(seq).toMatchObject({ maxSeq: 5, gaps: [[3, 4]] });
      await post(svc, [events[2]]); // a late arrival fills part of the gap
      const after = (await (await svc.call('/v1/hosts/gappy/sequence', { as: 'read' })).json()) as { gaps: number[][]; outOfOrder: number };
      expect(after).toMatchObject({ gaps: [[4, 4]], outOfOrder: 1 });
      const metrics = await (await svc.call('/metrics', { as: 'read' })).text();
      expect(metrics).toMatch(/iommutrail_sequence_gaps_total\{host="gappy"\} 1/);
    });
  });

  describe('limits', () => {
    it('rejects a body over the size limit with 413', async () => {
      const res = await post(svc, `[${'"x",'.repeat(20_000)}"x"]`);
      expect(res.status).toBe(413);
    });

    it('rejects a batch over the event limit with 413', async () => {
      const b = createEventBuilder({ host: 'big', source: 'collector', startNs: T0 });
      const res = await post(svc, Array.from({ length: 51 }, () => b.raw('IommufdClosed', { ictx: '1:1' })));
      expect(res.status).toBe(413);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/limit is 50/);
    });
  });

  describe('auth', () => {
    it('leaves only health endpoints open', async () => {
      expect((await svc.call('/healthz', { as: 'none' })).status).toBe(200);
      expect((await svc.call('/readyz', { as: 'none' })).status).toBe(200);
      expect((await svc.call('/v1/hosts', { as: 'none' })).status).toBe(401);
      expect((await svc.call('/metrics', { as: 'none' })).status).toBe(401);
    });

    it('judges the role on the path as express routes it (case, trailing slash)', async () => {
      for (const p of ['/v1/Events', '/v1/events/', '/v1/EVENTS/']) expect((await post2(svc, p)).status, p).toBe(403);
      expect((await svc.call('/v1/Admin/demo-fleet', { method: 'POST', as: 'read' })).status).toBe(403);
    });

    it('answers 401 for an unknown token and 403 for the wrong role', async () => {
      const res = await fetch(`${svc.url}/v1/hosts`, { headers: { authorization: 'Bearer nope' } });
      expect(res.status).toBe(401);
      expect((await post(svc, [], 'read')).status).toBe(403);
      expect((await svc.call('/v1/hosts', { as: 'ingest' })).status).toBe(403);
      expect((await svc.call('/v1/hosts', { as: 'admin' })).status).toBe(200);
    });
  });

  describe('forensic queries', () => {
    const at = (ns: bigint) => ns.toString();

    it('answers who owned group 7 as of a time, before and after the bind', async () => {
      const before = (await (await svc.call(`/v1/hosts/h12/groups/7?at=${at(T0 + 3n * SECOND)}`, { as: 'read' })).json()) as { group: { userOwner: unknown; domain: { kind: string } }; openViolations: { ruleId: string }[] };
      expect(before.group.userOwner).toBeNull();
      expect(before.group.domain.kind).toBe('default');
      expect(before.openViolations.map((v) => v.ruleId)).toContain('passthrough-refused-not-viable');
      const after = (await (await svc.call(`/v1/hosts/h12/groups/7?at=${at(T0 + 7n * SECOND)}`, { as: 'read' })).json()) as { group: { userOwner: { handle: string }; domain: { kind: string; hwptId: number } } };
      expect(after.group.userOwner).toMatchObject({ kind: 'iommufd', handle: '100:3' });
      expect(after.group.domain).toMatchObject({ kind: 'hwpt', hwptId: 3 });
    });

    it('accepts ISO-8601 times and positions for ?at=', async () => {
      const iso = new Date(Number((T0 + 5n * SECOND) / 1_000_000n)).toISOString();
      const r1 = (await (await svc.call(`/v1/hosts/h12/groups/7?at=${iso}`, { as: 'read' })).json()) as { group: { domain: { kind: string } } };
      expect(r1.group.domain.kind).toBe('blocking');
      const r2 = (await (await svc.call('/v1/hosts/h12/groups/7?position=1', { as: 'read' })).json()) as { group: { members: string[]; userOwner: unknown } };
      expect(r2.group.userOwner).toBeNull();
    });

    it('shows that the never-attached audio function is translated by the group hwpt', async () => {
      const res = (await (await svc.call('/v1/hosts/h12/devices/01:00.1', { as: 'read' })).json()) as { device: { translatedBy: { kind: string; hwptId: number } } };
      expect(res.device.translatedBy).toMatchObject({ kind: 'hwpt', hwptId: 3 });
    });

    it('names a bad query parameter', async () => {
      const res = await svc.call('/v1/hosts/h12/groups/7?at=noon', { as: 'read' });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe('query.at');
      expect((await svc.call('/v1/hosts/h12/groups/seven', { as: 'read' })).status).toBe(400);
      expect((await svc.call('/v1/hosts/h12/groups/99', { as: 'read' })).status).toBe(404);
      expect((await svc.call('/v1/hosts/nohost/state', { as: 'read' })).status).toBe(404);
    });

    it('answers out-of-range positions and times, and forged cursors, with 400 naming the parameter', async () => {
      for (const [q, param] of [
        ['/v1/hosts/h12/groups/7?position=99999999999999999999', 'query.position'],
        ['/v1/hosts/h12/groups/7?at=99999999999999999999', 'query.at'],
        ['/v1/hosts/h12/groups/7/timeline?from=99999999999999999999', 'query.from'],
        [`/v1/hosts/h12/groups/7/timeline?cursor=${Buffer.from('"abc"').toString('base64url')}`, 'query.cursor'],
      ] as const) {
        const res = await svc.call(q, { as: 'read' });
        expect(res.status, q).toBe(400);
        expect(((await res.json()) as { errors: { path: string }[] }).errors[0]!.path, q).toBe(param);
      }
    });

    it('gives a group timeline with the change each event made, paginated in stream order', async () => {
      const page1 = (await (await svc.call('/v1/hosts/h12/groups/7/timeline?limit=3', { as: 'read' })).json()) as { items: { event: { seq: number }; change: { groups: unknown[] } }[]; nextCursor: string };
      // seq 2, the host's first recorded iommufd call, changes group 7 too: its owner goes from unknown (a host
      // known only from signals, kernel oracle assert 2) to known
      expect(page1.items.map((i) => i.event.seq)).toEqual([1, 2, 4]);
      const page2 = (await (await svc.call(`/v1/hosts/h12/groups/7/timeline?limit=3&cursor=${page1.nextCursor}`, { as: 'read' })).json()) as { items: { event: { seq: number } }[] };
      expect(page2.items.map((i) => i.event.seq)).toEqual([5, 6, 8]);
    });

    it('diffs a group between two times', async () => {
      const res = (await (await svc.call(`/v1/hosts/h12/groups/7/diff?from=${at(T0)}&to=${at(T0 + 7n * SECOND)}`, { as: 'read' })).json()) as { changes: { path: string }[] };
      expect(res.changes.map((c) => c.path)).toEqual(expect.arrayContaining(['userOwner', 'domain']));
    });

    it('lists violations by rule, status and time, open and closed', async () => {
      const all = (await (await svc.call('/v1/violations?host=h12', { as: 'read' })).json()) as { items: { ruleId: string; closed?: unknown }[] };
      const refused = all.items.find((v) => v.ruleId === 'passthrough-refused-not-viable');
      expect(refused?.closed).toBeDefined();
      const open = (await (await svc.call('/v1/violations?host=h12&status=open&rule=passthrough-refused-not-viable', { as: 'read' })).json()) as { items: unknown[] };
      expect(open.items).toHaveLength(0);
      const then = (await (await svc.call(`/v1/violations?host=h12&at=${at(T0 + 3n * SECOND)}`, { as: 'read' })).json()) as { items: { ruleId: string }[] };
      expect(then.items.map((v) => v.ruleId)).toContain('passthrough-refused-not-viable');
      expect((await svc.call('/v1/violations?rule=made-up', { as: 'read' })).status).toBe(400);
      const both = await svc.call(`/v1/violations?status=closed&at=${at(T0)}`, { as: 'read' });
      expect(both.status).toBe(400);
      expect(((await both.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe('query.status');
    });

    it('replays a host history against a variant through the API', async () => {
      const up = (await (await svc.call('/v1/hosts/h12/replay?variant=upstream', { method: 'POST', as: 'read' })).json()) as { hosts: { results: { verdict: string; operations: number }[] }[] };
      expect(up.hosts[0]!.results[0]).toMatchObject({ verdict: 'matches' });
      expect(up.hosts[0]!.results[0]!.operations).toBeGreaterThan(0);
      // stage-1 of the 2021 design refuses multi-device groups on the new API: the bind of a group-7 member diverges
      const s1 = (await (await svc.call('/v1/hosts/h12/replay?variant=stage1&compareWith=upstream', { method: 'POST', as: 'read' })).json()) as { hosts: { results: { verdict: string }[]; comparison?: unknown }[] };
      expect(s1.hosts[0]!.results[0]!.verdict).toBe('diverges');
      expect(s1.hosts[0]!.comparison).toBeDefined();
      const bad = await svc.call('/v1/hosts/h12/replay?variant=stage9', { method: 'POST', as: 'read' });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe('query.variant');
    });

    it('sets an ETag on state reads and answers 304 when unchanged', async () => {
      const first = await svc.call('/v1/hosts/h12/groups/7', { as: 'read' });
      const etag = first.headers.get('etag');
      expect(etag).toBeTruthy();
      // node:http, not fetch: fetch adds Cache-Control: no-cache to conditional requests, which disables 304s
      const status = await new Promise<number>((resolve, reject) => {
        get(`${svc.url}/v1/hosts/h12/groups/7`, { headers: { authorization: `Bearer ${TEST_TOKENS.read}`, 'if-none-match': etag! } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      expect(status).toBe(304);
    });

    it('serves the OpenAPI document and the API reference page', async () => {
      const doc = (await (await svc.call('/openapi.json', { as: 'none' })).json()) as { openapi: string; paths: Record<string, unknown> };
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths)).toContain('/v1/hosts/{host}/groups/{group}/timeline');
      expect((await svc.call('/docs', { as: 'none' })).status).toBe(200);
    });
  });

  describe('fuzz', () => {
    it('answers arbitrary JSON with 4xx, stays up, and stores nothing invalid', async () => {
      const before = (await (await svc.call('/metrics', { as: 'read' })).text()).match(/iommutrail_store_head_position (\d+)/)![1];
      await fc.assert(
        fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (value) => {
          const res = await post(svc, value as unknown);
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
        }),
        { numRuns: 150 },
      );
      expect((await svc.call('/healthz', { as: 'none' })).status).toBe(200);
      const after = (await (await svc.call('/metrics', { as: 'read' })).text()).match(/iommutrail_store_head_position (\d+)/)![1];
      expect(after).toBe(before);
    });
  });
});

describe('rate limit', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ http: { ratePerMinute: 3 } });
  });
  afterAll(async () => {
    await svc.dispose();
  });

  it('answers 429 past the per-token rate, for that token only', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await svc.call('/v1/rules', { as: 'read' })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await svc.call('/v1/rules', { as: 'admin' })).status).toBe(200);
  });
});

describe('violations as of a time older than the closed violations kept in memory', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ projections: { snapshotEvery: 100, closedViolationLimit: 1 } });
  });
  afterAll(async () => {
    await svc.dispose();
  });

  it('answers from the host folded up to that time, so nothing dropped from memory is missed', async () => {
    const b = createEventBuilder({ host: 'hv', source: 'collector', startNs: T0, stepNs: SECOND });
    const events: IommuEventInput[] = [
      group7History('hv')[0]!,
      b.raw('IommufdOpened', { ictx: '1:3', outcome: { ok: true } }, { atNs: T0 + SECOND }),
      b.raw('VfioDeviceOpened', { device: '0000:01:00.0', deviceFd: '1:4', outcome: { ok: true } }),
    ];
    for (let round = 0; round < 3; round++) {
      events.push(
        b.raw('VfioDeviceBindIommufdIssued', { device: '0000:01:00.0', deviceFd: '1:4', ictx: '1:3', outcome: { ok: false, errno: 'EPERM' } }),
        b.raw('DriverUnbound', { device: '0000:01:00.1', driver: 'snd_hda_intel' }),
        b.raw('DriverBound', { device: '0000:01:00.1', driver: 'snd_hda_intel' }),
      );
    }
    // the first envelope came from another builder: renumber this host's sequence
    events.forEach((e, i) => Object.assign(e, { seq: i + 1 }));
    expect((await post(svc, events)).status).toBe(200);
    await svc.live.notify();
    const r = (await (await svc.call(`/v1/violations?host=hv&at=${T0 + 3n * SECOND}`, { as: 'read' })).json()) as { items: { ruleId: string; opened: { seq: number } }[] };
    expect(r.items.map((v) => [v.ruleId, v.opened.seq])).toEqual([['passthrough-refused-not-viable', 4]]);
  });
});
