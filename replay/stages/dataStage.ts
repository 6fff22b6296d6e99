import { z } from 'zod';
import { didYouMean, ErrnoSchema, isVfioDriverName, ValidationError, type ErrnoName, type FieldIssue } from '../../schemas/index.js';
import { createProtocolDecider, isObservationBody } from '../../projections/kernel/decider.js';
import { groupOfDevice, isManagedDma } from '../../projections/kernel/kernel.js';
import type { RuleEntry, RuleId, RuleTable } from '../../projections/kernel/rules.js';
import type { DeviceState, GroupState, ModelEvent, ModelState, Operation, OperationKind, ProtocolDecider, Transition } from '../../projections/kernel/types.js';
import { isVariantName } from '../../projections/kernel/types.js';
import { resolveStage } from './releaseStage.js';

/**
 * A protocol stage defined as data over an existing one (a proposed kernel patch, a vendor kernel, a stricter
 * site policy): which of the base's rules it overrides (another errno or text), removes, or adds, each with its
 * reason and source. `defineStage` checks a parsed stage file and compiles it into a decider that the replay
 * reports like any built-in variant. What the rules mean:
 * - override: where the base decides by the rule, the call fails with the given errno instead (a rule that
 *   succeeded now refuses, and changes nothing), and the report shows the given text;
 * - remove (refusal rules only): where the base refuses by the rule, the call is accepted; what it would then
 *   change is not modelled, so the stage's state does not follow it (later calls may diverge as consequences),
 *   and the checks the base makes after that one are not made;
 * - add: a refusal of some operation kinds when every condition holds, from a closed vocabulary of state
 *   predicates (PREDICATES), checked before the base decides: the stage refuses first.
 */

type Subject = { readonly device: DeviceState | undefined; readonly group: GroupState | undefined; readonly op: Operation; readonly state: ModelState };

/** which operations name a device, a group, or neither (the predicates a rule on them may use) */
const OPERATION_SUBJECTS: Readonly<Record<OperationKind, 'device' | 'group' | null>> = {
  bindDriver: 'device',
  unbindDriver: 'device',
  openDevice: 'device',
  accessDevice: 'device',
  bindIommufd: 'device',
  attachPt: 'device',
  detachPt: 'device',
  closeDevice: 'device',
  getDeviceFd: 'device',
  openGroup: 'group',
  closeGroup: 'group',
  groupStatus: 'group',
  setContainer: 'group',
  unsetContainer: 'group',
  openIommufd: null,
  closeIommufd: null,
  allocIoas: null,
  allocHwpt: null,
  destroy: null,
  mapIoas: null,
  unmapIoas: null,
  openContainer: null,
  setIommu: null,
  closeContainer: null,
  // the 6.7+ objects name an iommufd object id, not a device or group a predicate could read
  setDirtyTracking: null,
  allocViommu: null,
  allocVdevice: null,
  mapFile: null,
  changeProcess: null,
  getPa: null,
  allocVeventq: null,
  closeEventFd: null,
  allocHwQueue: null,
  resetDevice: 'device',
  createDmaBuf: 'device',
  getHwInfo: null,
  invalidateHwpt: null,
  getDirtyBitmap: null,
  allocFaultQueue: null,
};
const OPERATION_KINDS = Object.keys(OPERATION_SUBJECTS) as [OperationKind, ...OperationKind[]];

const membersOf = (s: Subject): DeviceState[] => (s.group?.devices ?? []).map((n) => s.state.devices.get(n)).filter((d): d is DeviceState => d !== undefined);

