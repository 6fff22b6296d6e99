import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseEventJson } from '../../../schemas/index.js';
import { main } from '../main.js';

describe('iommutrail simulate (CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'simulate-e2e-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('given a seed, when run twice with --out, then it exits 0 and writes the same valid JSON Lines', async () => {
    const args = ['simulate', '--seed', '42', '--hosts', '4', '--events', '800', '--mistake-rate', '0.2', '--quiet'];
    expect(await main([...args, '--out', join(dir, 'a.jsonl')])).toBe(0);
    expect(await main([...args, '--out', join(dir, 'b.jsonl')])).toBe(0);
    const a = await readFile(join(dir, 'a.jsonl'), 'utf8');
    expect(a).toBe(await readFile(join(dir, 'b.jsonl'), 'utf8'));
    const lines = a.trimEnd().split('\n');
    expect(lines).toHaveLength(800);
    expect(lines.filter((l) => !parseEventJson(l).ok)).toEqual([]);
  });

  it('trust #12: given --labels, when run, then the ground truth is written beside the history: a line per mistake naming its rule and events of the history', async () => {
    const args = ['simulate', '--seed', '42', '--hosts', '4', '--events', '4000', '--mistake-rate', '0.5', '--quiet'];
    expect(await main([...args, '--out', join(dir, 'h.jsonl'), '--labels', join(dir, 'h.labels.jsonl')])).toBe(0);
    const ids = new Set((await readFile(join(dir, 'h.jsonl'), 'utf8')).trimEnd().split('\n').map((l) => (JSON.parse(l) as { id: string }).id));
    const labels = (await readFile(join(dir, 'h.labels.jsonl'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { mistake: string; ruleId: string; from: { eventId: string } });
    expect(labels.length).toBeGreaterThan(0);
    for (const l of labels) {
      expect(l.ruleId.length).toBeGreaterThan(0);
      expect(ids.has(l.from.eventId)).toBe(true);
    }
  });

  it('given a bad number or two destinations, when run, then it exits 2', async () => {
    expect(await main(['simulate', '--hosts', 'many', '--quiet'])).toBe(2);
    expect(await main(['simulate', '--out', join(dir, 'x.jsonl'), '--to-url', 'http://127.0.0.1:9/v1/events', '--quiet'])).toBe(2);
  });

  it('issue 21: a long run shows progress (lines with --progress off a terminal), and --help names the service\'s default port', async () => {
    const err: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
    try {
      expect(await main(['simulate', '--seed', '3', '--events', '3000', '--out', join(dir, 'p.jsonl'), '--progress'])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    const lines = err.filter((l) => l.startsWith('simulate: '));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.at(-1)).toBe('simulate: 3000 of 3000 (100%)');
    const help: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (help.push(String(chunk)), true));
    try {
      expect(await main(['simulate', '--help'])).toBe(0);
    } finally {
      write.mockRestore();
    }
    expect(help.join('')).toContain('http://127.0.0.1:8377/v1/events');
    expect(help.join('')).not.toContain(':8080');
  });

  describe('--to-url', () => {
    let server: Server;
    const received: { auth: string | undefined; type: string | undefined; lines: number }[] = [];
    beforeAll(async () => {
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const lines = body.trimEnd().split('\n').length;
          received.push({ auth: req.headers.authorization, type: req.headers['content-type'], lines });
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: lines, duplicate: 0, rejected: 0 }));
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    });
    afterAll(async () => new Promise<void>((r) => server.close(() => r())));

    it('given a service, when run with --to-url and --token, then NDJSON batches carry every event', async () => {
      const { port } = server.address() as AddressInfo;
      const code = await main(['simulate', '--seed', '1', '--hosts', '2', '--events', '450', '--batch', '200', '--to-url', `http://127.0.0.1:${port}/v1/events`, '--token', 'secret', '--quiet']);
      expect(code).toBe(0);
      expect(received.map((r) => r.lines)).toEqual([200, 200, 50]);
      expect(received.every((r) => r.auth === 'Bearer secret' && r.type === 'application/x-ndjson')).toBe(true);
    });
  });
});
