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

describe('legacy group path with an iommufd as container (§1.6, invariant 8)', () => {
  it('given two GET_DEVICE_FD opens of one device, when the first fd closes, then the group stays owned until the last closes', () => {
    const s = createScenario();
    const given = [
      s.topology(),
      s.iommufdOpened('q:3'),
      s.groupOpened(12, 'q:9'),
      s.setContainer(12, 'q:9', 'q:3', 'iommufd'),
      s.getDeviceFd(12, 'q:9', NIC, 'q:10'),
      s.getDeviceFd(12, 'q:9', NIC, 'q:11'),
    ];
    const first = s.close(NIC, 'q:10');
    const last = s.close(NIC, 'q:11');
    // the first open attached the compat IOAS (drivers/vfio/group.c vfio_df_group_open: `if (df->iommufd &&
    // device->open_count == 1) vfio_iommufd_compat_attach_ioas(...)`; SET_CONTAINER made it:
    // iommufd_vfio_compat_ioas_create), and the binding and attachment last until the last close (vfio_df_close
    // runs the last-close path only when open_count drops to 0). Issue 16: the projection shows the model's
    // domain; its own transitions left the group on its blocking domain.
    spec.given(given).when([first]).thenGroup(12, { userOwner: { kind: 'iommufd', handle: 'q:3' }, domain: { kind: 'hwpt', ictx: 'q:3' }, attachedDevices: [NIC] });
    spec.given([...given, first]).when([last]).thenGroup(12, { userOwner: null, domain: { kind: 'default' } });
  });
});