/** the closed vocabulary of conditions an added rule can test, each on the operation's device or group */
export const PREDICATES = {
  'group-has-several-devices': { needs: 'group', doc: "the operation's IOMMU group has more than one device", holds: (s: Subject) => (s.group?.devices.length ?? 0) > 1 },
  'group-has-bridge': {
    needs: 'group',
    doc: 'a member of the group is a PCI bridge: the group spans a PCIe switch or root port without ACS, and the devices below it can reach each other peer to peer',
    holds: (s: Subject) => membersOf(s).some((d) => d.bridge),
  },
  'group-not-viable': {
    needs: 'group',
    doc: 'a member of the group is bound to a kernel DMA-API driver (not vfio, not driver_managed_dma): the group cannot be owned by user space',
    holds: (s: Subject) => membersOf(s).some((d) => d.driver !== null && !isVfioDriverName(d.driver) && !isManagedDma(s.state, d.driver)),
  },
  'group-owned': { needs: 'group', doc: 'user space (an iommufd or a container) already owns the group', holds: (s: Subject) => s.group?.owner != null },
  'device-requires-direct': { needs: 'device', doc: 'the device has an RMRR / IOMMU_RESV_DIRECT region (it cannot be put on a blocking domain)', holds: (s: Subject) => s.device?.requireDirect === true },
  'device-without-pasid': { needs: 'device', doc: 'the device supports no PASID (max_pasids 0)', holds: (s: Subject) => s.device !== undefined && s.device.maxPasids === 0 },
  'operation-has-pasid': { needs: 'device', doc: 'the call names a PASID (ATTACH/DETACH with VFIO_DEVICE_ATTACH_PASID)', holds: (s: Subject) => 'pasid' in s.op && s.op.pasid !== undefined },
  'no-interrupt-remapping': { needs: null, doc: 'the host reports no interrupt remapping (isolated MSI)', holds: (s: Subject) => s.state.caps.interruptRemapping === false },
} as const satisfies Record<string, { readonly needs: 'device' | 'group' | null; readonly doc: string; readonly holds: (s: Subject) => boolean }>;
export type PredicateName = keyof typeof PREDICATES;
const PREDICATE_NAMES = Object.keys(PREDICATES) as [PredicateName, ...PredicateName[]];

const text = z.string().trim().min(1, { error: 'must not be empty' });
const RuleIdSchema = z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, { error: 'a rule id is lower-case words joined by dots and dashes, e.g. site.bind.group-spans-bridge' });
const oneOf = (names: readonly string[], what: string) => (iss: { input?: unknown }) =>
  `unknown ${what} ${JSON.stringify(iss.input)}${didYouMean(iss.input, names)} (expected one of ${names.join(', ')})`;

const OverrideSchema = z
  .strictObject({ id: RuleIdSchema, errno: ErrnoSchema.optional(), text: text.optional(), reason: text, source: text })
  .refine((o) => o.errno !== undefined || o.text !== undefined, { error: 'an override changes the errno, the text, or both: give errno or text', path: ['errno'] });
const RemoveSchema = z.strictObject({ id: RuleIdSchema, reason: text, source: text });
const AddSchema = z.strictObject({
  id: RuleIdSchema,
  operation: z.union([z.enum(OPERATION_KINDS, { error: oneOf(OPERATION_KINDS, 'operation') }), z.array(z.enum(OPERATION_KINDS, { error: oneOf(OPERATION_KINDS, 'operation') })).min(1)]),
  when: z.array(z.enum(PREDICATE_NAMES, { error: oneOf(PREDICATE_NAMES, 'condition') })).default([]),
  errno: ErrnoSchema,
  text,
  reason: text,
  source: text,
});

export const StageFileSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, { error: 'a stage name is lower-case letters, digits, dots, dashes and underscores, e.g. site-strict-7.3' }),
  base: z.string().min(1),
  description: text,
  rules: z
    .strictObject({
      override: z.array(OverrideSchema).default([]),
      remove: z.array(RemoveSchema).default([]),
      add: z.array(AddSchema).default([]),
    })
    .default({ override: [], remove: [], add: [] }),
});
export type StageFile = z.infer<typeof StageFileSchema>;
type AddedRule = StageFile['rules']['add'][number];

