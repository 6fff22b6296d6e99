import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName, parseEvent, type IommuEvent } from '../../../schemas/index.js';
import { startTestService, type TestService } from '../../serve/testing/service.js';

const T0 = 1_763_870_000_000_000_000n;

const opened = (host: string, n: number): IommuEvent[] => {
  const b = createEventBuilder({ host, source: 'collector', startNs: T0 });
  return Array.from({ length: n }, () => {
    const r = parseEvent(b.raw('IommufdOpened', { ictx: '1:1', outcome: { ok: true } }));
    if (!r.ok) throw r.error;
    return r.value;
  });
};

const post = (svc: TestService, events: readonly IommuEvent[]) =>
  svc.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });

const gapCount = async (svc: TestService, host: string): Promise<number> => {
  const text = await (await svc.call('/metrics', { as: 'read' })).text();
  const m = new RegExp(`iommutrail_sequence_gaps_total\\{host="${host}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
};

/**
 * Events reach the store on several paths (HTTP, the CLI, the Kafka ingester, the demo loader); the sequence
 * facts (the ingest answer's warnings, /v1/hosts/{h}/sequence, the gap metric, the sequence violations) are one
 * set of facts, derived from the store's events whoever appended them.
 */
describe('ingest > sequence facts, whichever path stored the events', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ metrics: { perHost: true } });
  });
  afterAll(async () => {
    await svc.dispose();
  });

  it('issue 16: given a host\'s middle events stored by another path (Kafka, demo loader), when HTTP sends the next one, then the answer warns of no gap and no gap is counted', async () => {
    const events = opened('mixed', 6);
    expect((await post(svc, events.slice(0, 2))).status).toBe(200);
    // what the Kafka ingester and the demo loader do: append to the host's stream
    await svc.store.appendToStream(hostStreamName('mixed'), events.slice(2, 5));
    const res = await post(svc, events.slice(5));
    const body = (await res.json()) as { results: { status: string; warnings?: string[] }[] };
    expect(body.results[0]).toMatchObject({ status: 'accepted' });
    expect(body.results[0]!.warnings).toBeUndefined();
    expect(await gapCount(svc, 'mixed')).toBe(0);
    const seq = (await (await svc.call('/v1/hosts/mixed/sequence', { as: 'read' })).json()) as { maxSeq: number; gaps: number[][] };
    expect(seq).toMatchObject({ maxSeq: 6, gaps: [] });
  });

  it('issue 16: given a gap in a host\'s events stored by another path (Kafka, demo loader), then /sequence, the gap metric and the open sequence-gap violation agree', async () => {
    const events = opened('kafkagap', 5);
    await svc.store.appendToStream(hostStreamName('kafkagap'), [events[0]!, events[1]!, events[4]!]);
    await svc.live.notify();
    const seq = (await (await svc.call('/v1/hosts/kafkagap/sequence', { as: 'read' })).json()) as { maxSeq: number; gaps: number[][] };
    expect(seq).toMatchObject({ maxSeq: 5, gaps: [[3, 4]] });
    const violations = (await (await svc.call('/v1/violations?host=kafkagap&status=open&rule=sequence-gap', { as: 'read' })).json()) as { items: { ruleId: string; message: string }[] };
    expect(violations.items.map((v) => v.message)).toEqual([expect.stringMatching(/^events 3\.\.4 from kafkagap are missing/)]);
    expect(await gapCount(svc, 'kafkagap')).toBe(1);
  });
});
