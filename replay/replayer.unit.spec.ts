import { describe, expect, it } from 'vitest';
import { replayHistory } from './replayer.js';
import { CORPUS, NIC, createRecorder } from './testing/scenarios.js';
import { VARIANT_NAMES } from '../projections/kernel/types.js';

describe('replayer', () => {
  it('given every corpus history, when replayed on upstream, then every recorded outcome matches (recordings follow the reference)', async () => {
    for (const s of CORPUS) {
      const r = await replayHistory({ variant: 'upstream', events: s.events, source: s.name });
      expect(r.inputErrors, s.name).toEqual([]);
      expect(r.summary.divergences, s.name).toBe(0);
    }
  });

  it('given the same history, when replayed twice on every variant, then the reports are deep-equal (determinism)', async () => {
    for (const variant of VARIANT_NAMES) {
      for (const s of CORPUS) {
        const a = await replayHistory({ variant, events: s.events, compareWith: 'upstream' });
        const b = await replayHistory({ variant, events: s.events, compareWith: 'upstream' });
        expect(b).toEqual(a);
        expect(JSON.parse(JSON.stringify(a))).toEqual(a);
      }
    }
  });

  it('given a divergence, then it is the root cause and later ones are marked as its consequences', async () => {
    const s7 = CORPUS.find((s) => s.scenario === 'S7')!;
    const r = await replayHistory({ variant: 'stage2', events: s7.events });
    const [root, ...rest] = r.hosts[0]!.results[0]!.divergences;
    expect(root?.consequenceOf).toBeUndefined();
    expect(root?.rule).toBe('seed.attach.already-attached');
    expect(rest.length).toBeGreaterThan(0);
    for (const d of rest) expect(d.consequenceOf).toEqual(root?.event);
  });

  it('given recorded ids that differ from the kernel allocation, then ids are mapped and later references still resolve', async () => {
    const r = createRecorder('ids');
    r.topology({ drivers: { [NIC]: 'vfio-pci' } });
    r.openIommufd('fdA');
    r.openDevice(NIC, 'n0');
    r.bind(NIC, 'n0', 'fdA', 11);
    r.allocIoas('fdA', 22);
    r.attach(NIC, 'n0', 22, 33);
    r.destroy('fdA', 22, 'EBUSY');
    r.attach(NIC, 'n0', 33, 33);
    const report = await replayHistory({ variant: 'upstream', events: r.events });
    const result = report.hosts[0]!.results[0]!;
    expect(result.divergences).toEqual([]);
    expect(result.renamedIds).toBe(3);
    expect(result.finalGroups['12']?.devices[NIC]?.domain).toBe('hwpt 33@fdA');
  });

  it('given an impossible sequence, then an input error names the line and field and the rest still replays', async () => {
    const r = createRecorder('bad');
    r.topology({ drivers: { [NIC]: 'vfio-pci' } });
    r.openIommufd('fdA');
    r.bind(NIC, 'never-opened', 'fdA', 1);
    r.openDevice(NIC, 'n0');
    const lines = r.events.map((event, i) => ({ ok: true as const, line: i + 1, event }));
    const report = await replayHistory({ variant: 'upstream', events: lines, source: 'h.jsonl' });
    expect(report.inputErrors).toEqual([expect.objectContaining({ source: 'h.jsonl', line: 3, path: 'data.deviceFd' })]);
    expect(report.summary.operations).toBe(2);
  });

  it('given an operation before any topology, then the input error names the type field', async () => {
    const r = createRecorder('early');
    r.openIommufd('fdA');
    const report = await replayHistory({ variant: 'upstream', events: r.events });
    expect(report.inputErrors[0]?.path).toBe('type');
  });

  it('given two variants, then operations decided differently and the final state per group are compared', async () => {
    const s15 = CORPUS.find((s) => s.scenario === 'S15')!;
    const r = await replayHistory({ variant: 'stage2', compareWith: 'stage3', events: s15.events });
    const cmp = r.hosts[0]!.comparison!;
    expect(cmp.operations.map((d) => d.rules)).toEqual([{ stage2: 'stage2.attach.single-ioasid', stage3: 'seed.attach.first' }]);
    expect(cmp.groups.map((g) => `${g.group} ${g.field}`)).toEqual(['7 attached', '7 devices.0000:01:00.1']);
  });

  it('given a legacy crash, then the host verdict is crashed and later operations are not replayed', async () => {
    const s27 = CORPUS.find((s) => s.scenario === 'S27')!;
    const r = await replayHistory({ variant: 'legacy', events: s27.events });
    const host = r.hosts.find((h) => h.host === 'lab-s27-container')!.results[0]!;
    expect(host.verdict).toBe('crashed');
    expect(host.crash?.rule).toBe('legacy.notifier.bug-on');
    expect(host.operations).toBeLessThan(r.hosts.find((h) => h.host === 'lab-s27-container')!.operations);
  });
});