/** `rules.override[1] (upstream.bind.ok).errno`: the rule's id beside its index, so the message names the rule */
const pathOf = (input: unknown, path: readonly PropertyKey[]): string => {
  let out = '';
  let node: unknown = input;
  for (const [i, seg] of path.entries()) {
    node = node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[seg] : undefined;
    out += typeof seg === 'number' ? `[${seg}]` : `${out ? '.' : ''}${String(seg)}`;
    const id = node !== null && typeof node === 'object' && typeof seg === 'number' && path[i - 2] === 'rules' ? (node as { id?: unknown }).id : undefined;
    if (typeof id === 'string') out += ` (${id})`;
  }
  return out || '(stage)';
};

const refusedWith = (issues: FieldIssue[], source: string): ValidationError => {
  const [first] = issues;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem(s))` : '';
  return new ValidationError(`${source}: ${first!.path}: ${first!.message}${more}`, issues);
};

/** the base's rules, checked: every overridden or removed id exists there, added ids do not, no id twice */
const checkRules = (stage: StageFile, base: ProtocolDecider, input: unknown): FieldIssue[] => {
  const issues: FieldIssue[] = [];
  const at = (list: 'override' | 'remove' | 'add', i: number, field: string) => pathOf(input, ['rules', list, i, field]);
  const seen = new Set<string>();
  for (const list of ['override', 'remove', 'add'] as const) {
    stage.rules[list].forEach((r, i) => {
      if (seen.has(r.id)) issues.push({ path: at(list, i, 'id'), message: `rule ${r.id} is named twice in this stage (override, remove and add each name a rule once)` });
      seen.add(r.id);
      const known = base.rules[r.id];
      if (list === 'add') {
        if (known) issues.push({ path: at(list, i, 'id'), message: `${base.variant} already has rule ${r.id}: override it instead of adding it` });
        return;
      }
      if (!known) issues.push({ path: at(list, i, 'id'), message: `${base.variant} has no rule ${JSON.stringify(r.id)}${didYouMean(r.id, Object.keys(base.rules))}` });
      else if (list === 'remove' && known.errno === undefined)
        issues.push({ path: at(list, i, 'id'), message: `rule ${r.id} is not a refusal (it has no errno): only a refusal can be removed; override it with an errno to refuse the call` });
    });
  }
  stage.rules.add.forEach((r, i) => {
    const kinds = typeof r.operation === 'string' ? [r.operation] : r.operation;
    for (const p of r.when) {
      const needs = PREDICATES[p].needs;
      const without = needs === null ? [] : kinds.filter((k) => OPERATION_SUBJECTS[k] === null || (needs === 'device' && OPERATION_SUBJECTS[k] === 'group'));
      if (without.length > 0) issues.push({ path: at('add', i, 'when'), message: `condition ${p} needs the operation's ${needs}, and ${without.join(', ')} names none` });
    }
  });
  return issues;
};

const noted = (stage: StageFile, entry: { reason: string; source: string }, more = ''): string => ` [stage ${stage.name}${more}: ${entry.reason}; source: ${entry.source}]`;

/** the stage's rule table: the base's, with each change's text, errno, reason and source */
const rulesOf = (stage: StageFile, base: ProtocolDecider): RuleTable => {
  const table: Record<string, RuleEntry> = { ...base.rules };
  const ref = (source: string) => ({ at: source, release: `stage ${stage.name}` });
  for (const o of stage.rules.override) {
    const was = base.rules[o.id]!;
    const errno = o.errno ?? was.errno;
    const changed = o.errno !== undefined && o.errno !== was.errno ? `, -${o.errno}${was.errno ? ` instead of -${was.errno}` : ' instead of success'}` : '';
    table[o.id] = errno === undefined ? { text: `${o.text ?? was.text}${noted(stage, o, changed)}` } : { errno, text: `${o.text ?? was.text}${noted(stage, o, changed)}`, kernelRef: ref(o.source) };
  }
  for (const r of stage.rules.remove) {
    table[r.id] = {
      text: `removed by stage ${stage.name}: the call is accepted, and what it would change is not modelled (the state does not follow); the base refused with -${base.rules[r.id]!.errno}: ${base.rules[r.id]!.text}${noted(stage, r)}`,
    };
  }
  for (const a of stage.rules.add) table[a.id] = { errno: a.errno, text: `${a.text}${noted(stage, a)}`, kernelRef: ref(a.source) };
  return table;
};

