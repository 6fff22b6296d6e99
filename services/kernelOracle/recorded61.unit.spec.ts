import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { replayHistory } from '../../replay/index.js';
import { GuestRecordSchema } from './guestRecords.js';
import { toHistories } from './toEvents.js';
import { loadTopologies } from './topologies.js';

// What a 6.1 kernel answered (Debian's linux-image-6.1.0-57-amd64, 6.1.192, on the `vtd` machine, every
// scenario; the operation records only): no iommufd, no VFIO cdev, DMA ownership and the legacy group API
const records = readFileSync(new URL('./fixtures/6.1-vtd.records.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => GuestRecordSchema.parse(JSON.parse(l)));
const machine = loadTopologies().machines.find((m) => m.name === 'vtd')!;

describe('kernel oracle > a 6.1 kernel, recorded', () => {
  it('kernel oracle #11: every scenario as 6.1 ran it replays under upstream with zero divergences (open /dev/iommu and the cdev -ENOENT, cdev ioctls on a group fd -ENOTTY)', async () => {
    const histories = toHistories(machine, records);
    expect(histories.map((h) => h.kernelRelease)).toEqual(histories.map(() => '6.1.0-57-amd64'));
    expect(histories.every((h) => h.complete)).toBe(true);
    const divergences = [];
    for (const h of histories) {
      const report = await replayHistory({ variant: 'upstream', events: h.events, source: h.host });
      expect(report.inputErrors).toEqual([]);
      for (const host of report.hosts) for (const d of host.results[0]!.divergences) divergences.push({ scenario: h.scenario, labels: h.events.find((e) => e.id === d.event.id)?.labels, recorded: d.recorded, replayed: d.replayed, rule: d.rule });
    }
    expect(divergences).toEqual([]);
    expect(histories.reduce((n, h) => n + h.operations, 0)).toBe(213);
  });
});
