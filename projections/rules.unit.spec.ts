import { describe, expect, it } from 'vitest';
import { createFleetProjection } from './fleetProjection.js';
import { RULES, RULE_IDS } from './rules.js';
import { ProjectionSpecification } from './testing/projectionSpecification.js';
import { AUDIO, DEV_A, GPU, NIC, ROOT_PORT, XHCI, createScenario } from './testing/scenarioEvents.js';

const spec = ProjectionSpecification.for(createFleetProjection());
const FA = 'qemu:3';
const FB = 'other:3';

describe('Rules > catalogue', () => {
  it('every rule id has a definition with severity, title, reference and guarded behaviour', () => {
    for (const id of RULE_IDS) {
      const r = RULES[id];
      expect(r.id).toBe(id);
      expect(['critical', 'warning', 'info']).toContain(r.severity);
      expect(r.title.length).toBeGreaterThan(10);
      expect(r.reference).toMatch(/§|S\d|seq/);
      expect(r.guards.length).toBeGreaterThan(10);
    }
  });
});

describe('Rules > raised by the event that made them true, closed by the one that made them false', () => {
  it('kernel-driver-in-user-group: a kernel driver recorded bound into an owned group, closed at unbind', () => {
    const s = createScenario();
    const owned = [s.topology({ drivers: { [AUDIO]: null } }), s.open(GPU, 'q:5'), s.bind(GPU, 'q:5', FA, 1)];
    const bound = s.driverBound(AUDIO, 'snd_hda_intel');
    spec
      .given(owned)
      .when([bound])
      .thenGroup(7, { kernelDmaDrivers: 1, userOwner: { kind: 'iommufd', handle: FA } })
      .thenOpened([
        { ruleId: 'kernel-driver-in-user-group', group: 7 },
        { ruleId: 'kernel-bind-into-user-group', group: 7, device: AUDIO },
      ])
      .then(({ opened }) => {
        const v = opened.find((o) => o.ruleId === 'kernel-driver-in-user-group')!;
        expect(v.severity).toBe('critical');
        expect(v.opened.eventId).toBe(bound.id);
        expect(v.message).toContain('lost events');
      });
    spec
      .given([...owned, bound])
      .when([s.driverUnbound(AUDIO)])
      .thenClosed([{ ruleId: 'kernel-driver-in-user-group', group: 7 }]);
  });

  it('kernel-driver-in-user-group: a claim recorded as successful while a kernel driver is bound (should be -EPERM)', () => {
    const s = createScenario();
    spec
      .given([s.topology(), s.open(GPU, 'q:5')])
      .when([s.bind(GPU, 'q:5', FA, 1)])
      .thenOpened([{ ruleId: 'kernel-driver-in-user-group', group: 7 }]);
  });

  it('passthrough-refused-not-viable: a legacy SET_CONTAINER -EPERM names the blocker; closed when the group is claimed', () => {
    const s = createScenario();
    const refused = [s.topology(), s.containerOpened('c:1'), s.groupOpened(7, 'q:9'), s.setContainer(7, 'q:9', 'c:1', 'legacy', 'EPERM')];
    spec
      .given(refused)
      .thenOpen([{ ruleId: 'passthrough-refused-not-viable', group: 7 }])
      .then(({ state }) => expect(Object.values(state.violations.open)[0]!.message).toContain(`${AUDIO} (snd_hda_intel)`))
      .when([s.driverUnbound(AUDIO), s.setContainer(7, 'q:9', 'c:1', 'legacy')])
      .thenGroup(7, { userOwner: { kind: 'legacy-container', handle: 'c:1' }, domain: { kind: 'blocking' } })
      .thenClosed([{ ruleId: 'passthrough-refused-not-viable', group: 7 }]);
  });

  it('kernel-bind-into-user-group: a refused probe in an owned group, closed when ownership is released', () => {
    const s = createScenario();
    const given = [s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1), s.driverBindRefused(NIC, 'igb', 'EBUSY')];
    spec.given(given).thenOpen([{ ruleId: 'kernel-bind-into-user-group', group: 12, device: NIC }]);
    spec
      .given(given)
      .when([s.close(NIC, 'q:5')])
      .thenClosed([{ ruleId: 'kernel-bind-into-user-group', group: 12, device: NIC }]);
  });

  it('kernel-bind-into-user-group: a refused probe in a group nobody owns is not a violation', () => {
    const s = createScenario();
    spec.given([s.topology(), s.driverBindRefused(NIC, 'igb', 'EPROBE_DEFER')]).thenOpen([]);
  });

  const group7Bound = (s: ReturnType<typeof createScenario>, ictxB = FA) => [
    s.topology({ drivers: { [AUDIO]: 'vfio-pci' } }),
    s.open(GPU, 'q:5'),
    s.bind(GPU, 'q:5', FA, 1),
    s.open(AUDIO, 'q:6'),
    s.bind(AUDIO, 'q:6', ictxB, 2),
  ];

  it('split-domain: an attach recorded onto a second hwpt (upstream -EINVAL), closed when the group is single again', () => {
    const s = createScenario();
    const split = [...group7Bound(s), s.ioasAlloc(FA, 2), s.ioasAlloc(FA, 4), s.attach(GPU, 'q:5', 2, 3)];
    const audioAttach = s.attach(AUDIO, 'q:6', 4, 5);
    spec
      .given(split)
      .when([audioAttach])
      .thenGroup(7, { domain: { kind: 'hwpt', hwptId: 3, ictx: FA }, attachedDevices: [GPU, AUDIO] })
      .thenDevice(AUDIO, { attachedHwpt: 5, translatedBy: { kind: 'hwpt', hwptId: 3, ictx: FA } })
      // issue 18: the audio function's own attach to another hwpt records it (information) beside the finding
      .thenOpened([
        { ruleId: 'split-domain', group: 7 },
        { ruleId: 'translated-by-unattached-domain', group: 7, device: AUDIO },
      ])
      // it asked for hwpt 5 but the IOMMU still translates it with the group's hwpt 3
      .thenOpen([
        { ruleId: 'split-domain', group: 7 },
        { ruleId: 'translated-by-unattached-domain', group: 7, device: AUDIO },
      ]);
    spec
      .given([...split, audioAttach])
      .when([s.detach(AUDIO, 'q:6')])
      .thenClosed([
        { ruleId: 'split-domain', group: 7 },
        { ruleId: 'translated-by-unattached-domain', group: 7, device: AUDIO },
      ]);
  });

  it('two-owners: a second iommufd claim recorded as successful; closed when that owner leaves', () => {
    const s = createScenario();
    const given = group7Bound(s, FB);
    spec
      .given(given)
      .thenGroup(7, { userOwner: { kind: 'iommufd', handle: FA }, extraOwners: [{ kind: 'iommufd', handle: FB }], twoOwners: true, userOwnerCount: 2 })
      .thenOpen([{ ruleId: 'two-owners', group: 7 }])
      .when([s.close(AUDIO, 'q:6')])
      .thenGroup(7, { twoOwners: false, extraOwners: [], userOwnerCount: 1 })
      .thenClosed([{ ruleId: 'two-owners', group: 7 }]);
  });

  it('two-owners and legacy-and-cdev: a legacy container and a cdev bind on one group', () => {
    const s = createScenario();
    spec
      .given([s.topology(), s.containerOpened('c:1'), s.groupOpened(12, 'q:9'), s.setContainer(12, 'q:9', 'c:1', 'legacy'), s.open(NIC, 'q:5')])
      .thenGroup(12, { userOwner: { kind: 'legacy-container', handle: 'c:1' }, domain: { kind: 'blocking' } })
      .when([s.bind(NIC, 'q:5', FA, 1)])
      .thenOpened([
        { ruleId: 'two-owners', group: 12 },
        { ruleId: 'legacy-and-cdev', group: 12 },
      ]);
  });

  it('legacy-and-cdev: opening the group node while a member is cdev-bound; closed when the group fd closes', () => {
    const s = createScenario();
    const given = [s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1), s.groupOpened(12, 'q:9')];
    spec.given(given).thenOpen([{ ruleId: 'legacy-and-cdev', group: 12 }]);
    spec
      .given(given)
      .when([s.groupClosed(12, 'q:9')])
      .thenGroup(12, { legacyGroupOpen: false })
      .thenClosed([{ ruleId: 'legacy-and-cdev', group: 12 }]);
  });

  it('translated-by-unattached-domain: a sibling replace moves an attached device; closed when it attaches the new hwpt', () => {
    const s = createScenario();
    const given = [...group7Bound(s), s.ioasAlloc(FA, 2), s.ioasAlloc(FA, 4), s.attach(GPU, 'q:5', 2, 3), s.attach(AUDIO, 'q:6', 2, 3)];
    const replace = s.attach(GPU, 'q:5', 4, 5);
    spec
      .given(given)
      .when([replace])
      .thenGroup(7, { domain: { kind: 'hwpt', hwptId: 5, ictx: FA }, attachedDevices: [GPU, AUDIO] })
      .thenDevice(AUDIO, { attachedHwpt: 5, selfAttachedHwpt: 3 })
      .thenOpened([{ ruleId: 'translated-by-unattached-domain', group: 7, device: AUDIO }])
      .then(({ opened, state }) => {
        expect(opened[0]!.message).toContain("sibling's replace");
        // the old auto hwpt lost its last user with the replace
        expect(state.hosts['host-a']!.iommufds[FA]!.objects['3']).toBeUndefined();
      });
    spec
      .given([...given, replace])
      .when([s.attach(AUDIO, 'q:6', 4, 5)])
      .thenClosed([{ ruleId: 'translated-by-unattached-domain', group: 7, device: AUDIO }]);
  });

  it('access-granted-without-bind: a successful access on an unbound cdev fd; closed when the fd closes', () => {
    const s = createScenario();
    const given = [s.topology(), s.open(NIC, 'q:5'), s.access(NIC, 'q:5')];
    spec.given(given).thenOpen([{ ruleId: 'access-granted-without-bind', group: 12, device: NIC }]);
    spec
      .given(given)
      .when([s.close(NIC, 'q:5')])
      .thenClosed([{ ruleId: 'access-granted-without-bind', group: 12, device: NIC }]);
  });

  it('access-before-bind: not raised for a bound fd or a legacy group-path fd', () => {
    const s = createScenario();
    spec
      .given([
        s.topology(),
        s.open(NIC, 'q:5'),
        s.bind(NIC, 'q:5', FA, 1),
        s.access(NIC, 'q:5'),
        s.containerOpened('c:1'),
        s.groupOpened(9, 'q:9'),
        s.setContainer(9, 'q:9', 'c:1', 'legacy'),
        s.getDeviceFd(9, 'q:9', XHCI, 'q:10'),
        s.access(XHCI, 'q:10'),
      ])
      .thenOpen([]);
  });

  it('unsafe-interrupts: a bind on a host without isolated MSI; closed at unbind', () => {
    const s = createScenario();
    const given = [s.topology({ interruptRemapping: false, allowUnsafeInterrupts: true }), s.open(NIC, 'q:5')];
    const bind = s.bind(NIC, 'q:5', FA, 1);
    spec
      .given(given)
      .when([bind])
      .thenOpened([{ ruleId: 'unsafe-interrupts', group: 12, device: NIC }]);
    spec
      .given([...given, bind])
      .when([s.close(NIC, 'q:5')])
      .thenClosed([{ ruleId: 'unsafe-interrupts', group: 12, device: NIC }]);
  });

  describe('tenant-mixing (policy as data)', () => {
    const given = (s: ReturnType<typeof createScenario>) => [
      s.topology({ drivers: { [AUDIO]: 'vfio-pci' } }),
      s.open(GPU, 'q:5', { actor: { tenant: 'acme', vm: 'vm-1' } }),
      s.bind(GPU, 'q:5', FA, 1),
    ];
    // issue 18: an open fd gives no access; mixing is a second tenant with access (here an fd of the same iommufd passed on)
    it('raised when a second tenant gets access to a device of the group, closed when it leaves', () => {
      const s = createScenario();
      const base = given(s);
      const intruder = [s.open(AUDIO, 'q:6', { actor: { tenant: 'globex', vm: 'vm-2' } }), s.bind(AUDIO, 'q:6', FA, 2, { actor: { tenant: 'globex', vm: 'vm-2' } })];
      spec
        .given(base)
        .when(intruder)
        .thenOpened([{ ruleId: 'tenant-mixing', group: 7 }]);
      spec
        .given([...base, ...intruder])
        .when([s.close(AUDIO, 'q:6')])
        .thenClosed([{ ruleId: 'tenant-mixing', group: 7 }]);
    });
    it('the same tenant on two VMs counts when VMs are isolated, not when only tenants are', () => {
      const s = createScenario();
      const events = [...given(s), s.open(AUDIO, 'q:6', { actor: { tenant: 'acme', vm: 'vm-2' } }), s.bind(AUDIO, 'q:6', FA, 2)];
      spec.given(events).thenOpen([{ ruleId: 'tenant-mixing', group: 7 }]);
      ProjectionSpecification.for(createFleetProjection({ tenancy: { isolateBy: ['tenant'] } }))
        .given(events)
        .thenOpen([]);
    });
    it('an exempt group and a disabled policy raise nothing', () => {
      const s = createScenario();
      const events = [...given(s), s.open(AUDIO, 'q:6', { actor: { tenant: 'globex' } })];
      ProjectionSpecification.for(createFleetProjection({ tenancy: { isolateBy: ['tenant'], exempt: [{ group: 7 }] } }))
        .given(events)
        .thenOpen([]);
      ProjectionSpecification.for(createFleetProjection({ tenancy: false })).given(events).thenOpen([]);
    });
  });

  describe('managed-DMA drivers are data', () => {
    it('without pcieport in the set, the root port makes group 9 non-viable', () => {
      const managed = ['vfio-pci'];
      const s = createScenario();
      ProjectionSpecification.for(createFleetProjection({ managedDmaDrivers: managed }))
        .given([s.topology(), s.open(XHCI, 'q:5'), s.bindFail(XHCI, 'q:5', FA, 'EPERM')])
        .thenGroup(9, { kernelDmaDrivers: 1 })
        .thenOpen([{ ruleId: 'passthrough-refused-not-viable', group: 9, device: XHCI }])
        .then(({ state }) => expect(Object.values(state.violations.open)[0]!.message).toContain(`${ROOT_PORT} (pcieport)`));
    });
    it("a host's topology snapshot overrides the set", () => {
      const s = createScenario();
      spec.given([s.topology({ managedDmaDrivers: ['vfio-pci', 'pcieport', 'ixgbe'] })]).thenGroup(30, { kernelDmaDrivers: 0 });
    });
  });

  describe('sequence gaps and reordering', () => {
    it('hardening #1: a gap raises sequence-gap and holds the events after it: the state is the state before the gap', () => {
      const s = createScenario();
      const first = [s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1)];
      s.open(DEV_A, 'q:7'); // minted and lost
      const afterGap = s.driverUnbound(AUDIO);
      ProjectionSpecification.for(createFleetProjection())
        .given(first, { allowSequenceIssues: true })
        .when([afterGap])
        .thenOpened([{ ruleId: 'sequence-gap' }])
        .thenGroup(12, { uncertain: false })
        .thenGroup(7, { uncertain: false })
        .thenDevice(AUDIO, { driver: 'snd_hda_intel' })
        .then(({ state, opened }) => {
          const host = state.hosts['host-a']!;
          expect(host.uncertain).toBeNull();
          expect([host.appliedSeq, host.lastSeq, host.held.map((x) => x.event.id)]).toEqual([3, 5, [afterGap.id]]);
          expect(opened[0]!.message).toContain('events 4..4');
        });
    });
    it('a gap past the hold bound marks the host and its groups uncertain and raises sequence-gap; the next snapshot closes it', () => {
      const s = createScenario();
      const first = [s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1)];
      s.open(DEV_A, 'q:7'); // minted and lost
      const afterGap = s.driverUnbound(AUDIO);
      const opts = { allowSequenceIssues: true };
      // no event may wait: the one after the gap is applied past it at once (a gap that never fills)
      ProjectionSpecification.for(createFleetProjection({ maxHeldEvents: 0 }))
        .given(first, opts)
        .when([afterGap])
        .thenOpened([{ ruleId: 'sequence-gap' }])
        .thenGroup(12, { uncertain: true })
        .thenGroup(7, { uncertain: true })
        .then(({ state, opened }) => {
          expect(state.hosts['host-a']!.uncertain?.since.eventId).toBe(afterGap.id);
          expect(opened[0]!.message).toContain('events 4..4');
        });
      ProjectionSpecification.for(createFleetProjection())
        .given([...first, afterGap], opts)
        .when([s.topology()])
        .thenClosed([{ ruleId: 'sequence-gap' }])
        .thenGroup(7, { uncertain: false })
        // ownership is not visible in sysfs: the owned group stays uncertain until released
        .thenGroup(12, { uncertain: true })
        .then(({ state }) => expect(state.hosts['host-a']!.uncertain).toBeNull());
    });
    it('hardening #1: an event that arrives late fills its gap, the event held after it follows in seq order: the state is exact', () => {
      const s = createScenario();
      const a = s.topology();
      const b = s.open(NIC, 'q:5');
      const c = s.bind(NIC, 'q:5', FA, 1);
      ProjectionSpecification.for(createFleetProjection())
        .given([a, c], { allowSequenceIssues: true })
        .when([b])
        .thenClosed([{ ruleId: 'sequence-gap' }, { ruleId: 'sequence-late-arrival' }])
        .thenOpen([])
        .thenDevice(NIC, { openFds: ['q:5'], boundFd: 'q:5', boundIctx: FA })
        .then(({ state }) => {
          const host = state.hosts['host-a']!;
          expect([host.lastSeq, host.appliedSeq, host.held]).toEqual([3, 3, []]);
          expect(host.uncertain).toBeNull();
        });
    });
    it('an event that arrives after the events beyond its gap were applied (bound passed) is still applied; it fills its gap and marks the host uncertain', () => {
      const s = createScenario();
      const a = s.topology();
      const b = s.open(NIC, 'q:5');
      const c = s.bind(NIC, 'q:5', FA, 1);
      ProjectionSpecification.for(createFleetProjection({ maxHeldEvents: 0 }))
        .given([a, c], { allowSequenceIssues: true })
        .when([b])
        .thenClosed([{ ruleId: 'sequence-gap' }, { ruleId: 'sequence-late-arrival' }])
        .thenOpen([])
        .thenDevice(NIC, { openFds: ['q:5'] })
        .then(({ state }) => {
          expect(state.hosts['host-a']!.lastSeq).toBe(3);
          expect(state.hosts['host-a']!.uncertain?.since.eventId).toBe(c.id);
        });
    });
    it('a seq recorded twice (not missing) raises sequence-out-of-order until the next topology snapshot', () => {
      const s = createScenario();
      const first = [s.topology(), s.open(NIC, 'q:5')];
      const again = { ...first[1]!, id: '01900000-0000-7000-8000-000000000001' } as (typeof first)[number];
      ProjectionSpecification.for(createFleetProjection())
        .given(first, { allowSequenceIssues: true })
        .when([again])
        .thenOpened([{ ruleId: 'sequence-out-of-order' }]);
    });

    // one client posting one host's events in chunks, each pair of chunks swapped: 3,4 arrive as 4,3
    const swappedChunks = (chunk: number, chunks: number) => {
      const s = createScenario();
      const events = [s.topology()];
      for (let i = 1; i < chunk * chunks; i++) events.push(i % 2 === 1 ? s.open(NIC, `q:${i}`) : s.close(NIC, `q:${i - 1}`));
      const delivered = [];
      for (let c = 0; c < chunks; c += 2) delivered.push(...events.slice((c + 1) * chunk, (c + 2) * chunk), ...events.slice(c * chunk, (c + 1) * chunk));
      return { events, delivered };
    };

    it('hardening #1: a late chunk that fills a gap settles it: no sequence violation stays open, each fill is recorded as information', () => {
      const { events, delivered } = swappedChunks(50, 8);
      ProjectionSpecification.for(createFleetProjection())
        .given(delivered, { allowSequenceIssues: true })
        .thenOpen([])
        .then(({ state }) => {
          const host = state.hosts['host-a']!;
          expect(host.sequence.gaps).toEqual([]);
          expect(host.sequenceViolations).toEqual([]);
          expect(host.lastSeq).toBe(events.at(-1)!.seq);
          const closed = state.violations.closed;
          // a host's history starts at seq 1: the first chunk pair opens the gap before the first seq seen
          expect(closed.filter((v) => v.ruleId === 'sequence-gap').map((v) => v.key)).toEqual([
            'sequence-gap|host-a|1..50',
            'sequence-gap|host-a|101..150',
            'sequence-gap|host-a|201..250',
            'sequence-gap|host-a|301..350',
          ]);
          const late = closed.filter((v) => v.ruleId === 'sequence-late-arrival');
          expect(late.map((v) => [v.severity, v.opened.eventId === v.closed?.eventId])).toEqual(Array.from({ length: 4 }, () => ['info', true]));
        });
    });

    it('hardening #1: a gap stays open while any of its seqs is missing, and closes with the last of them', () => {
      const { events } = swappedChunks(10, 2);
      const [head, rest] = [events.slice(0, 5), events.slice(5)];
      const missing = rest.slice(0, 5);
      ProjectionSpecification.for(createFleetProjection())
        .given([...head, ...rest.slice(5), missing[4]!, missing[0]!, missing[2]!, missing[1]!], { allowSequenceIssues: true })
        .thenOpen([{ ruleId: 'sequence-gap' }])
        .then(({ state }) => expect(state.hosts['host-a']!.sequence.gaps.map((g) => [g.from, g.to])).toEqual([[9, 9]]))
        .when([missing[3]!])
        .thenClosed([{ ruleId: 'sequence-gap' }, { ruleId: 'sequence-late-arrival' }])
        .thenOpen([]);
    });
  });
});