const subjectOf = (op: Operation, state: ModelState): Subject => {
  const device = 'device' in op ? state.devices.get(op.device) : undefined;
  const group = 'group' in op ? state.groups.get(op.group) : 'device' in op ? groupOfDevice(state, op.device) : undefined;
  return { device, group, op, state };
};

const refusal = (rule: string, errno: ErrnoName): Transition => ({ outcome: { ok: false, errno }, rule: rule as RuleId, apply: null });

/** the stage's transition: its added refusals first, then the base's decision with the stage's overrides and removals */
const transitionOf = (stage: StageFile, base: ProtocolDecider) => {
  const added: readonly (AddedRule & { readonly kinds: ReadonlySet<OperationKind> })[] = stage.rules.add.map((a) => ({ ...a, kinds: new Set(typeof a.operation === 'string' ? [a.operation] : a.operation) }));
  const overrides = new Map(stage.rules.override.map((o) => [o.id, o]));
  const removed = new Set(stage.rules.remove.map((r) => r.id));
  return (op: Operation, state: ModelState): Transition => {
    for (const a of added) {
      if (!a.kinds.has(op.kind)) continue;
      const subject = subjectOf(op, state);
      if (a.when.every((p) => PREDICATES[p].holds(subject))) return refusal(a.id, a.errno);
    }
    const decided = base.decide(op, state);
    const t: Transition = { outcome: decided.outcome, rule: decided.rule, apply: decided.apply };
    if (removed.has(t.rule) && !t.outcome.ok) return { outcome: { ok: true }, rule: t.rule, apply: null };
    const o = overrides.get(t.rule);
    if (o?.errno === undefined) return t;
    // a refusal keeps what it changed on the way (failWith); a success the stage refuses changes nothing
    return { outcome: { ok: false, errno: o.errno }, rule: t.rule, apply: !t.outcome.ok && 'errno' in t.outcome ? t.apply : null };
  };
};

/**
 * A stage file's content (already parsed from YAML or JSON) checked and compiled into a decider; `source`
 * names the file in errors. Bad input is a ValidationError naming the field and the rule:
 * `my-stage.yaml: rules.override[1] (upstream.bind.ok).errno: expected an errno name ...`.
 */
export const defineStage = (input: unknown, source: string): ProtocolDecider => {
  const parsed = StageFileSchema.safeParse(input);
  if (!parsed.success) throw refusedWith(parsed.error.issues.map((i) => ({ path: pathOf(input, i.path), message: i.message })), source);
  const stage = parsed.data;
  if (isVariantName(stage.name)) throw refusedWith([{ path: 'name', message: `${stage.name} is a built-in variant: give the stage its own name` }], source);
  let base: ProtocolDecider;
  try {
    base = resolveStage(stage.base);
  } catch (e) {
    throw refusedWith([{ path: 'base', message: (e as Error).message.replace(/^--stage: /, '') }], source);
  }
  const issues = checkRules(stage, base, input);
  if (issues.length > 0) throw refusedWith(issues, source);
  const decider = createProtocolDecider({ variant: stage.name, description: `${stage.description} (over ${base.variant})`, rules: rulesOf(stage, base), transition: transitionOf(stage, base) });
  return {
    ...decider,
    // the base sees the topology (a release stage judges every host as its release)
    initialState: base.initialState,
    evolve: (state: ModelState, event: ModelEvent) => (isObservationBody(event) ? base.evolve(state, event) : decider.evolve(state, event)),
    ...(base.release ? { release: base.release } : {}),
  };
};
