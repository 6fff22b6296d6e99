import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replayHistory } from '../../replay/index.js';
import { compareSteps, expectedObservation, runCollectorOn } from './collectorInputs.js';
import { GuestRecordSchema } from './guestRecords.js';
import { toHistories } from './toEvents.js';
import { loadTopologies } from './topologies.js';

// What 6.12.118 answered on the `vtd` machine to s14-hotplug-live-group (sysfs remove and rescan of a member
// of the bridge group, first while a legacy container holds the group, then once released): every record of
// the boot, the collector's raw inputs included
const records = readFileSync(new URL('./fixtures/6.12-vtd-s14-hotplug.records.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => GuestRecordSchema.parse(JSON.parse(l)));
const machine = loadTopologies().machines.find((m) => m.name === 'vtd')!;
const BR2 = '0000:01:02.0';
const work = mkdtempSync(join(tmpdir(), 'oracle-hotplug-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('kernel oracle > hot-unplug and re-add in a live group (6.12, recorded)', () => {
  it('given the recorded remove and rescan steps, when converted, then the collector-visible events come out and the upstream model replays them with zero divergences', async () => {
    const [h] = toHistories(machine, records);
    expect(h!.unexpressed.filter((u) => !u.reason.startsWith('driver_override write'))).toEqual([]);
    const steps = h!.events.filter((e) => e.source === 'vmm' && e.type !== 'TopologySnapshotTaken').map((e) => `${e.labels?.find((l) => l.startsWith('line:'))} ${e.type} ${JSON.stringify(e.data)}`);
    expect(steps).toEqual(
      expect.arrayContaining([
        `line:11 DeviceRemovedFromGroup {"device":"${BR2}","group":2}`,
        `line:12 DeviceAddedToGroup {"device":"${BR2}","group":2}`,
        `line:13 DriverBindRefused {"device":"${BR2}","driver":"e1000","errno":"EBUSY"}`,
        `line:17 DeviceRemovedFromGroup {"device":"${BR2}","group":2}`,
        `line:18 DeviceAddedToGroup {"device":"${BR2}","group":2}`,
        `line:18 DriverBound {"device":"${BR2}","driver":"e1000"}`,
      ]),
    );
    // the rescan into the user-owned group bound no driver (really_probe refused e1000 -EBUSY, silently)
    expect(steps.some((s) => s.startsWith('line:12 DriverBound'))).toBe(false);
    const report = await replayHistory({ variant: 'upstream', events: h!.events, source: h!.host });
    expect(report.inputErrors).toEqual([]);
    expect(report.hosts.flatMap((x) => x.results[0]!.divergences)).toEqual([]);
    expect(report.summary.operations).toBe(h!.operations);
  });

  it('kernel oracle hotplug #1: the snapshot the collector takes on a PCI remove/add uevent reads the tree after that step, so members and drivers agree with the recorded steps at every step', async () => {
    const [h] = toHistories(machine, records);
    const boot = await runCollectorOn('vtd', records, work);
    const observed = boot.scenarios[0]!;
    // one start-up snapshot and one per PCI remove or add uevent (two removes, two re-adds)
    expect(observed.events.filter((e) => e.type === 'TopologySnapshotTaken')).toHaveLength(5);
    const compared = compareSteps(h!, observed);
    expect(compared.map((c) => c.line)).toEqual(expect.arrayContaining([11, 12, 17, 18]));
    for (const step of compared) expect({ at: step.line, ...step.observed }).toEqual({ at: step.line, ...expectedObservation(step.recorded, step.observed) });
    const after = compared.find((c) => c.line === 12)!;
    expect(after.observed.drivers[BR2]).toBeNull();
    expect(compared.find((c) => c.line === 18)!.observed.drivers[BR2]).toBe('e1000');
  });
});
