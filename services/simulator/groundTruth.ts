/**
 * The simulator's ground truth (issue 18): every mistake it injects is labelled with the rule that must fire
 * on it, where (host, group, device), and from which event until which; nothing else is labelled. A history
 * and its labels measure the violation rules' precision and recall (projections' `scoreFindings`).
 */
import type { IommuEventInput } from '../../schemas/index.js';
import type { LabelEventRef, MistakeLabel, RuleId } from '../../projections/index.js';
import type { Mistake } from './hostLife.js';

/**
 * The rule each injected mistake must fire, and the events that bound it.
 *
 * Operator mistakes (the kernel decides them by its rules, `mistakeRate`):
 * - audio left on its kernel driver: the VM's BIND_IOMMUFD is refused (-EPERM, group not viable), from that
 *   refusal until the operator's fix unbinds the audio driver;
 * - a second VM pointed at a spare function of a group another VM owns: its BIND is refused (-EPERM, group in
 *   use), from that refusal until it closes the device fd;
 * - a kernel driver bound back too early (the VM still owns the group): the probe is refused (-EBUSY), from that
 *   refusal until the VM's last device close releases the group;
 * - an access before BIND: refused (-EINVAL), from that access until the bind of the same fd;
 * - allow_unsafe_interrupts=1 on a host without interrupt remapping: every device bound to an iommufd there,
 *   from its bind until its fd closes;
 * - one legacy container's group shared by two tenants' processes: from the second tenant's device fd until
 *   the first device fd closes.
 *
 * Recorder defects (`defectRate`: the kernel did not do what the record says, or the record is incomplete):
 * - a trace event the collector lost (its seq is taken): from the next event until the agent's resync snapshot;
 * - a seq the collector used twice: from the repeat until the agent's resync snapshot;
 * - a delivery that swapped two events: from the early event until the late one (its seq is lower: it fills);
 * - a driver change whose udev records were lost (a device still seen on its kernel driver): from the bind that
 *   claimed its group until the VM's last device close releases it (the resync snapshot follows);
 * - a refused access, attach, bind or legacy group open recorded as successful (a tampered outcome): from that
 *   record until the fd or the state it created is gone.
 * The impossible-upstream rules fire only on recorder defects.
 */
export const RULE_OF_MISTAKE: Readonly<Record<Mistake, RuleId>> = {
  'audio-left-on-kernel-driver': 'passthrough-refused-not-viable',
  'two-vms-sharing-group': 'passthrough-refused-group-in-use',
  'kernel-driver-bound-too-early': 'kernel-bind-into-user-group',
  'access-before-bind': 'access-before-bind',
  'unsafe-interrupts-allowed': 'unsafe-interrupts',
  'tenants-sharing-group': 'tenant-mixing',
  'event-lost': 'sequence-gap',
  'seq-reused': 'sequence-out-of-order',
  'delivery-reordered': 'sequence-gap',
  'driver-change-unrecorded': 'kernel-driver-in-user-group',
  'access-outcome-tampered': 'access-granted-without-bind',
  'attach-outcome-tampered': 'split-domain',
  'bind-outcome-tampered': 'two-owners',
  'group-open-outcome-tampered': 'legacy-and-cdev',
};

/**
 * Finding rules about objects the simulator does not produce yet, each with the reason: no mistake can be injected
 * for them, so no label measures them. The vIOMMU, vDEVICE, nested hwpt and vEVENTQ need a 6.13–6.15 host and the
 * reset fence a 7.0 one, while the simulated fleets run 6.1–6.12, their VM launches attach an IOAS (no nesting),
 * and the model decides no vEVENTQ yet. Their
 * conditions and reachability are shown by recorded histories (projections/iommufdObjects.unit.spec.ts). A rule
 * leaves this list when a mistake labels it (the ground-truth test holds the two lists apart).
 */
export const RULES_NOT_SIMULATED: Readonly<Partial<Record<RuleId, string>>> = {
  'vdevice-foreign-group': 'the simulator allocates no vIOMMU or vDEVICE (6.13): its fleets run 6.12 and older',
  'nested-parent-foreign': 'the simulator allocates no nested hwpt (its VM launches attach an IOAS) and no vIOMMU (6.13)',
  'vevent-lost': 'the simulator allocates no vEVENTQ (6.15), and the upstream model does not decide IOMMU_VEVENTQ_ALLOC yet',
  'attach-during-reset': 'the simulator resets no device inside a 7.0 IOMMU fence: its fleets run 6.12 and older',
};

type Draft = { -readonly [K in keyof MistakeLabel]: MistakeLabel[K] };

/** a label being written: `end` it at the event that ends the mistake */
export interface OpenLabel {
  end(): void;
}

/** per host: remembers the last event emitted, so a label starts or ends exactly at it (`last`: a parked host's) */
export const createLabelRecorder = (host: string, resumeAt: LabelEventRef | null = null) => {
  let last: LabelEventRef | null = resumeAt;
  const finished: MistakeLabel[] = [];
  const open = new Set<Draft>();
  return {
    /** the host's emitter reports each event it made */
    saw(event: IommuEventInput): void {
      const e = event as { id: string; seq: number };
      last = { eventId: e.id, seq: e.seq };
    },
    /** the event just emitted shows mistake `m` on this group/device: its label starts there */
    start(m: Mistake, group: number | null, device: string | null): OpenLabel {
      if (last === null) throw new Error('ground truth: a label cannot start before the host emitted an event');
      return this.startAt(m, group, device, last);
    },
    /** a label that starts at a given event (one emitted out of seq order: a repeat) */
    startAt(m: Mistake, group: number | null, device: string | null, from: LabelEventRef): OpenLabel {
      const draft: Draft = { mistake: m, ruleId: RULE_OF_MISTAKE[m], host, group, device, from, until: null };
      open.add(draft);
      return {
        end: () => {
          if (!open.delete(draft)) return;
          draft.until = last;
          finished.push(draft);
        },
      };
    },
    /** a label whose both ends are known (a reordered delivery: `until` arrived after `from`, with a lower seq) */
    record(m: Mistake, from: LabelEventRef, until: LabelEventRef): void {
      finished.push({ mistake: m, ruleId: RULE_OF_MISTAKE[m], host, group: null, device: null, from, until });
    },
    /** labels finished since the last drain (their events were all emitted) */
    drain(): MistakeLabel[] {
      return finished.splice(0, finished.length);
    },
    /** labels still open (until null) */
    pending(): MistakeLabel[] {
      return [...open].map((d) => ({ ...d }));
    },
    /** open labels, for the bounded-state check */
    size: (): number => open.size,
    /** the last event emitted (where the next label would start) */
    last: (): LabelEventRef | null => last,
  };
};

export type LabelRecorder = ReturnType<typeof createLabelRecorder>;
