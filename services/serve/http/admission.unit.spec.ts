import { describe, expect, it } from 'vitest';
import { yieldingEach } from './admission.js';
import { isHeavyRequest } from './app.js';

describe('heavy reads', () => {
  it('hardening #6: a long read gives the event loop a turn while it runs, not only at its end', async () => {
    // given a callback queued behind the current work (as an incoming /healthz would be)
    let healthAnswered = false;
    setImmediate(() => {
      healthAnswered = true;
    });
    // when a long synchronous source is consumed through yieldingEach with no time budget
    const seenAt: boolean[] = [];
    for await (const i of yieldingEach(Array.from({ length: 200 }, (_, i) => i), 0)) seenAt[i] = healthAnswered;
    // then the callback ran amid the items
    expect(seenAt[0]).toBe(false);
    expect(seenAt[199]).toBe(true);
  });

  it('hardening #6: replays, timelines, diffs, past states and analytics tables are heavy; health, ingest and current state are not', () => {
    expect(isHeavyRequest('POST', '/hosts/h1/replay', {})).toBe(true);
    expect(isHeavyRequest('POST', '/hosts/h1/Replay/', {})).toBe(true);
    expect(isHeavyRequest('GET', '/hosts/h1/groups/7/timeline', {})).toBe(true);
    expect(isHeavyRequest('GET', '/hosts/h1/devices/0000:01:00.0/timeline', {})).toBe(true);
    expect(isHeavyRequest('GET', '/hosts/h1/groups/7/diff', { from: '1' })).toBe(true);
    expect(isHeavyRequest('GET', '/hosts/h1/groups/7', { at: '2026-11-23T03:12:00Z' })).toBe(true);
    expect(isHeavyRequest('GET', '/hosts/h1/state', { position: '10' })).toBe(true);
    expect(isHeavyRequest('GET', '/violations', { at: '1' })).toBe(true);
    expect(isHeavyRequest('GET', '/analytics/tables/violations', {})).toBe(true);

    expect(isHeavyRequest('POST', '/events', {})).toBe(false);
    expect(isHeavyRequest('GET', '/hosts/h1/groups/7', {})).toBe(false);
    expect(isHeavyRequest('GET', '/hosts/h1/state', {})).toBe(false);
    expect(isHeavyRequest('GET', '/violations', {})).toBe(false);
    expect(isHeavyRequest('GET', '/hosts', {})).toBe(false);
  });
});
