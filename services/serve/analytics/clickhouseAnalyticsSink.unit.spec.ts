import { describe, expect, it, vi } from 'vitest';
import { createEventBuilder } from '../../../schemas/index.js';
import type { SinkBatch } from './analyticsSink.js';
import { getClickHouseAnalyticsSink } from './clickhouseAnalyticsSink.js';
import type { AnalyticsClient } from './clickhouseClient.js';

/** a client whose inserts wait until the test lets them go, recording when each table's insert began and ended */
const heldClient = (): { ac: AnalyticsClient; log: string[]; releaseAll(): void; pending(): number } => {
  const gates: (() => void)[] = [];
  const log: string[] = [];
  const client = {
    insert: async ({ table }: { table: string }) => {
      const name = table.slice(table.indexOf('.') + 1);
      log.push(`start ${name}`);
      await new Promise<void>((resolve) => gates.push(resolve));
      log.push(`end ${name}`);
      return {};
    },
  };
  return {
    ac: { client, database: 'db' } as unknown as AnalyticsClient,
    log,
    releaseAll: () => gates.splice(0).forEach((release) => release()),
    pending: () => gates.length,
  };
};

describe('Analytics > ClickHouse sink', () => {
  it('sink #23: the four tables of a batch are inserted side by side, and the checkpoint only once all of them are in', async () => {
    // given a batch with rows for each of the four tables
    const b = createEventBuilder({ host: 'h1' });
    const e = b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' });
    const at = { eventId: e.id, globalPosition: 1n, timeNs: BigInt(e.time) };
    const batch: SinkBatch = {
      events: [{ event: e, streamName: 'host-h1', streamPosition: 0n, globalPosition: 1n }],
      violations: [{ key: 'k', host: 'h1', rule: 'r', severity: 'warning', message: 'm', opened: at, evidence: [e.id], version: 1n }],
      groupStates: [{ host: 'h1', group: 1, at, eventType: e.type, state: 'kernel-idle', owner: '', domain: 'default', ownerCount: 0, devices: [], detail: '{}' }],
      compliance: [{ host: 'h1', day: '2024-01-01', opened: 1, closed: 0, maxOpen: 1, openAtEnd: 1, events: 1n, version: 1n }],
      checkpoint: { subscriber: 's', position: 1n },
    };
    const held = heldClient();
    // when written: the four inserts are under way at once, none of them ended, the checkpoint not begun
    const write = getClickHouseAnalyticsSink(held.ac).write(batch);
    await vi.waitFor(() => expect(held.pending()).toBe(4));
    expect(held.log).toEqual(['start events', 'start violations', 'start group_states', 'start compliance_daily']);
    held.releaseAll();
    // then the checkpoint goes alone, last
    await vi.waitFor(() => expect(held.pending()).toBe(1));
    expect(held.log.slice(4, 8).sort()).toEqual(['end compliance_daily', 'end events', 'end group_states', 'end violations']);
    expect(held.log.at(-1)).toBe('start sink_checkpoints');
    held.releaseAll();
    await write;
    expect(held.log.at(-1)).toBe('end sink_checkpoints');
  });
});
