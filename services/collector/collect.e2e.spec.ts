import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main.js';
import { startFakeIngest } from './testing/fakeIngest.js';
import { buildSysfs, type SysfsFixture } from './testing/sysfsFixture.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

afterEach(() => vi.restoreAllMocks());

describe('iommutrail collect --once (CLI)', () => {
  it('given a fixture sysfs, recorded uevents, trace_pipe and bpftrace output, when collected, then the service receives them in seq order', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const sys = buildSysfs(JSON.parse(readFileSync(fixture('workstation.sysfs.json'), 'utf8')) as SysfsFixture);
    const tracefs = join(mkdtempSync(join(tmpdir(), 'tracefs-')), 'tracing');
    mkdirSync(tracefs);
    writeFileSync(join(tracefs, 'trace_pipe'), readFileSync(fixture('trace_pipe.txt')));
    const spool = join(mkdtempSync(join(tmpdir(), 'spool-')), 'spool.sqlite');
    const ingest = await startFakeIngest({ token: 'secret' });
    try {
      const args = ['collect', '--once', '--host', 'ws1', '--spool', spool, '--url', ingest.url, '--token', 'secret', '--sys-root', sys, '--tracefs', tracefs, '--trace'];
      const code = await main([...args, '--udev-input', fixture('udevadm-monitor.txt'), '--bpftrace-input', fixture('bpftrace.txt')]);
      expect(code).toBe(0);
      const types = ingest.stored.map((e) => e.type);
      expect(types[0]).toBe('TopologySnapshotTaken');
      expect(types.filter((t) => t.startsWith('Trace'))).toHaveLength(6);
      expect(types).toContain('DriverUnbound');
      expect(types).toContain('DriverBound');
      expect(types).toContain('VfioDeviceBindIommufdIssued');
      expect(types).toContain('DriverBindRefused');
      expect(ingest.stored.map((e) => e.seq)).toEqual(ingest.stored.map((_, i) => i + 1));

      // a second run continues the host's sequence from the same spool
      const before = ingest.stored.length;
      expect(await main(args.slice(0, -1))).toBe(0);
      expect(ingest.stored[before]!.seq).toBe(before + 1);
    } finally {
      await ingest.close();
    }
  });

  it('issue 18: --sys-root naming a folder that is no sysfs exits 2 naming it, and records no host without IOMMU', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const spool = join(mkdtempSync(join(tmpdir(), 'spool-')), 'spool.sqlite');
    const ingest = await startFakeIngest();
    try {
      const missing = join(tmpdir(), 'iommutrail-no-such-sysfs');
      expect(await main(['collect', '--once', '--host', 'ws1', '--spool', spool, '--url', ingest.url, '--sys-root', missing])).toBe(2);
      expect(err.mock.calls.map((c) => String(c[0])).join('')).toContain('--sys-root');
      expect(ingest.stored).toEqual([]);
    } finally {
      await ingest.close();
    }
  });

  it('given an unreachable service, when collected once, then it exits 69 and keeps the events in the spool', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const sys = buildSysfs({ groups: {}, devices: [] });
    const spool = join(mkdtempSync(join(tmpdir(), 'spool-')), 'spool.sqlite');
    const down = await startFakeIngest();
    await down.close();
    expect(await main(['collect', '--once', '--host', 'ws1', '--spool', spool, '--url', down.url, '--sys-root', sys])).toBe(69);
    const back = await startFakeIngest({ port: down.port });
    try {
      expect(await main(['collect', '--once', '--host', 'ws1', '--spool', spool, '--url', back.url, '--sys-root', sys])).toBe(0);
      expect(back.stored.map((e) => e.seq)).toEqual([1, 2]);
    } finally {
      await back.close();
    }
  });

  it('issue 17: given --out <file>, when collected once, then the file is a JSON Lines history (seq 1..n) that `iommutrail ingest` stores whole', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const sys = buildSysfs(JSON.parse(readFileSync(fixture('workstation.sysfs.json'), 'utf8')) as SysfsFixture);
    const tracefs = join(mkdtempSync(join(tmpdir(), 'tracefs-')), 'tracing');
    mkdirSync(tracefs);
    writeFileSync(join(tracefs, 'trace_pipe'), readFileSync(fixture('trace_pipe.txt')));
    const dir = mkdtempSync(join(tmpdir(), 'collect-out-'));
    const spool = join(dir, 'spool.sqlite');
    const out = join(dir, 'ws1.jsonl');
    const args = ['collect', '--once', '--host', 'ws1', '--spool', spool, '--sys-root', sys, '--tracefs', tracefs, '--trace', '--udev-input', fixture('udevadm-monitor.txt')];

    // a file that cannot be written (no such folder) is an unavailable sink: exit 69, the events stay in the spool
    expect(await main([...args, '--out', join(dir, 'missing', 'ws1.jsonl')])).toBe(69);
    expect(existsSync(out)).toBe(false);
    expect(await main([...args.slice(0, -2), '--out', out])).toBe(0);

    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; type: string; host: string });
    expect(lines.map((e) => e.seq)).toEqual(lines.map((_, i) => i + 1));
    expect(lines[0]!.type).toBe('TopologySnapshotTaken');
    expect(lines.filter((e) => e.type === 'TopologySnapshotTaken')).toHaveLength(2);
    expect(lines.map((e) => e.type)).toEqual(expect.arrayContaining(['DriverBound', 'DriverUnbound', 'TraceAttachDeviceToDomain']));

    log.mockClear();
    expect(await main(['ingest', out, '--data-dir', join(dir, 'data'), '--json'])).toBe(0);
    expect(JSON.parse(String(log.mock.calls.at(-1)![0]))).toEqual({ accepted: lines.length, duplicate: 0, rejected: 0, errors: [] });
  });

  it('issue 17: collect refuses two sinks at once, naming them (exit 2)', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const sys = buildSysfs({ groups: {}, devices: [] });
    const spool = join(mkdtempSync(join(tmpdir(), 'spool-')), 'spool.sqlite');
    expect(await main(['collect', '--once', '--host', 'ws1', '--spool', spool, '--url', 'http://127.0.0.1:9', '--out', '-', '--sys-root', sys])).toBe(2);
    expect(err.mock.calls.map((c) => String(c[0])).join('')).toContain('not --url and --out');
  });
});
