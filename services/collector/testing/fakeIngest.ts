import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeMode = 'accept' | 'refuse' | 'store-then-fail';

/**
 * A real HTTP server speaking the ingest answer format ({ results: [{ index, status }] }): it keeps what it
 * stored in order, answers duplicates by id, rejects events whose device is in `rejectDevices`, and can be
 * switched to refuse (503) or to store and then fail (a lost answer).
 */
export const startFakeIngest = async (options: { port?: number; token?: string; rejectDevices?: string[] } = {}) => {
  const stored: { id: string; seq: number; type: string }[] = [];
  const ids = new Set<string>();
  let mode: FakeMode = 'accept';
  let requests = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests += 1;
      if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
        res.writeHead(401).end();
        return;
      }
      if (mode === 'refuse') {
        res.writeHead(503, { 'content-type': 'application/problem+json' }).end('{"title":"unavailable"}');
        return;
      }
      const events = body.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { id: string; seq: number; type: string; data: { device?: string } });
      const results = events.map((e, index) => {
        if (options.rejectDevices?.includes(e.data.device ?? '')) return { index, status: 'rejected', errors: [{ path: `events[${index}].data.device`, message: 'refused by test' }] };
        if (ids.has(e.id)) return { index, status: 'duplicate', id: e.id };
        ids.add(e.id);
        stored.push({ id: e.id, seq: e.seq, type: e.type });
        return { index, status: 'accepted', id: e.id };
      });
      if (mode === 'store-then-fail') {
        res.writeHead(500).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stored,
    setMode: (m: FakeMode) => {
      mode = m;
    },
    requests: () => requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};
