import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createEventBuilder } from '../../../schemas/index.js';
import { startTestService, type TestService } from '../testing/service.js';

const T0 = 1_763_870_000_000_000_000n;

/** a group owned by iommufd while a sibling binds a kernel DMA-API driver: critical and warning violations open */
const ownedThenKernelBind = (host: string) => {
  const b = createEventBuilder({ host, source: 'collector', startNs: T0, stepNs: 1_000_000_000n });
  const qemu = { actor: { pid: 100, comm: 'qemu-system-x86' } };
  return [
    b.raw('TopologySnapshotTaken', {
      capabilities: { iommu: true, interruptRemapping: true },
      groups: [{ group: 12, devices: ['0000:03:00.0', '0000:03:00.1'] }],
      devices: [
        { device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'vfio-pci', group: 12 },
        { device: '0000:03:00.1', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: null, group: 12 },
      ],
    }),
    b.raw('IommufdOpened', { ictx: '100:3', outcome: { ok: true } }, qemu),
    b.raw('VfioDeviceOpened', { device: '0000:03:00.0', deviceFd: '100:4', outcome: { ok: true } }, qemu),
    b.raw('VfioDeviceBindIommufdIssued', { device: '0000:03:00.0', deviceFd: '100:4', ictx: '100:3', outcome: { ok: true, devId: 1 } }, qemu),
    b.raw('DriverBound', { device: '0000:03:00.1', driver: 'e1000e' }),
  ];
};

describe('Metrics > open violations for alerting', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.dispose();
    svc = undefined;
  });

  const scrape = async (s: TestService, hosts: string[]) => {
    for (const h of hosts) expect((await s.call('/v1/events', { method: 'POST', body: JSON.stringify(ownedThenKernelBind(h)), headers: { 'content-type': 'application/json' }, as: 'ingest' })).status).toBe(200);
    await s.live.notify();
    return (await s.call('/metrics', { as: 'read' })).text();
  };

  it('issue 21: a gauge of open violations by rule and severity, every rule present (0 when none), no host label by default', async () => {
    svc = await startTestService();
    const text = await scrape(svc, ['h1', 'h2']);
    expect(text).toMatch(/^iommutrail_violations_open\{rule="kernel-driver-in-user-group",severity="critical"\} 2$/m);
    expect(text).toMatch(/^iommutrail_violations_open\{rule="two-owners",severity="critical"\} 0$/m);
    expect(text).not.toMatch(/^iommutrail_violations_open_by_host\{/m);
    // the example alert rules use only metrics the service exports
    const rules = parse(readFileSync('deploy/prometheus/iommutrail-alerts.yml', 'utf8')) as { groups: { rules: { expr: string }[] }[] };
    const used = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => r.expr.match(/iommutrail_\w+/g) ?? [])));
    expect(used.size).toBeGreaterThan(2);
    for (const name of used) expect(text).toContain(`# TYPE ${name} `);
  });

  it('issue 23: /metrics does not grow with the number of hosts by default; the ingest and sequence counters are per host only with metrics.perHost', async () => {
    // given the same service fed 2 hosts, then 40 more
    svc = await startTestService();
    await scrape(svc, ['h1', 'h2']);
    // (a second scrape: the first one's own request is in the HTTP histogram from now on)
    const few = await scrape(svc, []);
    const many = await scrape(svc, Array.from({ length: 40 }, (_, i) => `m${i}`));
    // then no series names a host, and the product's series are as many (counts differ, names do not; the
    // runtime's own nodejs/process series vary with garbage collection and are left out)
    const ownSeries = (text: string) => text.split('\n').filter((l) => /^iommutrail_/.test(l) && !/^iommutrail_(nodejs|process)_/.test(l));
    expect(many).not.toMatch(/host="/);
    expect(ownSeries(many).length).toBe(ownSeries(few).length);
    expect(many).toMatch(/^iommutrail_ingest_events_total \d+$/m);
    await svc.dispose();
    // when asked for, then one series per host
    svc = await startTestService({ metrics: { perHost: true } });
    expect(await scrape(svc, ['h1', 'h2'])).toMatch(/^iommutrail_ingest_events_total\{host="h2"\} 5$/m);
  });

  it('issue 21: per host only when asked (metrics.violationsByHost), one series per host and rule with any open', async () => {
    svc = await startTestService({ metrics: { violationsByHost: true } });
    const text = await scrape(svc, ['h1']);
    expect(text).toMatch(/^iommutrail_violations_open_by_host\{host="h1",rule="kernel-driver-in-user-group",severity="critical"\} 1$/m);
    expect(text).not.toMatch(/^iommutrail_violations_open_by_host\{host="h1",rule="two-owners"/m);
  });
});
