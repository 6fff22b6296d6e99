import { describe, expect, it } from 'vitest';
import { createEventBuilder } from '../schemas/index.js';
import { createFleetProjection } from './fleetProjection.js';
import { ProjectionSpecification } from './testing/projectionSpecification.js';
import { NIC, createScenario } from './testing/scenarioEvents.js';
import { foldEvents } from './timeTravel.js';

const spec = ProjectionSpecification.for(createFleetProjection());

describe('what a snapshot could not observe', () => {
  it('given interrupt remapping not observed (null), when a device binds, then no unsafe-interrupts violation is raised', () => {
    const s = createScenario();
    spec
      .given([s.topology({ interruptRemapping: null }), s.open(NIC, 'q:5')])
      .when([s.bind(NIC, 'q:5', 'qemu:3', 1)])
      .thenOpened([]);
  });

  it('given a partial import snapshot, when folded after a full one, then it adds what it lists and removes nothing', () => {
    const b = createEventBuilder({ host: 'h1', source: 'collector' });
    const full = b.event('TopologySnapshotTaken', {
      capabilities: { iommu: true, interruptRemapping: true },
      groups: [
        { group: 7, devices: ['0000:01:00.0', '0000:01:00.1'] },
        { group: 12, devices: ['0000:03:00.0'] },
      ],
      devices: [
        { device: '0000:01:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'nouveau', group: 7 },
        { device: '0000:01:00.1', vendorId: '10de', deviceId: '10f8', classCode: '040300', driver: 'snd_hda_intel', group: 7 },
        { device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'igb', group: 12 },
      ],
    });
    const imported = b.event('TopologySnapshotTaken', {
      capabilities: { iommu: true, interruptRemapping: null },
      groups: [{ group: 7, devices: ['0000:01:00.0', '0000:01:00.1'] }],
      devices: [{ device: '0000:01:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '0300', driver: 'vfio-pci', group: 7 }],
      partial: true,
    });
    const state = foldEvents(createFleetProjection(), [full, imported]);
    const host = state.hosts.h1!;
    expect(Object.keys(host.devices).sort()).toEqual(['0000:01:00.0', '0000:01:00.1', '0000:03:00.0']);
    expect(host.devices['0000:01:00.0']!.driver).toBe('vfio-pci');
    expect(host.groups['7']!.kernelDmaDrivers).toBe(1);
    expect(host.capabilities!.interruptRemapping).toBe(true);
  });
});
