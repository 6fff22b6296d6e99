import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { replayHistory } from '../../replay/index.js';
import { GuestRecordSchema } from './guestRecords.js';
import { toHistories } from './toEvents.js';
import { loadScenarios, loadTopologies, parseScenario } from './topologies.js';

// What the kernel answered to deploy/kernel-oracle/scenarios/pending (6.12.118 and 6.1.192 on the `vtd` machine;
// the operation records): the group node and its container while GET_DEVICE_FD fds are open. The upstream model
// answers otherwise at the steps below, so these scenarios wait outside the oracle's run until the model is fixed
// (the lead routes it: projections/kernel is not the oracle's); the fix makes each list empty, and its scenario
// moves into deploy/kernel-oracle/scenarios.
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

// a legacy container's users hold the group file only until the last device fd closes; then the node is free
const S22 = [
  'line:20 VfioGroupOpened: kernel {"ok":true}, model {"ok":false,"errno":"EBUSY"} (upstream.group.already-open)',
  'line:21 VfioGroupGetStatusIssued: kernel {"containerSet":false,"ok":true,"viable":true}, model {"ok":false,"errno":"EBADF"} (common.fd.ebadf)',
  'line:22 VfioGroupClosed: kernel {"ok":true}, model {"ok":false,"errno":"EBADF"} (common.fd.ebadf)',
];

describe('kernel oracle > pending scenarios: where the upstream model and the kernel disagree', () => {
  it('oracle16 #16: the pending scenarios parse, and none of them is in the oracle\'s run', () => {
    const dir = new URL('../../deploy/kernel-oracle/scenarios/pending/', import.meta.url);
    const pending = loadScenarios(dir.pathname).map((s) => s.name);
    expect(pending).toEqual(['s20-compat-unset-with-device-fd', 's21-compat-group-close-with-device-fd', 's22-type1-group-close-with-device-fd']);
    expect(loadScenarios().filter((s) => pending.includes(s.name))).toEqual([]);
    expect(parseScenario('t', readFileSync(new URL('s21-compat-group-close-with-device-fd.scn', dir), 'utf8')).raises).toEqual([{ line: 22, rule: 'passthrough-refused-group-in-use' }]);
  });

  it('oracle16 #16: as 6.12.118 answered, the model disagrees at exactly these steps (UNSET_CONTAINER of an iommufd with a device fd open; the group node with a compat device fd open, and after a type1 device fd\'s last close)', async () => {
    expect(await divergencesOf('6.12')).toEqual({
      // vfio_group_ioctl_unset_container counts the users of a legacy container only
      's20-compat-unset-with-device-fd': [
        'line:13 VfioGroupUnsetContainerIssued: kernel {"ok":true}, model {"ok":false,"errno":"EBUSY"} (upstream.group.unset-busy)',
        'line:16 VfioGroupGetStatusIssued: kernel {"containerSet":false,"ok":true,"viable":false}, model {"ok":true,"viable":true,"containerSet":true} (upstream.group.status)',
        'line:18 VfioGroupGetStatusIssued: kernel {"containerSet":false,"ok":true,"viable":true}, model {"ok":true,"viable":true,"containerSet":true} (upstream.group.status)',
      ],
      // the compat path takes no reference on the group file: the node's release runs at its close
      's21-compat-group-close-with-device-fd': [
        'line:18 VfioGroupOpened: kernel {"ok":true}, model {"ok":false,"errno":"EBUSY"} (upstream.group.already-open)',
        'line:19 VfioGroupClosed: kernel {"ok":true}, model {"ok":false,"errno":"EBADF"} (common.fd.ebadf)',
        'line:22 VfioDeviceBindIommufdIssued: kernel {"errno":"EPERM","ok":false}, model {"ok":false,"errno":"EBUSY"} (upstream.bind.group-node-open)',
        'line:24 VfioDeviceBindIommufdIssued: kernel {"devId":1,"ok":true}, model {"ok":false,"errno":"EBUSY"} (upstream.bind.group-node-open)',
      ],
      's22-type1-group-close-with-device-fd': S22,
    });
  });

  it('oracle16 #16: as 6.1.192 answered (no iommufd: s20 and s21 agree), the model disagrees at the type1 node after the last device fd closes', async () => {
    expect(await divergencesOf('6.1')).toEqual({ 's20-compat-unset-with-device-fd': [], 's21-compat-group-close-with-device-fd': [], 's22-type1-group-close-with-device-fd': S22 });
  });
});
