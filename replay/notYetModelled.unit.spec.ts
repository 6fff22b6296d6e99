import { describe, expect, it } from 'vitest';
import { createEventBuilder, type EventType, type IommuEvent } from '../schemas/index.js';
import { VALID_DATA } from '../schemas/testing/examples.js';
import { NOT_YET_MODELLED } from '../projections/kernel/operations.js';
import { replayHistory } from './replayer.js';
import { NIC, createRecorder } from './testing/scenarios.js';

describe('replay > catalogue events of issue 19 that no model decides yet', () => {
  it('issue 19: given a history with every recorded-not-yet-modelled operation, when replayed on upstream, then they pass through as records: no input error, no divergence, no crash', async () => {
    const r = createRecorder('h19');
    r.topology({ drivers: { [NIC]: 'vfio-pci' } });
    r.openIommufd('4242:5');
    r.openDevice(NIC, '4242:7');
    r.bind(NIC, '4242:7', '4242:5', 1);
    const b = createEventBuilder({ host: 'h19', source: 'simulator', firstSeq: r.events.length + 1 });
    const added: IommuEvent[] = [...NOT_YET_MODELLED].map((t: EventType) => b.event(t, VALID_DATA[t] as never));
    r.closeDevice(NIC, '4242:7');
    // the added events go before the close, and every seq follows the one before
    const resequenced = [...r.events.slice(0, -1), ...added, r.events.at(-1)!].map((e, i) => ({ ...e, seq: i + 1 })) as IommuEvent[];
    const report = await replayHistory({ variant: 'upstream', events: resequenced });
    expect(report.inputErrors).toEqual([]);
    expect(report.summary.divergences).toBe(0);
    expect(report.hosts[0]!.events).toBe(resequenced.length);
  });
});
