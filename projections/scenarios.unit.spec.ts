import { describe, it } from 'vitest';
import { createFleetProjection } from './fleetProjection.js';
import { ProjectionSpecification } from './testing/projectionSpecification.js';
import { AUDIO, DEV_A, DEV_B, DEV_C, GPU, NIC, ROOT_PORT, USBC, USB_RMRR, XHCI, createScenario } from './testing/scenarioEvents.js';

// the reference's worked scenarios (protocol.md §3) that concern state, as given/when/then
const spec = ProjectionSpecification.for(createFleetProjection());
const FA = 'qemu:3'; // fdA: an open of /dev/iommu
const FB = 'qemu2:3'; // fdB
const HWPT3 = { kind: 'hwpt', hwptId: 3, ictx: FA };

describe('Projection > reference scenarios', () => {
  it('S1: singleton happy path (group 12): bind blocks, attach moves to the auto hwpt, detach blocks, close restores default', () => {
    const s = createScenario();
    const given = [s.topology(), s.iommufdOpened(FA), s.open(NIC, 'q:5')];
    spec
      .given(given)
      .thenGroup(12, { userOwner: null, domain: { kind: 'default' }, kernelDmaDrivers: 0 })
      .thenDevice(NIC, { openFds: ['q:5'], accessGranted: false, boundIctx: null });

    const access = s.access(NIC, 'q:5', 'EINVAL');
    spec.given(given).when([access]).thenOpened([{ ruleId: 'access-before-bind', group: 12, device: NIC }]);

    const bound = [...given, access, s.bind(NIC, 'q:5', FA, 1)];
    spec
      .given(bound)
      .thenGroup(12, { userOwner: { kind: 'iommufd', handle: FA }, userOwnerCount: 1, domain: { kind: 'blocking' } })
      .thenDevice(NIC, { boundIctx: FA, devId: 1, accessGranted: true, translatedBy: { kind: 'blocking' } })
      .thenOpen([]);

    const attached = [...bound, s.ioasAlloc(FA, 2), s.attach(NIC, 'q:5', 2, 3)];
    spec
      .given(attached)
      .thenGroup(12, { domain: HWPT3, attachedDevices: [NIC] })
      .thenDevice(NIC, { attachedHwpt: 3, attachedPt: 2, translatedBy: HWPT3 })
      .then(({ state }) => {
        const objects = state.hosts['host-a']!.iommufds[FA]!.objects;
        if (objects['3']?.auto !== true || objects['3'].ioasId !== 2) throw new Error('auto hwpt 3 on ioas 2 expected');
      });

    const detached = [...attached, s.detach(NIC, 'q:5')];
    spec
      .given(detached)
      .thenGroup(12, { domain: { kind: 'blocking' }, attachedDevices: [] })
      .then(({ state }) => {
        // the auto hwpt is freed with its last user
        if (state.hosts['host-a']!.iommufds[FA]!.objects['3'] !== undefined) throw new Error('auto hwpt 3 should be freed');
      });

    spec
      .given(detached)
      .when([s.close(NIC, 'q:5')])
      .thenGroup(12, { userOwner: null, userOwnerCount: 0, domain: { kind: 'default' } })
      .thenDevice(NIC, { openFds: [], boundIctx: null, accessGranted: false, translatedBy: { kind: 'default' } })
      .thenOpened([]);
  });

  it('S3: a repeated bind on the same fd (-EINVAL) changes nothing', () => {
    const s = createScenario();
    spec
      .given([s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1)])
      .when([s.bindFail(NIC, 'q:5', FA, 'EINVAL'), s.bindFail(NIC, 'q:5', FB, 'EINVAL')])
      .thenGroup(12, { userOwner: { kind: 'iommufd', handle: FA }, userOwnerCount: 1, twoOwners: false })
      .thenDevice(NIC, { boundIctx: FA, devId: 1 })
      .thenOpened([]);
  });

  it('S5: attaching bad pt ids (-ENOENT, -EINVAL, -EOPNOTSUPP) changes nothing', () => {
    const s = createScenario();
    spec
      .given([s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1)])
      .when([s.attachFail(NIC, 'q:5', 0xffffffff, 'ENOENT'), s.attachFail(NIC, 'q:5', 1, 'EINVAL'), s.attachFail(NIC, 'q:5', 2, 'EOPNOTSUPP')])
      .thenGroup(12, { domain: { kind: 'blocking' }, attachedDevices: [] })
      .thenDevice(NIC, { attachedHwpt: null })
      .thenOpened([]);
  });

  it('S7: re-attach is a replace: the group moves to the new hwpt, the old auto hwpt is destroyed, the same target is a no-op', () => {
    const s = createScenario();
    const given = [s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1), s.ioasAlloc(FA, 2), s.ioasAlloc(FA, 4), s.attach(NIC, 'q:5', 2, 3)];
    spec
      .given(given)
      .when([s.attach(NIC, 'q:5', 4, 5), s.attach(NIC, 'q:5', 4, 5)])
      .thenGroup(12, { domain: { kind: 'hwpt', hwptId: 5, ictx: FA }, attachedDevices: [NIC] })
      .thenDevice(NIC, { attachedHwpt: 5, selfAttachedHwpt: 5, attachedPt: 4 })
      .thenOpened([])
      .then(({ state }) => {
        const objects = state.hosts['host-a']!.iommufds[FA]!.objects;
        if (objects['3'] !== undefined || objects['5']?.auto !== true) throw new Error('hwpt 3 destroyed, auto hwpt 5 present expected');
      });
  });

  it('S9: closing /dev/iommu first changes nothing; the device close then releases everything and the ctx', () => {
    const s = createScenario();
    const given = [s.topology(), s.iommufdOpened(FA), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1), s.ioasAlloc(FA, 2), s.attach(NIC, 'q:5', 2, 3)];
    const ctxClosed = s.iommufdClosed(FA);
    spec
      .given(given)
      .when([ctxClosed])
      .thenGroup(12, { userOwner: { kind: 'iommufd', handle: FA }, domain: HWPT3 })
      .thenDevice(NIC, { boundIctx: FA, translatedBy: HWPT3 })
      .then(({ state }) => {
        const c = state.hosts['host-a']!.iommufds[FA];
        if (!c || c.open !== false || c.devices[0] !== NIC) throw new Error('ctx kept alive (closed) by the bound device');
      });
    spec
      .given([...given, ctxClosed])
      .when([s.close(NIC, 'q:5')])
      .thenGroup(12, { userOwner: null, domain: { kind: 'default' } })
      .then(({ state }) => {
        if (state.hosts['host-a']!.iommufds[FA] !== undefined) throw new Error('ctx released after the last device');
      });
  });

  it('S11: group 7 becomes viable when the audio driver unbinds; the GPU bind blocks both functions', () => {
    const s = createScenario();
    const refused = [s.topology(), s.open(GPU, 'q:5'), s.bindFail(GPU, 'q:5', FA, 'EPERM')];
    spec
      .given(refused)
      .thenGroup(7, { kernelDmaDrivers: 1, userOwner: null })
      .thenOpen([{ ruleId: 'passthrough-refused-not-viable', group: 7, device: GPU }])
      .then(({ state }) => {
        const v = Object.values(state.violations.open)[0]!;
        if (!v.message.includes(`${AUDIO} (snd_hda_intel)`)) throw new Error(`message must name the blocker: ${v.message}`);
      });
    const audioUnbound = s.driverUnbound(AUDIO);
    spec
      .given(refused)
      .when([audioUnbound])
      .thenGroup(7, { kernelDmaDrivers: 0 })
      .thenClosed([{ ruleId: 'passthrough-refused-not-viable', group: 7, device: GPU }]);
    spec
      .given([...refused, audioUnbound])
      .when([s.bind(GPU, 'q:5', FA, 1)])
      .thenGroup(7, { userOwner: { kind: 'iommufd', handle: FA }, domain: { kind: 'blocking' } })
      .thenDevice(AUDIO, { driver: null, translatedBy: { kind: 'blocking' } })
      .thenDevice(GPU, { translatedBy: { kind: 'blocking' } })
      .thenOpened([]);
  });

  const group7Owned = (s: ReturnType<typeof createScenario>) => [
    s.topology({ drivers: { [AUDIO]: null } }),
    s.open(GPU, 'q:5'),
    s.bind(GPU, 'q:5', FA, 1),
  ];

  it('S13: a second member joins via vfio: owner_cnt 1→2, no domain change; a bind to another ctx is refused', () => {
    const s = createScenario();
    spec
      .given(group7Owned(s))
      .when([s.driverBound(AUDIO, 'vfio-pci'), s.open(AUDIO, 'q:6'), s.bind(AUDIO, 'q:6', FA, 2)])
      .thenGroup(7, { userOwnerCount: 2, kernelDmaDrivers: 0, domain: { kind: 'blocking' } })
      .thenDevice(AUDIO, { driver: 'vfio-pci', kernelDma: false, boundIctx: FA })
      .thenOpened([]);
    const s2 = createScenario();
    spec
      .given([...group7Owned(s2), s2.driverBound(AUDIO, 'vfio-pci'), s2.open(AUDIO, 'q:6')])
      .when([s2.bindFail(AUDIO, 'q:6', FB, 'EPERM')])
      .thenGroup(7, { userOwner: { kind: 'iommufd', handle: FA }, userOwnerCount: 1, twoOwners: false })
      // issue 18: the refused passthrough is a finding (another owner holds the group), not silence
      .thenOpened([{ ruleId: 'passthrough-refused-group-in-use', group: 7, device: AUDIO }]);
  });

  const group7Attached = (s: ReturnType<typeof createScenario>) => [
    ...group7Owned(s),
    s.ioasAlloc(FA, 2),
    s.ioasAlloc(FA, 4),
    s.attach(GPU, 'q:5', 2, 3),
    s.driverBound(AUDIO, 'vfio-pci'),
    s.open(AUDIO, 'q:6'),
    s.bind(AUDIO, 'q:6', FA, 2),
  ];

  it('S15: a sibling attaching a different IOAS is refused (-EINVAL): no state change', () => {
    const s = createScenario();
    spec
      .given(group7Attached(s))
      .when([s.attachFail(AUDIO, 'q:6', 4, 'EINVAL')])
      .thenGroup(7, { domain: HWPT3, attachedDevices: [GPU] })
      .thenDevice(AUDIO, { attachedHwpt: null, translatedBy: HWPT3 })
      .thenOpened([])
      .thenClosed([]);
  });

  it('S17: a non-last detach leaves the device translated by the group hwpt; the last detach blocks the group', () => {
    const s = createScenario();
    const both = [...group7Attached(s), s.attach(AUDIO, 'q:6', 2, 3)];
    const gpuDetach = s.detach(GPU, 'q:5');
    spec
      .given(both)
      .when([gpuDetach])
      .thenGroup(7, { domain: HWPT3, attachedDevices: [AUDIO] })
      .thenDevice(GPU, { attachedHwpt: null, translatedBy: HWPT3 })
      // issue 18: the owner's own function between its detach and its sibling's is part of one sequence: nothing recorded
      .thenOpened([]);
    spec
      .given([...both, gpuDetach])
      .when([s.detach(AUDIO, 'q:6')])
      .thenGroup(7, { domain: { kind: 'blocking' }, attachedDevices: [] })
      .thenDevice(GPU, { translatedBy: { kind: 'blocking' } })
      .thenClosed([])
      .thenOpen([]);
  });

  it('S19: an unattached sibling joins the group hwpt (ATTACH ioas 2 → hwpt 3) with no domain change', () => {
    const s = createScenario();
    spec
      .given([...group7Attached(s), s.attachFail(AUDIO, 'q:6', 4, 'EINVAL')])
      // issue 18: the audio function is bound to the hwpt's own iommufd, about to attach: the owner's sequence, nothing recorded
      .thenOpen([])
      .when([s.attach(AUDIO, 'q:6', 2, 3)])
      .thenGroup(7, { domain: HWPT3, attachedDevices: [GPU, AUDIO] })
      .thenDevice(AUDIO, { attachedHwpt: 3, selfAttachedHwpt: 3 })
      .thenClosed([])
      .thenOpen([]);
  });

  it('S21: the last unbind detaches and releases the group to its default domain; a kernel driver may bind again', () => {
    const s = createScenario();
    const given = [...group7Attached(s), s.attach(AUDIO, 'q:6', 2, 3), s.close(GPU, 'q:5')];
    spec
      .given(given)
      .thenGroup(7, { userOwnerCount: 1, domain: HWPT3, attachedDevices: [AUDIO] })
      .when([s.close(AUDIO, 'q:6'), s.driverBound(GPU, 'nouveau')])
      .thenGroup(7, { userOwner: null, userOwnerCount: 0, domain: { kind: 'default' }, attachedDevices: [], kernelDmaDrivers: 1 })
      .thenDevice(GPU, { driver: 'nouveau', kernelDma: true, translatedBy: { kind: 'default' } })
      .thenOpen([]);
  });

  it('S23: legacy group API with an iommufd container: SET_CONTAINER takes no ownership, GET_DEVICE_FD is refused -EPERM', () => {
    const s = createScenario();
    spec
      .given([s.topology(), s.groupOpened(7, 'q:9'), s.setContainer(7, 'q:9', FA, 'iommufd')])
      .thenGroup(7, { legacyGroupOpen: true, container: { handle: FA, kind: 'iommufd' }, userOwner: null, domain: { kind: 'default' } })
      .when([s.getDeviceFdFail(7, 'q:9', GPU, 'EPERM')])
      .thenOpened([{ ruleId: 'passthrough-refused-not-viable', group: 7, device: GPU }]);
  });

  it('S25: the legacy group node opened twice: the second open (-EBUSY) leaves the first holder', () => {
    const s = createScenario();
    spec
      .given([s.topology(), s.groupOpened(12, 'p1:9')])
      .when([s.groupOpened(12, 'p2:9', 'EBUSY')])
      .thenGroup(12, { legacyGroupOpen: true, legacyGroupFd: 'p1:9', userOwner: null })
      .thenOpened([]);
  });

  it('S27: a function hot-added into an owned, attached group lands in the current hwpt; its kernel driver probe is refused', () => {
    const s = createScenario();
    spec
      .given([...group7Owned(s), s.ioasAlloc(FA, 2), s.attach(GPU, 'q:5', 2, 3), s.driverUnbound(AUDIO)])
      .when([s.deviceAdded(USBC, 7), s.driverBindRefused(USBC, 'xhci_hcd', 'EBUSY')])
      .thenGroup(7, { members: [GPU, AUDIO, USBC], domain: HWPT3 })
      .thenDevice(USBC, { group: 7, driver: null, translatedBy: HWPT3 })
      .thenOpened([
        { ruleId: 'translated-by-unattached-domain', group: 7, device: USBC },
        { ruleId: 'kernel-bind-into-user-group', group: 7, device: USBC },
      ]);
  });

  it('S29: a bridge in the group (pcieport is managed DMA): bind succeeds and the root port is translated by the user hwpt', () => {
    const s = createScenario();
    const bound = [s.topology(), s.open(XHCI, 'q:5'), s.bind(XHCI, 'q:5', FA, 1)];
    spec
      .given(bound)
      .thenGroup(9, { kernelDmaDrivers: 0, domain: { kind: 'blocking' } })
      .thenDevice(ROOT_PORT, { driver: 'pcieport', kernelDma: false, translatedBy: { kind: 'blocking' } })
      .when([s.ioasAlloc(FA, 2), s.attach(XHCI, 'q:5', 2, 3)])
      .thenDevice(ROOT_PORT, { translatedBy: HWPT3 })
      .thenOpened([{ ruleId: 'translated-by-unattached-domain', group: 9, device: ROOT_PORT }]);
  });

  it('S31: vfio-pci unbind completes only after the user closes: the close releases, then the unbind clears the driver', () => {
    const s = createScenario();
    spec
      .given([s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1)])
      .when([s.close(NIC, 'q:5'), s.driverUnbound(NIC)])
      .thenGroup(12, { userOwner: null, domain: { kind: 'default' }, kernelDmaDrivers: 0 })
      .thenDevice(NIC, { driver: null, openFds: [] })
      .thenOpened([]);
  });

  it('S33: a require_direct device refuses the blocking domain (-EINVAL): owner not set', () => {
    const s = createScenario();
    spec
      .given([s.topology({ drivers: { [USB_RMRR]: 'vfio-pci' } }), s.open(USB_RMRR, 'q:5')])
      .when([s.bindFail(USB_RMRR, 'q:5', FA, 'EINVAL')])
      .thenGroup(15, { userOwner: null, domain: { kind: 'default' } })
      .thenDevice(USB_RMRR, { boundIctx: null, accessGranted: false })
      .thenOpened([])
      .then(({ state }) => {
        if (state.hosts['host-a']!.topology[USB_RMRR]?.requireDirect !== true) throw new Error('requireDirect kept from the topology');
      });
  });

  it('S35: three-device group with one kernel driver: refused, viable after unbind, shared hwpt, non-last detach', () => {
    const s = createScenario();
    const refused = [s.topology(), s.open(DEV_A, 'q:5'), s.bindFail(DEV_A, 'q:5', FA, 'EPERM')];
    spec.given(refused).thenOpen([{ ruleId: 'passthrough-refused-not-viable', group: 30, device: DEV_A }]);
    const owned = [...refused, s.driverUnbound(DEV_B), s.bind(DEV_A, 'q:5', FA, 1)];
    spec
      .given(owned)
      .thenGroup(30, { kernelDmaDrivers: 0, userOwnerCount: 1, domain: { kind: 'blocking' } })
      .thenDevice(DEV_C, { translatedBy: { kind: 'blocking' } })
      .thenOpen([]);
    const both = [...owned, s.driverBindRefused(DEV_C, 'igb'), s.driverBound(DEV_B, 'vfio-pci'), s.open(DEV_B, 'q:6'), s.bind(DEV_B, 'q:6', FA, 2)];
    spec
      .given(both)
      .thenGroup(30, { userOwnerCount: 2 })
      .thenOpen([{ ruleId: 'kernel-bind-into-user-group', group: 30, device: DEV_C }]);
    const attached = [...both, s.ioasAlloc(FA, 2), s.attach(DEV_A, 'q:5', 2, 3), s.attach(DEV_B, 'q:6', 2, 3)];
    const detachB = s.detach(DEV_B, 'q:6');
    spec
      .given(attached)
      .thenGroup(30, { domain: HWPT3, attachedDevices: [DEV_A, DEV_B] })
      .when([detachB])
      .thenGroup(30, { domain: HWPT3, attachedDevices: [DEV_A] })
      // issue 18: DEV_B is the owner's own device (bound to the hwpt's iommufd): its non-last detach records nothing
      .thenOpened([]);
    spec
      .given([...attached, detachB])
      .when([s.detach(DEV_A, 'q:5')])
      .thenGroup(30, { domain: { kind: 'blocking' }, attachedDevices: [] })
      // DEV_C (no driver) followed its group: information, closed when the group leaves the hwpt
      .thenClosed([{ ruleId: 'translated-by-unattached-domain', group: 30, device: DEV_C }]);
  });

  it('S37: explicit HWPT lifecycle: manual hwpt attached, destroy refused while attached, replaced, then destroyed', () => {
    const s = createScenario();
    const given = [s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1), s.ioasAlloc(FA, 2), s.hwptAlloc(FA, 1, 2, 6)];
    spec
      .given(given)
      .thenGroup(12, { domain: { kind: 'blocking' } })
      .then(({ state }) => {
        const o = state.hosts['host-a']!.iommufds[FA]!.objects['6'];
        if (!o || o.auto || o.device !== NIC || o.ioasId !== 2) throw new Error('manual hwpt 6 for dev 1 on ioas 2 expected');
      });
    spec
      .given([...given, s.attach(NIC, 'q:5', 6, 6), s.destroy(FA, 6, 'EBUSY')])
      .thenGroup(12, { domain: { kind: 'hwpt', hwptId: 6, ictx: FA } })
      .when([s.attach(NIC, 'q:5', 2, 7), s.destroy(FA, 6)])
      .thenGroup(12, { domain: { kind: 'hwpt', hwptId: 7, ictx: FA } })
      .then(({ state }) => {
        const objects = state.hosts['host-a']!.iommufds[FA]!.objects;
        if (objects['6'] !== undefined || objects['7']?.auto !== true) throw new Error('hwpt 6 destroyed, auto hwpt 7 attached');
      });
  });

  it('S39: a PASID attach is recorded group-wide and does not change the group domain', () => {
    const s = createScenario();
    spec
      .given([...group7Owned(s), s.ioasAlloc(FA, 2)])
      .when([s.attach(GPU, 'q:5', 2, 3, 5)])
      .thenGroup(7, { pasids: { '5': 3 }, domain: { kind: 'blocking' } })
      .thenDevice(GPU, { pasids: { '5': 3 }, attachedHwpt: null })
      .thenOpened([]);
    const s2 = createScenario();
    spec
      .given([...group7Owned(s2), s2.ioasAlloc(FA, 2), s2.attach(GPU, 'q:5', 2, 3, 5)])
      .when([s2.close(GPU, 'q:5')])
      .thenGroup(7, { pasids: {}, userOwner: null, domain: { kind: 'default' } });
  });
});
