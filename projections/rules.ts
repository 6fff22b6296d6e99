import { RULE_DEFINITIONS } from './violations/catalogue.js';
import type { RuleDefinition } from './violations/rule.js';

export type { RuleDefinition } from './violations/rule.js';
export { IMPOSSIBLE_UPSTREAM } from './violations/rule.js';

/** rule ids, stable (stored, exported to analytics, shown in the UI); each rule lives in projections/violations/<rule>.ts */

export const RULE_IDS = [
  'kernel-driver-in-user-group',
  'passthrough-refused-not-viable',
  'passthrough-refused-group-in-use',
  'kernel-bind-into-user-group',
  'split-domain',
  'two-owners',
  'legacy-and-cdev',
  'translated-by-unattached-domain',
  'access-before-bind',
  'access-granted-without-bind',
  'unsafe-interrupts',
  'tenant-mixing',
  'sequence-gap',
  'sequence-out-of-order',
  'sequence-late-arrival',
  'vdevice-foreign-group',
  'nested-parent-foreign',
  'faults-auto-responded',
  'vevent-lost',
  'attach-during-reset',
] as const;
export type RuleId = (typeof RULE_IDS)[number];

/** the violation catalogue, by rule id */
export const RULES: Readonly<Record<RuleId, RuleDefinition>> = Object.fromEntries(RULE_DEFINITIONS.map((r) => [r.id, r])) as Record<RuleId, RuleDefinition>;

export const isRuleId = (s: string): s is RuleId => Object.hasOwn(RULES, s);

/**
 * A finding is a violation an auditor must look at: severity warning or critical. Severity info records what
 * the kernel's design does for a single owner (or a delivery that lost nothing): information, never a finding.
 */
export const isFinding = (v: { readonly severity: string }): boolean => v.severity !== 'info';
