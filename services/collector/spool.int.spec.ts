import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { EventDraft } from './eventDraft.js';
import { openSpool } from './spool.js';

const writer = fileURLToPath(new URL('./testing/spoolWriter.ts', import.meta.url));
const bound = (i: number): EventDraft => ({ type: 'DriverBound', source: 'udev', data: { device: `0000:01:00.${i % 8}`, driver: 'vfio-pci' } });

/** runs the writer child until it acknowledged `batches` batches, then kill -9; returns the acknowledged seq:id pairs */
const runAndKill = (path: string, batches: number): Promise<Map<number, string>> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, path, 'host-a'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Map<number, string>();
    let seen = 0;
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        for (const pair of line.replace(/^ack /, '').split(',')) {
          const [seq, id] = pair.split(':');
          acked.set(Number(seq), id!);
        }
        seen += 1;
        if (seen === batches) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve(acked) : reject(new Error(`writer exited without the kill (${signal})`))));
  });

const rowsOf = (path: string): { seq: number; id: string }[] => {
  const db = new Database(path, { readonly: true });
  const rows = db.prepare<[], { seq: number; id: string }>('SELECT seq, id FROM outbox ORDER BY seq').all();
  db.close();
  return rows;
};

describe('spool > durability', () => {
  it('given a writer killed with SIGKILL mid-stream, when the spool is reopened, then every acknowledged event is there, once, and seq continues without reuse', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'spool-')), 'spool.sqlite');
    const first = await runAndKill(path, 40);
    const afterFirst = rowsOf(path);
    const ids = new Map(afterFirst.map((r) => [r.seq, r.id]));
    for (const [seq, id] of first) expect(ids.get(seq)).toBe(id);
    expect(new Set(afterFirst.map((r) => r.id)).size).toBe(afterFirst.length);
    // contiguous: a crash never leaves a hole or a half-written batch
    expect(afterFirst.map((r) => r.seq)).toEqual(afterFirst.map((_, i) => i + 1));

    const second = await runAndKill(path, 5);
    const lastBefore = afterFirst[afterFirst.length - 1]!.seq;
    expect(Math.min(...second.keys())).toBe(lastBefore + 1);
    const all = rowsOf(path);
    expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
    expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i + 1));
  });

  it('given events already delivered and removed, when the spool is reopened, then the next seq is still after them', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'spool-')), 'spool.sqlite');
    const s1 = openSpool({ path, host: 'h1' });
    const r = s1.append([bound(0), bound(1), bound(2)]);
    if (!r.ok) throw new Error('full');
    s1.remove(r.events.map((e) => e.id));
    s1.close();
    const s2 = openSpool({ path, host: 'h1' });
    const r2 = s2.append([bound(3)]);
    expect(r2.ok && r2.events[0]!.seq).toBe(4);
    s2.close();
    expect(() => openSpool({ path, host: 'other-host' })).toThrow(/belongs to host h1/);
  });

  it('given an invalid draft in a batch, when appended, then it is reported and takes no sequence number', () => {
    const spool = openSpool({ path: join(mkdtempSync(join(tmpdir(), 'spool-')), 's.sqlite'), host: 'h1' });
    const r = spool.append([bound(0), { type: 'DriverBound', source: 'udev', data: { device: 'not-a-device', driver: 'x' } }, bound(1)]);
    if (!r.ok) throw new Error('full');
    expect(r.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(r.invalid[0]!.error.issues[0]!.path).toContain('data.device');
    spool.close();
  });
});

describe('spool > back-pressure', () => {
  it('given a full spool, when appending, then it refuses, and waitForSpace resolves only after removal', async () => {
    const spool = openSpool({ path: join(mkdtempSync(join(tmpdir(), 'spool-')), 's.sqlite'), host: 'h1', maxEvents: 3 });
    const r = spool.append([bound(0), bound(1), bound(2)]);
    if (!r.ok) throw new Error('full');
    expect(spool.append([bound(3)])).toMatchObject({ ok: false, reason: 'full' });
    let freed = false;
    const waiting = spool.waitForSpace().then(() => {
      freed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(freed).toBe(false);
    spool.remove([r.events[0]!.id]);
    await waiting;
    expect(freed).toBe(true);
    expect(spool.append([bound(3)]).ok).toBe(true);
    spool.close();
  });
});
