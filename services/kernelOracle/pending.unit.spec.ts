import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { replayHistory } from '../../replay/index.js';
import { GuestRecordSchema } from './guestRecords.js';
import { toHistories } from './toEvents.js';
import { loadScenarios, loadTopologies, parseScenario } from './topologies.js';

// What the kernel answered to s20-s22 while they waited in deploy/kernel-oracle/scenarios/pending (6.12.118 and
// 6.1.192 on the `vtd` machine; the operation records): the group node and its container while GET_DEVICE_FD fds
// are open. The upstream model answered otherwise at 10 steps on 6.12 and 3 on 6.1 (a legacy container's device
// fds hold the group file, an iommufd's do not: issue 16 kfix); fixed, the scenarios moved up into
// deploy/kernel-oracle/scenarios, where every boot judges them. The replay here keeps judging them without a boot.
const machine = loadTopologies().machines.find((m) => m.name === 'vtd')!;
const recorded = (release: string) =>
  readFileSync(new URL(`./fixtures/${release}-vtd-pending.records.jsonl`, import.meta.url), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => GuestRecordSchema.parse(JSON.parse(l)));

const divergencesOf = async (release: string): Promise<Record<string, string[]>> => {
  const out: Record<string, string[]> = {};
  for (const h of toHistories(machine, recorded(release))) {
    expect({ scenario: h.scenario, complete: h.complete }).toEqual({ scenario: h.scenario, complete: true });
    const report = await replayHistory({ variant: 'upstream', events: h.events, source: h.host });
    expect(report.inputErrors).toEqual([]);
    out[h.scenario] = report.hosts.flatMap((x) =>
      x.results[0]!.divergences.map((d) => {
        const line = h.events.find((e) => e.id === d.event.id)?.labels?.find((l) => l.startsWith('line:'));
        return `${line} ${d.event.type}: kernel ${JSON.stringify(d.recorded)}, model ${JSON.stringify(d.replayed)} (${d.rule})`;
      }),
    );
  }
  return out;
};

const S20_S22 = ['s20-compat-unset-with-device-fd', 's21-compat-group-close-with-device-fd', 's22-type1-group-close-with-device-fd'];
const agreeing = Object.fromEntries(S20_S22.map((name) => [name, []]));

describe('kernel oracle > s20-s22, once pending: the upstream model answers as the kernel did', () => {
  it('issue 16 kfix: s20-s22 are in the oracle\'s run and nothing is pending', () => {
    const dir = new URL('../../deploy/kernel-oracle/scenarios/pending/', import.meta.url);
    expect(loadScenarios(dir.pathname)).toEqual([]);
    expect(loadScenarios().map((s) => s.name).filter((n) => S20_S22.includes(n))).toEqual(S20_S22);
    expect(parseScenario('t', readFileSync(new URL('../../deploy/kernel-oracle/scenarios/s21-compat-group-close-with-device-fd.scn', import.meta.url), 'utf8')).raises).toEqual([{ line: 22, rule: 'passthrough-refused-group-in-use' }]);
  });

  it('issue 16 kfix: as 6.12.118 answered, the model agrees at every step (UNSET_CONTAINER of an iommufd with a device fd open; the group node with a compat device fd open, and after a type1 device fd\'s last close)', async () => {
    expect(await divergencesOf('6.12')).toEqual(agreeing);
  });

  it('issue 16 kfix: as 6.1.192 answered (no iommufd), the model agrees at every step, the type1 node after the last device fd closes among them', async () => {
    expect(await divergencesOf('6.1')).toEqual(agreeing);
  });
});
