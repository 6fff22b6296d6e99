import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEventBuilder, type IommuEvent } from '../schemas/index.js';
import { recordedFleet } from '../replay/testing/simulatedFleets.js';
import { createFleetProjection } from './fleetProjection.js';
import { fromSnapshot, toSnapshotJson } from './snapshots.js';
import { generateHistory } from './testing/generateHistory.js';
import type { FleetState } from './types.js';

const projection = createFleetProjection();

/**
 * Each host's state folded on its own (a state per host, as the live projection keeps them), `roundTrip`: every
 * host's state written to a snapshot and read back before each of its events (what a restart and the live
 * projection's eviction do); the snapshot JSON of each host's state at the end.
 */
const foldPerHost = (events: readonly IommuEvent[], roundTrip: boolean): Record<string, string> => {
  const states = new Map<string, FleetState>();
  let position = 0n;
  for (const e of events) {
    position++;
    const before = states.get(e.host);
    const state = before === undefined ? projection.initialState() : roundTrip ? fromSnapshot(JSON.parse(toSnapshotJson(before)), { owned: true }) : before;
    states.set(e.host, projection.evolve(state, e, position));
  }
  return Object.fromEntries([...states].map(([host, state]) => [host, toSnapshotJson(state)]));
};

const A = '0000:03:00.0';
const B = '0000:04:00.0';
const device = (name: string, group: number) => ({ device: name, vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'igb', group });

describe('a snapshot round trip leaves a host\'s later state as the straight fold has it', () => {
  it('given a later sysfs read that moves a device to another group, when the device is bound to vfio-pci with a round trip before each event, then every record equals the straight fold\'s and the old group no longer lists the device', () => {
    const b = createEventBuilder({ host: 'h1', source: 'collector' });
    const capabilities = { iommu: true, interruptRemapping: true };
    const events = [
      b.event('TopologySnapshotTaken', { capabilities, groups: [{ group: 7, devices: [A] }, { group: 12, devices: [B] }], devices: [device(A, 7), device(B, 12)] }),
      // a read that lists A in group 12 and no group 7: A has left group 7 (a device is in one group)
      b.event('TopologySnapshotTaken', { capabilities, groups: [{ group: 12, devices: [A, B] }], devices: [device(A, 12), device(B, 12)] }),
      b.event('DriverUnbound', { device: A }),
      b.event('DriverBound', { device: A, driver: 'vfio-pci' }),
    ];

    const straight = foldPerHost(events, false);
    const withRoundTrips = foldPerHost(events, true);

    expect(withRoundTrips).toEqual(straight);
    const groups = JSON.parse(withRoundTrips.h1!).state.hosts.h1.groups as Record<string, { members: string[] } | undefined>;
    expect(groups['12']?.members).toContain(A);
    expect(groups['7']?.members ?? []).not.toContain(A);
  });

  it('given simulated fleets recorded one after the other (later reads move devices between groups), when each host\'s state makes a round trip before each of its events, then each host\'s state equals the straight fold\'s', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (first, second) => {
        const events = [...recordedFleet({ seed: first, hosts: 6, events: 500 }), ...recordedFleet({ seed: second, hosts: 6, events: 300 })];
        expect(foldPerHost(events, true)).toEqual(foldPerHost(events, false));
      }),
      // the seeds of the history that showed it (helper hosts6, session 15), then random ones
      { numRuns: 12, examples: [[10, 11]] },
    );
  });

  it('given the generated benchmark history, when each host\'s state makes a round trip before each of its events, then each host\'s state equals the straight fold\'s', () => {
    const events = generateHistory({ events: 3000, hosts: 3 });
    expect(foldPerHost(events, true)).toEqual(foldPerHost(events, false));
  });
});
