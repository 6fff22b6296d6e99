import { describe, expect, it } from 'vitest';
import { createFleetProjection } from '../fleetProjection.js';
import { RULE_IDS, RULES } from '../rules.js';
import { ProjectionSpecification } from '../testing/projectionSpecification.js';
import { AUDIO, GPU, NIC, ROOT_PORT, XHCI, createScenario } from '../testing/scenarioEvents.js';
import type { Violation } from '../types.js';

/** issue 18: violations an auditor can trust; a finding is a violation of severity warning or critical */
const spec = ProjectionSpecification.for(createFleetProjection());
const FA = 'qemu:3';
const IMPOSSIBLE = 'impossible on this kernel: a missing event, a kernel bug or tampering';
const findings = (vs: readonly Violation[]) => vs.filter((v) => v.severity !== 'info').map((v) => v.ruleId);

describe('Rules > trust (issue 18)', () => {
  it('trust #1: every rule states the harm it stands for and its transient policy beside its kernel reference', () => {
    for (const id of RULE_IDS) {
      const r = RULES[id] as unknown as Record<string, unknown>;
      expect(typeof r['harm'] === 'string' && r['harm'].length > 20, `${id}.harm`).toBe(true);
      expect(typeof r['transient'] === 'string' && r['transient'].length > 10, `${id}.transient`).toBe(true);
      expect(typeof r['opens'] === 'string' && typeof r['closes'] === 'string', `${id}.opens/closes`).toBe(true);
    }
  });

  it('trust #2: rules about states the upstream kernel prevents say "impossible on this kernel: a missing event, a kernel bug or tampering"', () => {
    const impossible = ['kernel-driver-in-user-group', 'split-domain', 'two-owners', 'legacy-and-cdev', 'access-granted-without-bind'] as const;
    for (const id of impossible) {
      expect((RULES[id] as unknown as { impossibleUpstream?: boolean }).impossibleUpstream, id).toBe(true);
      expect(RULES[id].title, id).toContain(IMPOSSIBLE);
    }
    // and a finding of one says so in its message
    const s = createScenario();
    spec
      .given([s.topology(), s.open(NIC, 'q:5'), s.bind(NIC, 'q:5', FA, 1), s.groupOpened(12, 'q:9')])
      .thenOpen([{ ruleId: 'legacy-and-cdev', group: 12 }])
      .then(({ state }) => expect(Object.values(state.violations.open)[0]!.message).toContain(IMPOSSIBLE));
  });

  it('trust #3: the multi-function attach (.0 then .1, one owner) is no finding and records nothing for the function about to attach', () => {
    // given both functions of the GPU bound to one iommufd
    const s = createScenario();
    const bound = [
      s.topology({ drivers: { [AUDIO]: 'vfio-pci' } }),
      s.open(GPU, 'q:5'),
      s.bind(GPU, 'q:5', FA, 1),
      s.open(AUDIO, 'q:6'),
      s.bind(AUDIO, 'q:6', FA, 2),
      s.ioasAlloc(FA, 3),
    ];
    // when .0 attaches, then .1 (and both detach again at shutdown)
    spec
      .given(bound)
      .when([s.attach(GPU, 'q:5', 3, 4), s.attach(AUDIO, 'q:6', 3, 4), s.detach(GPU, 'q:5'), s.detach(AUDIO, 'q:6')])
      // then nothing was opened at any step
      .thenOpened([]);
  });

  it('trust #4: a bridge following its group is information (severity info), not a finding', () => {
    const s = createScenario();
    spec
      .given([s.topology(), s.open(XHCI, 'q:5'), s.bind(XHCI, 'q:5', FA, 1), s.ioasAlloc(FA, 2)])
      .when([s.attach(XHCI, 'q:5', 2, 3)])
      .thenOpened([{ ruleId: 'translated-by-unattached-domain', group: 9, device: ROOT_PORT }])
      .then(({ opened }) => {
        expect(opened[0]!.severity).toBe('info');
        expect(findings(opened)).toEqual([]);
      });
  });

  it('trust #5: a second VM that opens a spare function and is refused its bind (open, -EPERM, close) is no tenant-mixing: the refusal is the finding', () => {
    // given the GPU passed through to tenant acme's vm-1
    const s = createScenario();
    const owned = [s.topology({ drivers: { [AUDIO]: 'vfio-pci' } }), s.open(GPU, 'q:5', { actor: { tenant: 'acme', vm: 'vm-1' } }), s.bind(GPU, 'q:5', FA, 1)];
    // when another VM opens the audio function, is refused the bind and closes within microseconds
    const other = { actor: { tenant: 'globex', vm: 'vm-2' } };
    const opened = s.open(AUDIO, 'q:6', other);
    const refused = s.bindFail(AUDIO, 'q:6', 'other:3', 'EPERM');
    spec
      .given(owned)
      .when([opened, refused, s.close(AUDIO, 'q:6')])
      // then no tenant-mixing: vm-2 never had access; the refused passthrough is recorded, with its evidence
      .thenOpened([{ ruleId: 'passthrough-refused-group-in-use', group: 7, device: AUDIO }])
      .thenClosed([{ ruleId: 'passthrough-refused-group-in-use', group: 7, device: AUDIO }])
      .then(({ opened }) => {
        expect(opened[0]!.severity).toBe('warning');
        expect(opened[0]!.opened.eventId).toBe(refused.id);
        expect(opened[0]!.message).toContain(`owned by iommufd ${FA}`);
      });
  });

  it('trust #6: tenant-mixing names what differs: two VMs of tenant acme are "VMs vm-1 and vm-2 (both of tenant acme)", not acme against acme', () => {
    // given one iommufd whose fds reached two VMs of one tenant (fd passing), both with access
    const s = createScenario();
    const events = [
      s.topology({ drivers: { [AUDIO]: 'vfio-pci' } }),
      s.open(GPU, 'q:5', { actor: { tenant: 'acme', vm: 'vm-1' } }),
      s.bind(GPU, 'q:5', FA, 1),
      s.open(AUDIO, 'q:6', { actor: { tenant: 'acme', vm: 'vm-2' } }),
      s.bind(AUDIO, 'q:6', FA, 2, { actor: { tenant: 'acme', vm: 'vm-2' } }),
    ];
    spec
      .given(events)
      .thenOpen([{ ruleId: 'tenant-mixing', group: 7 }])
      .then(({ state }) => expect(Object.values(state.violations.open)[0]!.message).toContain('VMs vm-1 and vm-2 (both of tenant acme)'));
  });

  it('trust #7: an exposure that lasted measurably is reported with its duration and its evidence events', () => {
    const s = createScenario();
    const t0 = 1_700_000_000_000_000_000n;
    const given = [s.topology({ interruptRemapping: false }), s.open(NIC, 'q:5')];
    const bind = s.bind(NIC, 'q:5', FA, 1, { atNs: t0 });
    const close = s.close(NIC, 'q:5', { atNs: t0 + 5_000_000_000n });
    spec
      .given([...given, bind])
      .when([close])
      .thenClosed([{ ruleId: 'unsafe-interrupts', group: 12, device: NIC }])
      .then(({ closed }) => {
        expect((closed[0] as Violation & { durationNs?: string }).durationNs).toBe('5000000000');
        expect(closed[0]!.evidence).toEqual([bind.id, close.id]);
      });
  });

  it('trust #8: a finding that a missing event caused closes when the late event arrives and fills the gap', () => {
    // given the audio unbind lost in transit (seq 2) and the GPU bind after it applied past the gap (no hold)
    const s = createScenario();
    const topology = s.topology();
    const lost = s.driverUnbound(AUDIO);
    const after = [s.open(GPU, 'q:5'), s.bind(GPU, 'q:5', FA, 1)];
    ProjectionSpecification.for(createFleetProjection({ maxHeldEvents: 0 }))
      .given([topology, ...after], { allowSequenceIssues: true })
      .thenOpen([{ ruleId: 'sequence-gap' }, { ruleId: 'kernel-driver-in-user-group', group: 7 }])
      // when the late unbind arrives
      .when([lost])
      // then both the gap and the finding it caused close, and only the fill is recorded (information)
      .thenOpen([])
      .thenClosed([{ ruleId: 'sequence-gap' }, { ruleId: 'kernel-driver-in-user-group', group: 7 }, { ruleId: 'sequence-late-arrival' }]);
  });

  it('trust #14: GET_DEVICE_FD refused on a group its own container holds (no IOMMU set yet: -EINVAL) is no finding: no other user, no blocker (kernel oracle s11 on virtio)', () => {
    // given group 12 claimed by its own legacy container, whose VFIO_SET_IOMMU has not succeeded
    const s = createScenario();
    spec
      .given([s.topology(), s.groupOpened(12, 'g:3'), s.containerOpened('c:4'), s.setContainer(12, 'g:3', 'c:4', 'legacy')])
      // when the same user asks the group for a device fd and vfio_group_has_iommu() refuses it
      .when([s.getDeviceFdFail(12, 'g:3', NIC, 'EINVAL')])
      // then nothing is opened: the caller owns the group (vfio_df_group_open: -EINVAL without an iommu)
      .thenOpened([]);
  });

  it('trust #15: a device call on an fd that was never opened (-EBADF: the cdev open failed, as on 6.1 without /dev/vfio/devices) reached no device and is no access-before-bind (kernel oracle on 6.1)', () => {
    // given a host where no device fd was ever opened (its cdev open failed -ENOENT on a release without the VFIO cdev)
    const s = createScenario();
    spec
      .given([s.topology()])
      // when the VMM still mmaps that fd number and fget() refuses it
      .when([s.access(NIC, 'q:5', 'EBADF')])
      // then nothing is opened: the call never reached the device (fs/file.c:fdget)
      .thenOpened([]);
  });

  it("trust #13: the VMM's error report joins the evidence of the refusal it reports", () => {
    // given a refused bind (group not viable: the audio function is on its kernel driver)
    const s = createScenario();
    const given = [s.topology(), s.open(GPU, 'q:5'), s.bindFail(GPU, 'q:5', FA, 'EPERM')];
    const report = s.builder.event('PassthroughErrorReported', { origin: 'qemu', group: 7, device: GPU, message: 'vfio 0000:01:00.0: group 7 is not viable' });
    // when QEMU reports the error
    spec
      .given(given)
      .when([report])
      // then the open finding cites the report beside the refused bind
      .thenOpen([{ ruleId: 'passthrough-refused-not-viable', group: 7, device: GPU }])
      .then(({ state }) => expect(Object.values(state.violations.open)[0]!.evidence).toEqual([given[2]!.id, report.id]));
  });
});
