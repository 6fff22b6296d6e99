import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../schemas/index.js';
import { TEST_TOKENS, startTestService, type TestService } from '../testing/service.js';
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
    const lines = [
      b.raw('TopologySnapshotTaken', {
        capabilities: { iommu: true, interruptRemapping: true },
        groups: [{ group: 12, devices: ['0000:03:00.0'] }],
        devices: [{ device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'vfio-pci', group: 12 }],
      }),
      b.raw('IommufdOpened', { ictx: '100:3', outcome: { ok: true } }, { actor: { pid: 100, comm: 'qemu-system-x86', vm: 'vm-a' } }),
      b.raw('VfioDeviceOpened', { device: '0000:03:00.0', deviceFd: '100:4', outcome: { ok: true } }, { actor: { pid: 100, comm: 'qemu-system-x86', vm: 'vm-a' } }),
      b.raw('VfioDeviceBindIommufdIssued', { device: '0000:03:00.0', deviceFd: '100:4', ictx: '100:3', outcome: { ok: true, devId: 1 } }, { actor: { pid: 100, comm: 'qemu-system-x86', vm: 'vm-a' } }),
    ].map((e) => JSON.stringify(e));
    writeFileSync(history, `${lines.join('\n')}\n{"type":"Broken"}\n`);
  });
  afterAll(async () => {
    await svc.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ingest: stores the good lines, names the bad one by file and line, exits 2', async () => {
    const r = await cli('ingest', history, '--url', svc.url, '--token', TEST_TOKENS.ingest);
    expect(r.out).toBe('4 accepted, 0 duplicate, 1 rejected');
    expect(r.err).toContain(`${history}:5.type: unknown event type "Broken"`);
    expect(r.code).toBe(2);
  });

  it('query group --at: who owned group 12 after the bind, in words', async () => {
    await svc.live.notify();
    const at = new Date(Number((T0 + 3n * SECOND) / 1_000_000n)).toISOString();
    const r = await cli('query', 'group', 'h12', '12', '--at', at, '--url', svc.url, '--token', TEST_TOKENS.read);
    expect(r.code).toBe(0);
    expect(r.out).toContain('owner:   iommufd 100:3');
    expect(r.out).toContain('domain:  blocking');
  });

  it('query timeline: what moved the group, with the process behind it', async () => {
    const r = await cli('query', 'timeline', 'h12', '--group', '12', '--url', svc.url, '--token', TEST_TOKENS.read);
    expect(r.out).toMatch(/#4 VfioDeviceBindIommufdIssued by qemu-system-x86\[100\] vm=vm-a\n {4}userOwner: null → \{"kind":"iommufd","handle":"100:3"\}/);
  });

  it('bad input exits 2 with one line naming the option', async () => {
    const r = await cli('query', 'group', 'h12', '12', '--at', 'noon', '--url', svc.url, '--token', TEST_TOKENS.read);
    expect(r.code).toBe(2);
    expect(r.err).toBe('iommutrail: --at: expected an ISO-8601 time (2026-11-23T03:12:00Z) or ns since the epoch, got "noon"');
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

  it('an unreachable service exits 69', async () => {
    const r = await cli('query', 'hosts', '--url', 'http://127.0.0.1:1', '--token', 'x');
    expect(r.code).toBe(69);
  });
});
