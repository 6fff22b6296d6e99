import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../schemas/index.js';
import { TEST_TOKENS, startTestService, type TestService } from '../serve/testing/service.js';
import { runCli } from './testing/runCli.js';

const T0 = 1_763_870_000_000_000_000n;
const SECOND = 1_000_000_000n;

const cli = runCli;

describe('iommutrail CLI against a running service', () => {
  let svc: TestService;
  const dir = mkdtempSync(path.join(tmpdir(), 'iommutrail-cli-'));
  const history = path.join(dir, 'h12.jsonl');

  beforeAll(async () => {
    svc = await startTestService();
    const b = createEventBuilder({ host: 'h12', source: 'collector', startNs: T0, stepNs: SECOND });
    const qemu = { actor: { pid: 100, comm: 'qemu-system-x86', vm: 'vm-a', tenant: 'initech' } };
    const lines = [
      b.raw('TopologySnapshotTaken', {
        capabilities: { iommu: true, interruptRemapping: true },
        groups: [
          { group: 12, devices: ['0000:03:00.0', '0000:03:00.1'] },
          { group: 13, devices: ['0000:04:00.0'] },
        ],
        devices: [
          { device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'vfio-pci', group: 12 },
          { device: '0000:03:00.1', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: null, group: 12 },
          { device: '0000:04:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'e1000e', group: 13 },
        ],
      }),
      b.raw('IommufdOpened', { ictx: '100:3', outcome: { ok: true } }, qemu),
      b.raw('VfioDeviceOpened', { device: '0000:03:00.0', deviceFd: '100:4', outcome: { ok: true } }, qemu),
      b.raw('VfioDeviceBindIommufdIssued', { device: '0000:03:00.0', deviceFd: '100:4', ictx: '100:3', outcome: { ok: true, devId: 1 } }, qemu),
      b.raw('DriverBound', { device: '0000:03:00.1', driver: 'e1000e' }),
      b.raw('DriverUnbound', { device: '0000:03:00.1', driver: 'e1000e' }),
    ].map((e) => JSON.stringify(e));
    writeFileSync(history, `${lines.join('\n')}\n{"type":"Broken"}\n`);
  });
  afterAll(async () => {
    await svc.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ingest: stores the good lines, names the bad one by file and line, exits 2', async () => {
    const r = await cli('ingest', history, '--url', svc.url, '--token', TEST_TOKENS.ingest);
    expect(r.out).toBe('6 accepted, 0 duplicate, 1 rejected');
    expect(r.err).toContain(`${history}:7.type: unknown event type "Broken"`);
    expect(r.code).toBe(2);
  });

  const iso = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString().replace('.000Z', 'Z');

  it('issue 21: query group --at names who holds the group (VM, tenant, pid and comm), with the resolved UTC time', async () => {
    await svc.live.notify();
    const at = T0 + 3n * SECOND;
    const r = await cli('query', 'group', 'h12', '12', '--at', iso(at), '--url', svc.url, '--token', TEST_TOKENS.read);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`group 12 on h12 at ${iso(at)} (UTC)`);
    expect(r.out).toContain('owner:   iommufd 100:3');
    expect(r.out).toContain(`who:     qemu-system-x86 (pid 100), VM vm-a, tenant initech (as of h12#4 at ${iso(at)})`);
    expect(r.out).toContain('domain:  the blocking domain');
  });

  it('issue 21: a time without a zone is UTC, not the local zone (TZ=America/New_York), and is echoed resolved', async () => {
    const tz = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      // 1.5 s after T0: before the bind, so the kernel owns the group; read 5 h later (local zone) it would not
      const at = iso(T0 + SECOND).replace('T', ' ').replace('Z', '');
      const r = await cli('query', 'group', 'h12', '12', '--at', at, '--url', svc.url, '--token', TEST_TOKENS.read);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`at ${iso(T0 + SECOND)} (UTC)`);
      expect(r.out).toContain('owner:   kernel');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('issue 21: query timeline in words: who moved the group, driver lines name device and driver, only the asked group of a snapshot, violations opening and closing', async () => {
    const r = await cli('query', 'timeline', 'h12', '--group', '12', '--url', svc.url, '--token', TEST_TOKENS.read);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${iso(T0)} h12#1 TopologySnapshotTaken 2 group(s), 3 device(s)\n    group 12 recorded: members 0000:03:00.0, 0000:03:00.1`);
    // the snapshot's other group is not listed when --group 12 is asked
    expect(r.out).not.toContain('group 13');
    expect(r.out).toContain('h12#4 VfioDeviceBindIommufdIssued 0000:03:00.0 iommufd 100:3 by qemu-system-x86 (pid 100), VM vm-a, tenant initech\n    group 12: ownership claimed by iommufd 100:3 (user DMA owner)');
    expect(r.out).toMatch(/h12#5 DriverBound 0000:03:00\.1 driver e1000e\n(.*\n)*? {4}VIOLATION OPENED CRITICAL kernel-driver-in-user-group: /);
    expect(r.out).toMatch(/h12#6 DriverUnbound 0000:03:00\.1 driver e1000e\n(.*\n)*? {4}violation closed kernel-driver-in-user-group: /);
    expect(r.out).not.toMatch(/userOwner|null →|"kind"/);
  });

  it('issue 21: query diff answers in words with a time header and lists the events that caused the change', async () => {
    const r = await cli('query', 'diff', 'h12', '12', '--from', iso(T0), '--to', iso(T0 + 5n * SECOND), '--url', svc.url, '--token', TEST_TOKENS.read);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`group 12 on h12, from ${iso(T0)} (UTC) to ${iso(T0 + 5n * SECOND)} (UTC)`);
    expect(r.out).toContain('ownership claimed by iommufd 100:3 (user DMA owner)');
    expect(r.out).toContain('DMA translated by the blocking domain (was the default domain)');
    expect(r.out).toMatch(/caused by \d+ event\(s\):/);
    expect(r.out).toContain('h12#4 VfioDeviceBindIommufdIssued');
    expect(r.out).not.toMatch(/userOwner|legacyGroupFd|null →|"kind"/);
  });

  it('issue 21: query violations names events one way (host#seq at a UTC time) and echoes the resolved --at', async () => {
    const r = await cli('query', 'violations', '--host', 'h12', '--rule', 'kernel-driver-in-user-group', '--url', svc.url, '--token', TEST_TOKENS.read);
    expect(r.out).toContain(`kernel-driver-in-user-group\topened by h12#5 at ${iso(T0 + 4n * SECOND)}, closed by h12#6 at ${iso(T0 + 5n * SECOND)}`);
    const at = await cli('query', 'violations', '--host', 'h12', '--at', iso(T0 + 4n * SECOND).replace('Z', ''), '--url', svc.url, '--token', TEST_TOKENS.read);
    expect(at.out.split('\n')[0]).toMatch(new RegExp(`^\\d+ violation\\(s\\) open at ${iso(T0 + 4n * SECOND)} \\(UTC\\)`));
  });

  it('bad input exits 2 with one line naming the option', async () => {
    const r = await cli('query', 'group', 'h12', '12', '--at', 'noon', '--url', svc.url, '--token', TEST_TOKENS.read);
    expect(r.code).toBe(2);
    expect(r.err).toBe('iommutrail: --at: expected an ISO-8601 time (2026-11-23T03:12:00Z; no zone means UTC), a date, a relative time (-1h, -7d, yesterday 03:00) or ns since the epoch, got "noon"');
    expect((await cli('query', 'group', 'h12', '99', '--url', svc.url, '--token', TEST_TOKENS.read)).code).toBe(3);
    expect((await cli('no-such-command')).code).toBe(2);
  });

  it('serve with a wrong setting stops at startup with one line naming it, exit 2', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'http:\n  port: -1\n');
    const r = await cli('serve', '--config', bad, '--data-dir', dir);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^iommutrail: config: http\.port: /);
    expect(r.err.split('\n')).toHaveLength(1);
  });

  it('unusable paths and URLs are bad input (exit 2, one line naming them)', async () => {
    const missing = path.join(dir, 'missing.jsonl');
    const r1 = await cli('validate', missing);
    expect(r1).toMatchObject({ code: 2, err: `iommutrail: ${missing}: no such file or directory` });
    expect((await cli('validate', dir)).code).toBe(2);
    const notDb = path.join(dir, 'not-a-db.sqlite');
    writeFileSync(notDb, 'hello, this is not SQLite'.repeat(100));
    expect((await cli('verify', '--db', notDb)).code).toBe(2);
    const r4 = await cli('query', 'hosts', '--url', 'not a url', '--token', 'x');
    expect(r4.code).toBe(2);
    expect(r4.err).toMatch(/^iommutrail: --url: /);
  });

  it('issue 21: a missing file exits the same way in every command (exit 2, one line naming the path)', async () => {
    const missing = path.join(dir, 'missing.file');
    const commands = [
      ['validate', missing],
      ['replay', missing],
      ['ingest', missing, '--data-dir', path.join(dir, 'dd')],
      ['diagnose', missing],
      ['verify', '--db', missing],
      ['verify', '--bundle', missing],
      ['export', '--db', missing, '--host', 'h12', '--out', path.join(dir, 'bundle')],
    ];
    for (const argv of commands) {
      const r = await cli(...argv);
      expect({ argv, code: r.code, err: r.err.split('\n')[0] }).toEqual({ argv, code: 2, err: `iommutrail: ${missing}: no such file or directory` });
    }
  });

  it('issue 21: a misspelt event type gets a "did you mean"', async () => {
    const file = path.join(dir, 'misspelt.jsonl');
    writeFileSync(file, `${JSON.stringify({ ...JSON.parse(readFileSync(history, 'utf8').split('\n')[0]!), type: 'TopologySnapshotTakn' })}\n`);
    const r = await cli('validate', file);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${file}:1.type: unknown event type "TopologySnapshotTakn"; did you mean "TopologySnapshotTaken"?`);
  });

  it('an unreachable service exits 69', async () => {
    const r = await cli('query', 'hosts', '--url', 'http://127.0.0.1:1', '--token', 'x');
    expect(r.code).toBe(69);
  });
});
