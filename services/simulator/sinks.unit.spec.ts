import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UnavailableError, ValidationError } from '../../schemas/index.js';
import { simulateFleet } from './simulateFleet.js';
import { sendToHttp, writeJsonLines } from './sinks.js';

const events = () => simulateFleet({ seed: 9, hosts: 3, events: 3000 });

/** an in-memory stream with a tiny buffer that drains only when the test lets it */
const slowSink = () => {
  const chunks: string[] = [];
  let writes = 0;
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, callback) {
      writes += 1;
      chunks.push(chunk.toString());
      setImmediate(callback);
    },
  });
  return { stream, text: () => chunks.join(''), writes: () => writes };
};

describe('simulator sinks > JSON Lines', () => {
  it('given a slow stream, when events are written, then every line arrives in order and the writer waited for drain', async () => {
    const sink = slowSink();
    let drains = 0;
    sink.stream.on('drain', () => (drains += 1));
    const result = await writeJsonLines(events(), sink.stream);
    const expected = [...events()].map((e) => `${JSON.stringify(e)}\n`).join('');
    expect(sink.text()).toBe(expected);
    expect(result).toEqual({ events: 3000, bytes: Buffer.byteLength(expected) });
    expect(drains).toBeGreaterThan(0);
  });

  it('given a reader that went away (EPIPE), when writing, then it stops without an error', async () => {
    const stream = new Writable({
      write(_chunk, _enc, callback) {
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const result = await writeJsonLines(simulateFleet({ seed: 9, hosts: 3, events: 50_000 }), stream);
    expect(result.events).toBeLessThan(50_000);
  });
});

interface Call {
  url: string;
  headers: Record<string, string>;
  body: string;
}

const fakeFetch = (responses: { status: number; body: unknown; headers?: Record<string, string> }[]) => {
  const calls: Call[] = [];
  const impl = (async (url: string, init: { headers: Record<string, string>; body: string }) => {
    calls.push({ url, headers: init.headers, body: init.body });
    const r = responses.length > 1 ? responses.shift()! : responses[0]!;
    return new Response(JSON.stringify(r.body), { status: r.status, headers: r.headers ?? {} });
  }) as unknown as typeof fetch;
  return { impl, calls };
};

describe('simulator sinks > HTTP', () => {
  it('given a batch size, when sending, then NDJSON batches go out with the bearer token and the service summary is totalled', async () => {
    const { impl, calls } = fakeFetch([{ status: 200, body: { accepted: 1000, duplicate: 0, rejected: 0 } }]);
    const result = await sendToHttp(simulateFleet({ seed: 1, hosts: 2, events: 2500 }), { url: 'http://svc/v1/events', token: 't0k', batchSize: 1000, fetch: impl });
    expect(calls.map((c) => c.body.trim().split('\n').length)).toEqual([1000, 1000, 500]);
    expect(calls[0]?.headers).toMatchObject({ 'content-type': 'application/x-ndjson', authorization: 'Bearer t0k' });
    expect(result).toMatchObject({ events: 2500, accepted: 3000, requests: 3 });
  });

  it('given a target rate, when sending, then each batch waits until it is due', async () => {
    let clock = 0;
    const waits: number[] = [];
    const { impl } = fakeFetch([{ status: 200, body: { accepted: 100 } }]);
    await sendToHttp(simulateFleet({ seed: 1, hosts: 1, events: 300 }), {
      url: 'http://svc/v1/events',
      batchSize: 100,
      rate: 100,
      fetch: impl,
      now: () => clock,
      sleep: async (ms) => {
        waits.push(ms);
        clock += ms;
      },
    });
    // 100 events/s: the batches are due at 0 s, 1 s and 2 s
    expect(waits).toEqual([1000, 1000]);
  });

  it('given 503 then 200, when sending, then the batch is retried after Retry-After', async () => {
    const waits: number[] = [];
    const { impl, calls } = fakeFetch([
      { status: 503, body: {}, headers: { 'retry-after': '2' } },
      { status: 200, body: { accepted: 10 } },
    ]);
    const result = await sendToHttp(simulateFleet({ seed: 1, hosts: 1, events: 10 }), { url: 'http://svc/v1/events', fetch: impl, sleep: async (ms) => void waits.push(ms) });
    expect(calls).toHaveLength(2);
    expect(waits).toEqual([2000]);
    expect(result.accepted).toBe(10);
  });

  it('given 401, when sending, then it stops with a ValidationError naming the status', async () => {
    const { impl } = fakeFetch([{ status: 401, body: { title: 'unauthorized' } }]);
    await expect(sendToHttp(simulateFleet({ seed: 1, hosts: 1, events: 10 }), { url: 'http://svc/v1/events', fetch: impl })).rejects.toThrow(ValidationError);
  });

  it('given a service that stays down, when sending, then it gives up with UnavailableError after the attempts', async () => {
    const { impl, calls } = fakeFetch([{ status: 503, body: {} }]);
    await expect(
      sendToHttp(simulateFleet({ seed: 1, hosts: 1, events: 10 }), { url: 'http://svc/v1/events', fetch: impl, attempts: 3, sleep: async () => {} }),
    ).rejects.toThrow(UnavailableError);
    expect(calls).toHaveLength(3);
  });
});
