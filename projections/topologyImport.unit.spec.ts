import { describe, expect, it } from 'vitest';
import { createEventBuilder } from '../schemas/index.js';
import { createFleetProjection } from './fleetProjection.js';
import { ProjectionSpecification } from './testing/projectionSpecification.js';
import { NIC, createScenario } from './testing/scenarioEvents.js';
import { fromSnapshot, toSnapshotJson } from './snapshots.js';
import { foldEvents } from './timeTravel.js';
import type { HostState } from './types.js';

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

describe('a periodic sysfs read of a host where nothing changed (issue 23)', () => {
  const data = () => ({
    capabilities: { iommu: true, interruptRemapping: true, kernelRelease: '6.12.10', managedDmaDrivers: ['vfio-pci', 'pci-stub'] },
    groups: [
      { group: 7, devices: ['0000:01:00.0', '0000:01:00.1'], subGroups: [['0000:01:00.0'], ['0000:01:00.1']] },
      { group: 12, devices: ['0000:03:00.0'] },
    ],
    devices: [
      { device: '0000:01:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'nouveau', group: 7, maxPasids: 8, pasidAttach: true },
      { device: '0000:01:00.1', vendorId: '10de', deviceId: '10f8', classCode: '040300', driver: 'snd_hda_intel', group: 7 },
      { device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'igb', group: 12 },
    ],
  });
  /** the objects a read writes into the host: its own records, its kernel model's and its read model's */
  const objectsOf = (h: HostState) => ({
    capabilities: h.capabilities,
    topology: h.topology,
    topologyRecords: Object.values(h.topology),
    modelCaps: h.kernel!.caps,
    modelDevices: [...h.kernel!.devices.values()],
    modelGroups: [...h.kernel!.groups.values()],
    modelMembers: [...h.kernel!.groups.values()].map((g) => g.devices),
    groups: Object.values(h.groups),
    devices: Object.values(h.devices),
  });

  /** a host folded from one full read, and what it holds then */
  const foldedOnce = () => {
    const b = createEventBuilder({ host: 'h1', source: 'collector' });
    const p = createFleetProjection();
    const state = p.evolve(p.initialState(), b.event('TopologySnapshotTaken', data()));
    const h = state.hosts.h1!;
    return { b, p, state, h, before: objectsOf(h) };
  };

  it('given a host folded from a full read, when the same read comes again, then its topology, capabilities and model records are the same objects', () => {
    const { b, p, state, h, before } = foldedOnce();

    p.evolve(state, b.event('TopologySnapshotTaken', data()));

    const after = objectsOf(h);
    for (const [k, v] of Object.entries(before)) {
      if (Array.isArray(v)) v.forEach((x, i) => expect((after[k as keyof typeof after] as unknown[])[i], `${k}[${i}]`).toBe(x));
      else expect(after[k as keyof typeof after], k).toBe(v);
    }
  });

  it('given a host folded from a full read, when a read differs in one device, then that device is written again and the rest kept', () => {
    const { b, p, state, h, before } = foldedOnce();
    const changed = data();
    changed.devices[2] = { ...changed.devices[2]!, maxPasids: 4 };

    p.evolve(state, b.event('TopologySnapshotTaken', changed));

    expect(h.topology['0000:03:00.0']).toEqual({ headerType: null, requireDirect: false, maxPasids: 4, pasidAttach: false });
    expect(h.kernel!.devices.get('0000:03:00.0')!.maxPasids).toBe(4);
    expect(h.topology['0000:01:00.0']).toBe(before.topologyRecords[0]);
    expect(h.kernel!.devices.get('0000:01:00.0')).toBe(before.modelDevices[0]);
    expect(h.capabilities).toBe(before.capabilities);
    // what it shows is what a host that only had this read shows
    const only = foldEvents(createFleetProjection(), [createEventBuilder({ host: 'h1', source: 'collector' }).event('TopologySnapshotTaken', changed)]).hosts.h1!;
    expect({ topology: h.topology, capabilities: h.capabilities, groups: h.groups, devices: h.devices, model: [...h.kernel!.devices.values()] }).toEqual({
      topology: only.topology,
      capabilities: only.capabilities,
      groups: only.groups,
      devices: only.devices,
      model: [...only.kernel!.devices.values()],
    });
  });

  it('given two hosts read with the same devices, when folded, then a device without PASIDs has one frozen topology record across the hosts, and a device with PASIDs a record of its own', () => {
    const p = createFleetProjection();
    const read = (host: string) => createEventBuilder({ host, source: 'collector' }).event('TopologySnapshotTaken', data());
    const state = p.evolve(p.evolve(p.initialState(), read('h1')), read('h2'));
    const [h1, h2] = [state.hosts.h1!, state.hosts.h2!];

    // 0000:01:00.1 and 0000:03:00.0: no PASIDs, the same record on both hosts (and both devices)
    expect(h2.topology['0000:03:00.0']).toBe(h1.topology['0000:03:00.0']);
    expect(h1.topology['0000:01:00.1']).toBe(h1.topology['0000:03:00.0']);
    expect(Object.isFrozen(h1.topology['0000:03:00.0'])).toBe(true);
    expect(h1.topology['0000:03:00.0']).toEqual({ headerType: null, requireDirect: false, maxPasids: 0, pasidAttach: false });
    // 0000:01:00.0 has 8 PASIDs: its own record on each host
    expect(h2.topology['0000:01:00.0']).not.toBe(h1.topology['0000:01:00.0']);
    expect(h2.topology['0000:01:00.0']).toEqual({ headerType: null, requireDirect: false, maxPasids: 8, pasidAttach: true });
  });

  it('given two hosts read with the same devices, when their snapshot JSON is read back (a restart), then the devices without PASIDs share the frozen records again', () => {
    const p = createFleetProjection();
    const read = (host: string) => createEventBuilder({ host, source: 'collector' }).event('TopologySnapshotTaken', data());
    const folded = p.evolve(p.evolve(p.initialState(), read('h1')), read('h2'));

    const back = fromSnapshot(JSON.parse(toSnapshotJson(folded)), { owned: true });

    expect(back.hosts.h1!.topology['0000:03:00.0']).toBe(folded.hosts.h1!.topology['0000:03:00.0']);
    expect(back.hosts.h2!.topology['0000:01:00.1']).toBe(folded.hosts.h1!.topology['0000:03:00.0']);
    expect(back.hosts.h2!.topology['0000:01:00.0']).toEqual(folded.hosts.h2!.topology['0000:01:00.0']);
    expect(back.hosts.h2!.topology['0000:01:00.0']).not.toBe(back.hosts.h1!.topology['0000:01:00.0']);
  });
});
