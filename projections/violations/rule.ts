import type { RuleId } from '../rules.js';
import type { Domain, GroupState as ModelGroup } from '../kernel/types.js';
import type { Severity } from '../types.js';
import type { HostView } from './hostView.js';

/**
 * One rule of the violation catalogue, everything about it in one place: what it is (id, severity, the harm
 * it stands for), where the kernel decides it, what opens and closes it, and how it keeps transients out.
 * Ids are stable (stored, exported to analytics, shown in the UI).
 */
export interface RuleDefinition {
  readonly id: RuleId;
  readonly severity: Severity;
  readonly title: string;
  /** the harm it stands for, in one sentence ("information: ..." for severity info: a record, not a finding) */
  readonly harm: string;
  /** where in protocol.md (and the kernel) the rule comes from */
  readonly reference: string;
  /** the kernel behaviour the rule guards, in one sentence */
  readonly guards: string;
  /** what makes the condition true */
  readonly opens: string;
  /** what makes it false */
  readonly closes: string;
  /** what raises it and what closes it (opens; closes) */
  readonly lifecycle: string;
  /**
   * how a state that a correct multi-step sequence passes through is kept from counting as a finding (a
   * settle window, the end of an operation sequence, or a condition on the actors), or why none is needed
   */
  readonly transient: string;
  /** a state the upstream kernel prevents: it never fires from an ordinary sequence (see {@link IMPOSSIBLE_UPSTREAM}) */
  readonly impossibleUpstream: boolean;
}

/** the wording every rule about a state the upstream kernel prevents uses, in its title and its messages */
export const IMPOSSIBLE_UPSTREAM = 'impossible on this kernel: a missing event, a kernel bug or tampering';

/** a rule about a group as a whole: re-evaluated whenever an event changed the group (open while `holds`) */
export interface GroupRule extends RuleDefinition {
  holds(g: ModelGroup, v: HostView): boolean;
  /** the message, called only when the rule opens */
  describe(g: ModelGroup, v: HostView): string;
}

/**
 * a rule about one member of a group, re-evaluated with the group (open while `holdsFor`). `domain` is the
 * group's domain (hostView.ts `groupDomainOf`): worked out once per group, not once per member.
 */
export interface MemberRule extends RuleDefinition {
  /** whether it can hold for any member of a group on `domain` (false: no member needs asking) */
  canHold(domain: Domain): boolean;
  holdsFor(device: string, g: ModelGroup, domain: Domain, v: HostView): boolean;
  describe(device: string, g: ModelGroup, domain: Domain, v: HostView): string;
}

/** the definition with its `lifecycle` line derived from opens/closes */
export const defineRule = <R extends Omit<RuleDefinition, 'lifecycle'>>(rule: R): R & { readonly lifecycle: string } => ({
  ...rule,
  lifecycle: `${rule.opens}; ${rule.closes}`,
});

/** members bound to a kernel DMA-API driver, as `device (driver)` */
export const blockersOf = (g: ModelGroup, v: HostView): string =>
  g.devices
    .map((m) => v.model.devices.get(m))
    .filter((d) => d !== undefined && v.isKernelDma(d.driver))
    .map((d) => `${d!.name} (${d!.driver})`)
    .join(', ');
