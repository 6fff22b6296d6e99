import { describe, expect, it } from 'vitest';
import type { GuestRecord } from './guestRecords.js';
import { toHistories } from './toEvents.js';
import { loadTopologies } from './topologies.js';

const machine = loadTopologies().machines.find((m) => m.name === 'vtd')!;
const DEV = '0000:01:02.0';
const begin: GuestRecord = {
  t: 'begin',
  scenario: 'hp',
  release: '6.12.118',
  cmdline: '',
  real: 1e18,
  mono: 1e9,
  groups: [{ group: 2, type: 'DMA', devices: [DEV] }],
  devices: [{ device: DEV, vendor: '0x8086', deviceId: '0x100e', class: '0x020000', headerType: 0, group: 2, driver: 'e1000', cdev: null }],
};
const op = (line: number, argv: string[], extra: Record<string, unknown>): GuestRecord => ({ t: 'op', line, mistake: false, mono: 1e9 + line, real: 1e18 + line, argv, errno: 0, ...extra });
const typesOf = (records: GuestRecord[]) => {
  const [h] = toHistories(machine, [begin, ...records, { t: 'end', scenario: 'hp', ops: records.length }]);
  return { events: h!.events.slice(1).map((e) => `${e.type} ${JSON.stringify(e.data)}`), operations: h!.operations, unexpressed: h!.unexpressed.map((u) => u.reason) };
};

describe('kernel oracle > remove and rescan steps as catalogue events', () => {
  it('given a remove of a device bound to a driver, when converted, then the collector-visible unbind comes before the removal from its group, and only the unbind counts as an operation', () => {
    expect(typesOf([op(1, ['remove', '$br2'], { device: DEV, group: 2, driver: 'e1000' })])).toEqual({
      events: [`DriverUnbound {"device":"${DEV}","driver":"e1000"}`, `DeviceRemovedFromGroup {"device":"${DEV}","group":2}`],
      operations: 1,
      unexpressed: [],
    });
  });

  it('given a rescan that re-added nothing of the scenario, or a remove the kernel refused, when converted, then each is named as having no event, never dropped silently', () => {
    expect(typesOf([op(1, ['rescan'], { added: [] }), { ...(op(2, ['remove', '$br2'], { device: DEV, group: 2, driver: null }) as object), errno: 2 } as GuestRecord]).unexpressed).toEqual([
      'rescan added no device of the scenario: nothing to record',
      'remove failed with ENOENT: DeviceRemovedFromGroup has no outcome',
    ]);
  });
});
