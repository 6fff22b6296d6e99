import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../../schemas/index.js';
import { hashToken } from '../../shared/config/tokens.js';
import { getSqliteEventStore } from '../../shared/eventStore/index.js';

const TOKEN = 'crash-test-token';
const cli = path.resolve('services/cli/main.ts');

const startServer = (dataDir: string): Promise<{ child: ChildProcess; url: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--data-dir', dataDir, '--port', '0', '--no-analytics'], {
      env: { ...process.env, IOMMUTRAIL_TOKENS: `crash:ingest+read:${hashToken(TOKEN)}`, IOMMUTRAIL_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(err);
      if (m) resolve({ child, url: m[1]! });
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${err}`)));
  });

describe('crash safety', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'iommutrail-crash-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('given a server killed with SIGKILL during ingest, when restarted, then every acknowledged event is stored exactly once', async () => {
    const { child, url } = await startServer(dataDir);
    const builders = ['c1', 'c2', 'c3'].map((host) => createEventBuilder({ host, source: 'collector' }));
    const acknowledged: string[] = [];
    const inFlight: Promise<void>[] = [];
    let killed = false;
    // 3 concurrent clients posting batches until the kill
    const client = async (k: number) => {
      for (let batch = 0; !killed; batch++) {
        const events = Array.from({ length: 100 }, () => builders[k]!.raw('IommufdOpened', { ictx: `${k}:${batch}`, outcome: { ok: true } }));
        try {
          const res = await fetch(`${url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(events) });
          if (res.status === 200) {
            const body = (await res.json()) as { results: { id: string; status: string }[] };
            for (const r of body.results) if (r.status === 'accepted') acknowledged.push(r.id);
          }
        } catch {
          return; // the server died mid-request: that batch was never acknowledged
        }
      }
    };
    for (let k = 0; k < 3; k++) inFlight.push(client(k));
    while (acknowledged.length < 2_000) await new Promise((r) => setTimeout(r, 20));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    killed = true;
    await Promise.all(inFlight);
    await exited;

    // restart on the same folder: it must open cleanly and serve what was acknowledged
    const again = await startServer(dataDir);
    const hosts = (await (await fetch(`${again.url}/v1/hosts`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: { host: string; events: number }[] };
    const stopped = new Promise((r) => again.child.once('exit', r));
    again.child.kill('SIGTERM');
    await stopped;

    const store = getSqliteEventStore({ path: path.join(dataDir, 'events.sqlite'), readOnly: true });
    const stored: string[] = [];
    for await (const r of store.readAll()) stored.push(r.event.id);
    await store.close();
    const storedSet = new Set(stored);
    expect(stored.length).toBe(storedSet.size); // no duplicate
    const lost = acknowledged.filter((id) => !storedSet.has(id));
    expect(lost).toEqual([]);
    expect(hosts.items.reduce((n, h) => n + h.events, 0)).toBe(stored.length);
  }, 180_000);

  it('given SIGTERM during ingest, then requests are answered or refused (never cut off with a 5xx), the process exits 0, and every acknowledged event is stored', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'iommutrail-term-'));
    try {
      const { child, url } = await startServer(dir);
      const builder = createEventBuilder({ host: 't1', source: 'collector' });
      const acknowledged: string[] = [];
      const statuses: number[] = [];
      const post = async (batch: number) => {
        const events = Array.from({ length: 200 }, () => builder.raw('IommufdOpened', { ictx: `t:${batch}`, outcome: { ok: true } }));
        try {
          const res = await fetch(`${url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(events) });
          statuses.push(res.status);
          if (res.status === 200) for (const r of ((await res.json()) as { results: { id: string; status: string }[] }).results) if (r.status === 'accepted') acknowledged.push(r.id);
        } catch {
          statuses.push(0); // refused: the server had stopped accepting
        }
      };
      for (let b = 0; b < 3; b++) await post(b);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const inFlight = [post(3), post(4)];
      child.kill('SIGTERM');
      await Promise.all(inFlight);
      expect(await exited).toBe(0);
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      expect(statuses.every((st) => st === 200 || st === 0)).toBe(true);
      const store = getSqliteEventStore({ path: path.join(dir, 'events.sqlite'), readOnly: true });
      const stored = new Set<string>();
      for await (const r of store.readAll()) stored.add(r.event.id);
      await store.close();
      expect(acknowledged.length).toBeGreaterThanOrEqual(600);
      expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
