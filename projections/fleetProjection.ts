import { DEFAULT_MANAGED_DMA_DRIVERS, OPERATION_TYPES, type DeviceName, type Handle, type IommuEvent } from '../schemas/index.js';
import { RULES, type RuleId } from './rules.js';
import { accessBeforeBind } from './violations/accessBeforeBind.js';
import { accessGrantedWithoutBind } from './violations/accessGrantedWithoutBind.js';
import { kernelBindIntoUserGroup } from './violations/kernelBindIntoUserGroup.js';
import { kernelDriverInUserGroup } from './violations/kernelDriverInUserGroup.js';
import { legacyAndCdev } from './violations/legacyAndCdev.js';
import { passthroughRefusedGroupInUse } from './violations/passthroughRefusedGroupInUse.js';
import { passthroughRefusedNotViable } from './violations/passthroughRefusedNotViable.js';
import type { GroupRule } from './violations/rule.js';
import { sequenceGap } from './violations/sequenceGap.js';
import { splitDomain } from './violations/splitDomain.js';
import { createTenantMixing, DEFAULT_TENANCY_POLICY, type TenancyPolicy } from './violations/tenantMixing.js';
import { translatedByUnattachedDomain } from './violations/translatedByUnattachedDomain.js';
import { twoOwners } from './violations/twoOwners.js';
import { unsafeInterrupts } from './violations/unsafeInterrupts.js';
import { followObjects, type CloseViolationFn, type OpenViolationFn } from './iommufdObjects.js';
import { newSequenceState, observeSequence } from './sequence.js';
import { isModelEvent } from './kernel/operations.js';
import { upstreamDecider } from './kernel/upstream.decider.js';
import { topologyRecord } from './topologyRecords.js';
import { addOnce, clearTouched, factsOf, isLiveHost, isUntouched, liveHost, markDevice, markGroup, modelFromReadModel, newTouched, pendingOf, reusedList, syncFacts, touchedBy, type ReusedList, type Touched } from './readModel.js';
import { accessGrantedOf, boundFdOf, groupDomainOf, shownGroup, type HostView } from './violations/hostView.js';
import { removeDevice as removeModelDevice, sameList, sameRecord, setDeviceDriver, type ModelChanges } from './kernel/mutate.js';
import type { GroupState as ModelGroup, ModelState, Owner } from './kernel/types.js';
import { fdsOfDevice } from './kernel/fdIndex.js';
import type {
  DeviceTopologyState,
  EventRef,
  FleetState,
  GroupFacts,
  HostCapabilitiesState,
  HostFacts,
  HostState,
  SequenceGap,
  Violation,
} from './types.js';

export { DEFAULT_TENANCY_POLICY, type TenancyPolicy } from './violations/tenantMixing.js';

export interface FleetProjectionOptions {
  /**
   * drivers with `driver_managed_dma` (never counted in owner_cnt); a host's topology snapshot may
   * override it (capabilities.managedDmaDrivers) @defaultValue DEFAULT_MANAGED_DMA_DRIVERS
   */
  readonly managedDmaDrivers?: readonly string[];
  /** the tenancy rule's policy; `false` turns the rule off @defaultValue DEFAULT_TENANCY_POLICY */
  readonly tenancy?: TenancyPolicy | false;
  /** closed violations kept in the state (oldest dropped first, counted) @defaultValue 100_000 */
  readonly closedViolationLimit?: number;
  /**
   * the reorder buffer's bound: events held per host beyond a missing seq; past it the held events are
   * applied in seq order and the gap stands (its events may never come) @defaultValue 4096
   */
  readonly maxHeldEvents?: number;
  /**
   * the seq a host's history starts at (the collector's spool counts from 1): a host's first event beyond it
   * is held, since the events before it may still arrive, unless it is a topology snapshot (a sysfs read is a
   * valid start) @defaultValue 1
   */
  readonly firstSeq?: number;
}

/**
 * The groups of the event's host an evolve may have changed: `groups` (unordered, maybe repeated, a gone group
 * among them), or any of them when `all` (a host-wide change: a topology snapshot, the host marked uncertain).
 */
export interface ChangedGroups {
  all: boolean;
  readonly groups: number[];
}

/**
 * The fleet projection, a pure fold `{ name, initialState, evolve }` (style G4).
 *
 * **WARNING**: `evolve` mutates the state it is given and returns it: folding >1,000,000 events/s
 * leaves no room for copying. Keep a copy with `cloneState` / `toSnapshot` when you need the state of
 * an earlier moment. `evolve` reads nothing but its arguments and the options: same events, same state.
 */
export interface FleetProjection {
  readonly name: 'fleet';
  readonly options: Required<Omit<FleetProjectionOptions, 'tenancy'>> & { readonly tenancy: TenancyPolicy | false };
  initialState(): FleetState;
  /**
   * Folds one event. `opened`, when given, receives every violation the event opened, in order (one it closed
   * again too): what a consumer of the fold needs without scanning the map of open violations. `changed`, when
   * given, is reset and receives the groups of the event's host whose records the event may have changed (see
   * {@link ChangedGroups}): what a consumer needs without comparing every group of the host.
   */
  evolve(state: FleetState, event: IommuEvent, position?: bigint, opened?: Violation[], changed?: ChangedGroups): FleetState;
  /**
   * After `evolve` threw on an event (a projection defect; the caller keeps the state): the event's seq
   * counts as applied, nothing of it is, and the events its host held after it are applied. So one event the
   * fold cannot take leaves its host uncertain (the caller marks it), not stalled behind a gap that never fills.
   */
  passOver(state: FleetState, event: IommuEvent, position?: bigint): FleetState;
}

export const eventRefOf = (event: IommuEvent, position?: bigint): EventRef =>
  position === undefined
    ? { eventId: event.id, seq: event.seq, timeNs: event.time }
    : { eventId: event.id, seq: event.seq, timeNs: event.time, position: position.toString() };

const newHost = (host: string, managedDmaDrivers: (host: HostState) => ReadonlySet<string>): HostState =>
  liveHost({
  host,
  lastSeq: null,
  appliedSeq: null,
  held: [],
  lastTimeNs: null,
  eventCount: 0,
  uncertain: null,
  ownershipRecorded: false,
  capabilities: null,
  topology: {},
  groups: {},
  devices: {},
  iommufds: {},
  containers: {},
  deviceFds: {},
  groupFds: {},
  openViolations: 0,
  sequenceViolations: [],
  sequence: newSequenceState(),
  clock: { wentBack: [], wentBackDropped: 0 },
  kernel: upstreamDecider.initialState(),
  }, managedDmaDrivers);

const gapKey = (host: string, from: number, to: number): string => `sequence-gap|${host}|${from}..${to}`;

/** clock steps kept per host (the newest); time travel folds further when older ones were dropped */
export const MAX_CLOCK_STEPS = 1000;

// decimal strings without leading zeros compare by length, then lexically (one string comparison per event:
// the usual answer, a later time, took two in a three-way compare)
const isEarlierDecimal = (a: string, b: string): boolean => (a.length !== b.length ? a.length < b.length : a < b);


/**
 * The calls that show who owns a group and on which domain it is: VFIO and iommufd operations (a VMM's
 * recorder). Driver binds, uevents, traces and sysfs snapshots never show an ownership claim.
 */
const OWNERSHIP_CALLS: ReadonlySet<string> = new Set([...OPERATION_TYPES].filter((t) => !t.startsWith('Driver')));


/** whether a group's owner is the one its container claims it as (a legacy container, or an iommufd used as one) */
const ownedByContainer = (o: Owner | null, c: { readonly handle: string; readonly kind: 'legacy' | 'iommufd' }): boolean =>
  o !== null && (c.kind === 'legacy' ? o.kind === 'container' && o.container === c.handle : o.kind === 'ictx' && o.ictx === c.handle);

/** the options with their defaults */
type ResolvedOptions = FleetProjection['options'];

/**
 * One fold's context: its options, its indexes, and the event being applied. The fold's steps are module
 * functions over it (`c`), not closures made per `createFleetProjection`: V8 compiles and optimizes a
 * closure's code per instance, and a closure's `let` variables are context slots checked on every read.
 * `evolve` is synchronous and never re-entered, so the event's fields are per call.
 */
interface Fold {
  readonly options: ResolvedOptions;
  readonly defaultManaged: Set<string>;
  /** host overrides, keyed by the array in the state (a restored state rebuilds its set once) */
  readonly overrideSets: WeakMap<readonly string[], Set<string>>;
  /** the last override looked up (the rules ask for every member of every group derived: no WeakMap lookup each time) */
  lastOverride: readonly string[] | null;
  lastOverrideSet: Set<string>;
  /** the managed-DMA set in force on a host (`managedSetOf`), as the read model's derivation asks for it */
  readonly managedSetOf: (host: HostState) => Set<string>;
  /** the group rules in evaluation order (kernel-driver-in-user-group first: checkGroup relies on it) */
  readonly groupRules: readonly GroupRule[];
  /**
   * whether each group rule holds for the group being checked (each asked once per check; a rule reads the
   * model and the facts, which the opens and closes of the check do not change)
   */
  readonly ruleHolds: boolean[];
  /** what the rules read of the event's host (set per event, as `h`) */
  readonly view: FoldView;
  /**
   * open violation keys by host and group, keyed by the open-violation record of the state (a restored or
   * cloned state rebuilds it once): dropping a group closes its violations without a scan of all of them
   */
  readonly groupIndexes: WeakMap<object, Map<string, Set<string>>>;
  /**
   * open violations of the event's host counted by rule, keyed by the open record (derived from it, as
   * groupIndex): a group or host with any open violation re-checks every rule, and most of those closes are of
   * a rule with nothing open on the host; asking the count first spares them the key's concatenation and lookup
   */
  readonly ruleCountIndexes: WeakMap<object, Map<string, Map<string, number>>>;
  /** the records the event's model transition touched, and the observer that notes them (readModel.ts) */
  readonly touched: Touched;
  readonly changes: ModelChanges;
  /** what a sysfs read or an unplug took away with a device: its fds (their findings close) and the device */
  readonly goneFds: string[];
  readonly goneDevices: string[];
  /** groups checked after an event, without repeats (reused: most events touch one or two) */
  readonly toCheck: ReusedList<number>;
  /** every group of the host is checked after the event (a sysfs read): in the host's order, before the touched ones */
  checkAll: boolean;
  // the event being applied
  fleet: FleetState;
  h: HostState;
  ev: IommuEvent;
  /** the store position of the event being applied (decimal string), when it has one */
  pos: string | undefined;
  cachedRef: EventRef | null;
  /** where the event being folded reports the violations it opens (evolve's `opened`) */
  openedOut: Violation[] | undefined;
  /** and the groups it changed (evolve's `changed`) */
  changedOut: ChangedGroups | undefined;
  /** `openViolation` and `closeViolation` on this fold, as the object rules take them (iommufdObjects.ts), made once */
  readonly openObjectViolation: OpenViolationFn;
  readonly closeObjectViolation: CloseViolationFn;
}

/** what the rules read of the event's host: its kernel model, its facts and its managed-DMA set */
interface FoldView extends HostView {
  host: string;
  model: ModelState;
  facts: HostFacts;
  /** the host's managed-DMA set: set per event, and again once the event's topology snapshot may have changed it */
  managed: Set<string>;
}

const ref = (c: Fold): EventRef =>
  (c.cachedRef ??= c.pos === undefined ? { eventId: c.ev.id, seq: c.ev.seq, timeNs: c.ev.time } : { eventId: c.ev.id, seq: c.ev.seq, timeNs: c.ev.time, position: c.pos });

/** the managed-DMA set in force on a host: the host's override, or the option */
const managedSetOf = (c: Fold, host: HostState): Set<string> => {
  const override = host.capabilities?.managedDmaDrivers;
  if (!override) return c.defaultManaged;
  if (override === c.lastOverride) return c.lastOverrideSet;
  let set = c.overrideSets.get(override);
  if (!set) c.overrideSets.set(override, (set = new Set(override)));
  c.lastOverride = override;
  c.lastOverrideSet = set;
  return set;
};

const indexKey = (index: Map<string, Set<string>>, k: string): Set<string> => {
  let set = index.get(k);
  if (!set) index.set(k, (set = new Set()));
  return set;
};

const groupIndex = (c: Fold): Map<string, Set<string>> => {
  const open = c.fleet.violations.open;
  let index = c.groupIndexes.get(open);
  if (!index) {
    index = new Map();
    for (const v of Object.values(open)) if (v.group !== undefined) indexKey(index, `${v.host}|${v.group}`).add(v.key);
    c.groupIndexes.set(open, index);
  }
  return index;
};

const openRuleCounts = (c: Fold): Map<string, number> => {
  const open = c.fleet.violations.open;
  const h = c.h;
  let index = c.ruleCountIndexes.get(open);
  if (!index) c.ruleCountIndexes.set(open, (index = new Map()));
  let counts = index.get(h.host);
  if (!counts) {
    counts = new Map();
    // a host with none open needs no scan (the open record may hold many of other hosts)
    if (h.openViolations > 0) for (const v of Object.values(open)) if (v.host === h.host) counts.set(v.ruleId, (counts.get(v.ruleId) ?? 0) + 1);
    index.set(h.host, counts);
  }
  return counts;
};

/** whether any violation of `rule` is open on the host of the event */
const anyOpen = (c: Fold, rule: RuleId): boolean => c.h.openViolations > 0 && (openRuleCounts(c).get(rule) ?? 0) > 0;

// --- violations -----------------------------------------------------------------------------------

const openViolation = (c: Fold, key: string, ruleId: RuleId, message: string, group: number | null, device: string | null): void => {
  const fleet = c.fleet;
  const h = c.h;
  if (Object.hasOwn(fleet.violations.open, key)) return;
  const v: { -readonly [K in keyof Violation]: Violation[K] } = {
    key,
    ruleId,
    severity: RULES[ruleId].severity,
    host: h.host,
    message,
    opened: ref(c),
    evidence: [c.ev.id],
  };
  if (group !== null) v.group = group;
  if (device !== null) v.device = device;
  const counts = openRuleCounts(c);
  fleet.violations.open[key] = v;
  counts.set(ruleId, (counts.get(ruleId) ?? 0) + 1);
  c.openedOut?.push(v);
  h.openViolations++;
  if (group !== null) {
    c.changedOut?.groups.push(group);
    const f = c.view.facts.groups.get(group);
    if (f) {
      f.openViolations++;
      markGroup(h, group, f);
    }
    indexKey(groupIndex(c), `${h.host}|${group}`).add(key);
  }
};

const closeViolation = (c: Fold, key: string): void => {
  const fleet = c.fleet;
  const v = fleet.violations.open[key];
  if (!v) return;
  const counts = openRuleCounts(c);
  delete fleet.violations.open[key];
  counts.set(v.ruleId, counts.get(v.ruleId)! - 1);
  const closed = ref(c);
  v.closed = closed;
  // how long the exposure lasted (0 when the host's clock went back in between)
  const ns = BigInt(closed.timeNs) - BigInt(v.opened.timeNs);
  v.durationNs = ns > 0n ? ns.toString() : '0';
  if (v.evidence[v.evidence.length - 1] !== c.ev.id) v.evidence.push(c.ev.id);
  const log = fleet.violations;
  log.closed.push(v);
  // trim in batches of a tenth of the limit: shifting one at a time is O(limit) per close
  const limit = c.options.closedViolationLimit;
  if (log.closed.length > limit + Math.max(1, Math.floor(limit / 10))) {
    const drop = log.closed.length - limit;
    log.closed.splice(0, drop);
    log.closedDropped += drop;
  }
  c.h.openViolations--;
  if (v.group !== undefined) {
    c.changedOut?.groups.push(v.group);
    const f = c.view.facts.groups.get(v.group);
    if (f) {
      f.openViolations--;
      markGroup(c.h, v.group, f);
    }
    groupIndex(c).get(`${v.host}|${v.group}`)?.delete(key);
  }
};

const groupKey = (c: Fold, rule: RuleId, g: number): string => `${rule}|${c.h.host}|g${g}`;
const deviceKey = (c: Fold, rule: RuleId, d: string): string => `${rule}|${c.h.host}|${d}`;
const fdKey = (c: Fold, rule: RuleId, fd: string): string => `${rule}|${c.h.host}|fd:${fd}`;

/** syncs one group rule with whether it holds: open while it does (message built only when it opens), closed otherwise */
const syncGroupRule = (c: Fold, rule: GroupRule, holds: boolean, g: ModelGroup, f: GroupFacts): void => {
  if (holds) {
    const key = groupKey(c, rule.id, g.id);
    if (!Object.hasOwn(c.fleet.violations.open, key)) openViolation(c, key, rule.id, rule.describe(g, c.view), g.id, null);
  } else if (f.openViolations > 0 && anyOpen(c, rule.id)) closeViolation(c, groupKey(c, rule.id, g.id));
};

/** re-evaluates every group-level rule (projections/violations/*) of one group after an event changed it */
const checkGroup = (c: Fold, g: ModelGroup, f: GroupFacts): void => {
  const { groupRules, ruleHolds, view } = c;
  let any = false;
  for (let i = 0; i < groupRules.length; i++) if ((ruleHolds[i] = groupRules[i]!.holds(g, view))) any = true;
  const member = translatedByUnattachedDomain;
  const domain = groupDomainOf(view.model, g);
  const members = member.canHold(domain);
  // nothing holds and nothing is open: nothing to open or close
  if (f.openViolations === 0 && !any && !members) return;
  syncGroupRule(c, kernelDriverInUserGroup, ruleHolds[0]!, g, f);
  if (f.openViolations > 0) {
    // the close conditions of the rules an event opens, that a group change can make true
    if (anyOpen(c, passthroughRefusedNotViable.id) && passthroughRefusedNotViable.settled(g, view)) closeViolation(c, groupKey(c, passthroughRefusedNotViable.id, g.id));
    if (anyOpen(c, kernelBindIntoUserGroup.id) && kernelBindIntoUserGroup.settled(g)) closeViolation(c, groupKey(c, kernelBindIntoUserGroup.id, g.id));
  }
  for (let i = 1; i < groupRules.length; i++) syncGroupRule(c, groupRules[i]!, ruleHolds[i]!, g, f);
  if (!members && f.openViolations === 0) return;
  for (const m of g.devices) {
    if (!view.facts.devices.has(m)) continue;
    if (members && member.holdsFor(m, g, domain, view)) {
      const key = deviceKey(c, member.id, m);
      if (!Object.hasOwn(c.fleet.violations.open, key)) openViolation(c, key, member.id, member.describe(m, g, domain, view), g.id, m);
    } else if (f.openViolations > 0 && anyOpen(c, member.id)) closeViolation(c, deviceKey(c, member.id, m));
  }
};

// --- the projection's own facts ---------------------------------------------------------------------

const check = (c: Fold, group: number): void => {
  addOnce(c.toCheck, group);
};

/** who acted (the event's tenant and VM) on a device it opened or bound: the projection's, not the kernel's */
const noteActor = (c: Fold, device: string): void => {
  const a = c.ev.actor;
  const d = c.view.facts.devices.get(device);
  if (!a || !d) return;
  if (a.tenant !== undefined) d.tenant = a.tenant;
  if (a.vm !== undefined) d.vm = a.vm;
  markDevice(c.h, device, d);
  const group = c.view.model.devices.get(device)?.group ?? null;
  if (group !== null) check(c, group);
};

/** closes every open violation of a group (it is gone) */
const closeGroupViolations = (c: Fold, group: number): void => {
  const keys = groupIndex(c).get(`${c.h.host}|${group}`);
  if (keys) for (const key of [...keys]) closeViolation(c, key);
};

const closeFdViolations = (c: Fold, fdHandle: string): void => {
  if (c.h.openViolations === 0) return;
  if (anyOpen(c, 'access-before-bind')) closeViolation(c, fdKey(c, 'access-before-bind', fdHandle));
  if (anyOpen(c, 'access-granted-without-bind')) closeViolation(c, fdKey(c, 'access-granted-without-bind', fdHandle));
  if (anyOpen(c, 'passthrough-refused-group-in-use')) closeViolation(c, fdKey(c, 'passthrough-refused-group-in-use', fdHandle));
};

/** an -EPERM claim refused: another user owns the group, or (nobody does) a kernel driver blocks it; `fd` is the refused device or group fd */
const refusedClaim = (c: Fold, group: number, device: string | null, fd: string, what: string): void => {
  // a group the read model does not show has no owner and no members: neither rule opens
  const g = shownGroup(c.view.model, group);
  if (!g) return;
  const inUse = passthroughRefusedGroupInUse;
  if (inUse.opensOnRefusal(g)) {
    openViolation(c, fdKey(c, inUse.id, fd), inUse.id, inUse.describe(g, device, fd, what), g.id, device);
    return;
  }
  const rule = passthroughRefusedNotViable;
  if (!rule.opensOnRefusal(g, c.view)) return;
  openViolation(c, groupKey(c, rule.id, g.id), rule.id, rule.describe(g, c.view, device, what), g.id, device);
};

const markUncertain = (c: Fold, reason: string): void => {
  const h = c.h;
  // while the host is uncertain every group is (ensureGroupRecord marks new ones): nothing more to do
  if (h.uncertain) return;
  h.uncertain = { since: ref(c), reason };
  if (c.changedOut) c.changedOut.all = true;
  for (const [id, f] of factsOf(h).groups) {
    if (!f.uncertain) {
      f.uncertain = true;
      f.uncertainReason = reason;
      markGroup(h, id, f);
    }
  }
};

// --- the kernel read model: the upstream model's transition, the records it touched derived again ---------
// (issue 16: one transition function per variant). The model folds every model event in place (its `evolve`),
// telling `changes` what it changes; readModel.ts derives the records that touched; what remains here is what
// the model does not hold: who acted, the pt_id and PASIDs a device attached itself, the device of a hwpt.

const evolveModel = (c: Fold, model: ModelState, e: Parameters<typeof upstreamDecider.evolve>[1]): void => {
  upstreamDecider.evolve(model, e, c.changes);
};

/**
 * A device gone from the host (hot-unplug, or a full sysfs read that no longer lists it). The kernel removes
 * a VFIO device only after its users closed it (vfio_unregister_group_dev waits for the last fd): its fds
 * close first, each through the model's own close (unbind, detach, release of the DMA ownership).
 */
const removeDevice = (c: Fold, model: ModelState, device: DeviceName, group: number | null): void => {
  for (const f of [...fdsOfDevice(model, device)]) {
    c.goneFds.push(f.handle);
    evolveModel(c, model, { type: 'VfioDeviceClosed', data: { device, deviceFd: f.handle as Handle } });
  }
  c.goneDevices.push(device);
  if (group !== null) evolveModel(c, model, { type: 'DeviceRemovedFromGroup', data: { device, group } });
  else removeModelDevice(model, c.changes, device);
};

/** the model's transition for the event (signals other than hotplug traces have none) */
const foldModel = (c: Fold, model: ModelState, e: IommuEvent): void => {
  switch (e.type) {
    case 'TraceAddDeviceToGroup':
      // the tracepoint of the same probe as the uevent: the model folds it as that observation
      evolveModel(c, model, { type: 'DeviceAddedToGroup', data: { device: e.data.device, group: e.data.group } });
      return;
    case 'DeviceRemovedFromGroup':
    case 'TraceRemoveDeviceFromGroup':
      if (model.devices.has(e.data.device) || model.fdIndex.byDevice.has(e.data.device)) removeDevice(c, model, e.data.device, model.devices.get(e.data.device)?.group ?? e.data.group);
      return;
    case 'TopologySnapshotTaken': {
      evolveModel(c, model, e);
      // a sysfs read is what the host runs now: the drivers it shows replace the model's (whose `observe`
      // keeps its own, for the replay, which decides each driver change itself)
      for (const td of e.data.devices) {
        const d = model.devices.get(td.device);
        if (d && d.driver !== td.driver) setDeviceDriver(model, c.changes, d, td.driver);
      }
      // a full read: what it no longer lists is gone (an import, `partial`, adds what it saw and removes nothing)
      if (e.data.partial !== true) {
        const seen = new Set<string>();
        for (const td of e.data.devices) seen.add(td.device);
        for (const tg of e.data.groups) for (const m of tg.devices) seen.add(m);
        for (const d of [...model.devices.values()]) if (!seen.has(d.name)) removeDevice(c, model, d.name as DeviceName, d.group);
      }
      return;
    }
    default:
      if (isModelEvent(e)) evolveModel(c, model, e);
  }
};

type SnapshotDevice = Extract<IommuEvent, { type: 'TopologySnapshotTaken' }>['data']['devices'][number];

/** a device's topology record as a sysfs read shows it (a shared one when it has no PASIDs: topologyRecords.ts) */
const topologyOf = (td: SnapshotDevice): DeviceTopologyState => topologyRecord(td.headerType ?? null, td.requireDirect ?? false, td.maxPasids ?? 0, td.pasidAttach ?? false);

/** whether a full read's devices give `topology` as it is: the same devices in the same order, each record the same */
const sameTopology = (topology: HostState['topology'], devices: readonly SnapshotDevice[]): boolean => {
  let i = 0;
  for (const name in topology) {
    const td = devices[i++];
    if (td === undefined || td.device !== name || !sameRecord(topology[name]!, topologyOf(td))) return false;
  }
  return i === devices.length;
};

/** the projection's facts an event sets before the records it touched are derived (the ctx's hwpt users read them) */
const beforeDerive = (c: Fold, e: IommuEvent): void => {
  const h = c.h;
  switch (e.type) {
    case 'TopologySnapshotTaken': {
      const caps = e.data.capabilities;
      const partial = e.data.partial === true;
      // what the read shows is written only where it differs from what the host has (most reads are the agent's
      // periodic one of a host where nothing changed): what the fold writes lives until the host's next event
      const prevCaps = h.capabilities;
      const override = caps.managedDmaDrivers;
      // the managed-DMA set the derivation reads: the snapshot's
      const nextCaps: HostCapabilitiesState = {
        iommu: caps.iommu,
        interruptRemapping: caps.interruptRemapping ?? (partial ? (prevCaps?.interruptRemapping ?? null) : null),
        allowUnsafeInterrupts: caps.allowUnsafeInterrupts,
        cacheCoherent: caps.cacheCoherent,
        kernelRelease: caps.kernelRelease ?? null,
        managedDmaDrivers: override ? (prevCaps?.managedDmaDrivers != null && sameList(prevCaps.managedDmaDrivers, override) ? prevCaps.managedDmaDrivers : [...override]) : null,
      };
      if (prevCaps === null || !sameRecord(prevCaps, nextCaps)) h.capabilities = nextCaps;
      const devices = e.data.devices;
      if (partial) {
        for (const td of devices) {
          const t = topologyOf(td);
          const prev = h.topology[td.device];
          if (prev === undefined || !sameRecord(prev, t)) h.topology[td.device] = t;
        }
      } else if (!sameTopology(h.topology, devices)) {
        const prev = h.topology;
        const next: HostState['topology'] = {};
        for (const td of devices) {
          const t = topologyOf(td);
          const p = prev[td.device];
          next[td.device] = p !== undefined && sameRecord(p, t) ? p : t;
        }
        h.topology = next;
      }
      return;
    }
    case 'VfioGroupClosed':
      // its refusal finding goes with the group fd
      if (anyOpen(c, passthroughRefusedGroupInUse.id)) closeViolation(c, fdKey(c, passthroughRefusedGroupInUse.id, e.data.groupFd));
      return;
    case 'VfioDeviceAttachPtIssued':
    case 'VfioDeviceDetachPtIssued': {
      // a PASID attachment is the device's own (the model keeps them per group: S39, __iommu_set_group_pasid)
      const d = c.view.facts.devices.get(e.data.device);
      if (!e.data.outcome.ok || e.data.pasid === undefined || !d) return;
      const pasids = { ...d.pasids };
      if (e.type === 'VfioDeviceAttachPtIssued') pasids[String(e.data.pasid)] = e.data.outcome.ptId;
      else delete pasids[String(e.data.pasid)];
      d.pasids = pasids;
      markDevice(h, e.data.device, d);
      return;
    }
    default:
      return;
  }
};

/** the findings an event opens or closes, read from the model after it, and the projection's own facts */
const afterDerive = (c: Fold, e: IommuEvent): void => {
  const { h, view } = c;
  switch (e.type) {
    case 'TopologySnapshotTaken': {
      // every group is checked (apply: `checkAll`)
      c.checkAll = true;
      if (e.data.partial === true) return;
      // sysfs shows drivers and membership, not ownership: groups nobody owns are known again
      h.uncertain = null;
      if (h.sequenceViolations.length > 0) {
        for (const key of h.sequenceViolations) closeViolation(c, key);
        h.sequenceViolations = [];
      }
      for (const [id, f] of view.facts.groups) {
        if ((f.uncertain || f.uncertainReason !== null) && view.model.groups.get(id)?.owner == null) {
          f.uncertain = false;
          f.uncertainReason = null;
          markGroup(h, id, f);
        }
      }
      return;
    }
    case 'DriverBound': {
      const d = view.model.devices.get(e.data.device);
      const g = d?.group == null ? undefined : shownGroup(view.model, d.group);
      if (d && g && view.isKernelDma(d.driver) && g.owner !== null) {
        const rule = kernelBindIntoUserGroup;
        openViolation(c, groupKey(c, rule.id, g.id), rule.id, rule.describeBound(g, d.name, e.data.driver), g.id, d.name);
      }
      return;
    }
    case 'DriverBindRefused': {
      const group = view.model.devices.get(e.data.device)?.group;
      const g = group == null ? undefined : shownGroup(view.model, group);
      if (g && g.owner !== null && !view.managed.has(e.data.driver)) {
        const rule = kernelBindIntoUserGroup;
        openViolation(c, groupKey(c, rule.id, g.id), rule.id, rule.describeRefused(g, e.data.device, e.data.driver, e.data.errno), g.id, e.data.device);
      }
      return;
    }
    case 'VfioDeviceOpened':
      if (e.data.outcome.ok) noteActor(c, e.data.device);
      return;
    case 'VfioDeviceAccessAttempted': {
      const fd = h.kernel?.fds.get(e.data.deviceFd);
      const granted = fd ? fd.accessGranted : accessGrantedOf(view.model, e.data.device);
      if (granted) return;
      const what = `${e.data.access}${e.data.request ? ` ${e.data.request}` : ''}`;
      const group = view.model.devices.get(e.data.device)?.group ?? null;
      if (e.data.outcome.ok) {
        const rule = accessGrantedWithoutBind;
        openViolation(c, fdKey(c, rule.id, e.data.deviceFd), rule.id, rule.describe(what, e.data.device, e.data.deviceFd), group, e.data.device);
      } else if (e.data.outcome.errno !== 'EBADF') {
        // -EBADF: fget() found no open file, so the call reached no device (kernel oracle, 6.1: the cdev open
        // had failed -ENOENT); any other refusal is the device's own access gate
        const rule = accessBeforeBind;
        openViolation(c, fdKey(c, rule.id, e.data.deviceFd), rule.id, rule.describe(what, e.data.device, e.data.deviceFd, e.data.outcome.errno), group, e.data.device);
      }
      return;
    }
    case 'VfioDeviceBindIommufdIssued': {
      const device = e.data.device;
      const shown = view.facts.devices.has(device);
      const group = view.model.devices.get(device)?.group ?? null;
      if (e.data.outcome.ok) {
        noteActor(c, e.data.device);
        const caps = h.capabilities;
        // null: nobody observed it (sysfs does not show MSI isolation); only a recorded false is a finding
        if (shown && caps && caps.interruptRemapping === false) {
          openViolation(c, deviceKey(c, unsafeInterrupts.id, device), unsafeInterrupts.id, unsafeInterrupts.describe(device, e.data.ictx, caps.allowUnsafeInterrupts), group, device);
        }
        closeFdViolations(c, e.data.deviceFd);
      } else if (e.data.outcome.errno === 'EPERM' && shown && group !== null) {
        refusedClaim(c, group, device, e.data.deviceFd, 'BIND_IOMMUFD');
      }
      return;
    }
    case 'VfioDeviceAttachPtIssued': {
      // the pt_id the device passed and the hwpt it attached itself (a sibling's replace moves it, not this)
      const d = view.facts.devices.get(e.data.device);
      if (e.data.outcome.ok && e.data.pasid === undefined && d && boundFdOf(view.model, e.data.device)?.hwpt != null) {
        d.attachedPt = e.data.ptId;
        d.selfAttachedHwpt = e.data.outcome.ptId;
        markDevice(h, e.data.device, d);
        const group = view.model.devices.get(e.data.device)?.group ?? null;
        if (group !== null) check(c, group);
      }
      return;
    }
    case 'VfioDeviceClosed': {
      closeFdViolations(c, e.data.deviceFd);
      // the close that unbound the device ends its unsafe-interrupts finding
      if (anyOpen(c, unsafeInterrupts.id) && (boundFdOf(view.model, e.data.device)?.ictx ?? null) === null) closeViolation(c, deviceKey(c, unsafeInterrupts.id, e.data.device));
      return;
    }
    case 'IommufdHwptAllocIssued': {
      // the dev_id's device, which the model's hwpt does not name (readModel.ts carries it on)
      const ctx = e.data.outcome.ok ? h.iommufds[e.data.ictx] : undefined;
      const o = ctx?.objects[e.data.outcome.ok ? e.data.outcome.hwptId : -1];
      const dev = ctx?.objects[e.data.devId];
      if (ctx && o && dev?.kind === 'device') ctx.objects[o.id] = { ...o, device: dev.device };
      return;
    }
    case 'VfioGroupSetContainerIssued':
      // an -EPERM is a refusal finding
      if (!e.data.outcome.ok && e.data.outcome.errno === 'EPERM') refusedClaim(c, e.data.group, null, e.data.groupFd, 'VFIO_GROUP_SET_CONTAINER');
      return;
    case 'VfioGroupGetDeviceFdIssued': {
      if (e.data.outcome.ok) {
        noteActor(c, e.data.device);
        return;
      }
      // a refusal on a group its own container holds (no IOMMU set yet: vfio_df_group_open -EINVAL) claimed
      // nothing from anyone: no other user, no blocker (kernel oracle, s11 on virtio-iommu)
      const g = shownGroup(view.model, e.data.group);
      const own = g !== undefined && g.container !== null && ownedByContainer(g.owner, g.container);
      if (!own && (e.data.outcome.errno === 'EPERM' || e.data.outcome.errno === 'EINVAL')) refusedClaim(c, e.data.group, e.data.device, e.data.groupFd, 'VFIO_GROUP_GET_DEVICE_FD');
      return;
    }
    case 'PassthroughErrorReported': {
      // the VMM's account of a refusal: evidence of the open refusal findings of its group
      if (e.data.group === undefined || view.facts.groups.get(e.data.group)?.openViolations === 0) return;
      const keys = groupIndex(c).get(`${h.host}|${e.data.group}`);
      if (!keys) return;
      for (const key of keys) {
        const v = c.fleet.violations.open[key];
        if (v && (v.ruleId === passthroughRefusedNotViable.id || v.ruleId === passthroughRefusedGroupInUse.id) && v.evidence[v.evidence.length - 1] !== c.ev.id) v.evidence.push(c.ev.id);
      }
      return;
    }
    default:
      // every other event's records are the model's alone (derived), or it is a signal with no state of its own
      return;
  }
};

/** the groups to check after the event, when it checks every group of the host (a sysfs read) */
const checkEveryGroup = (c: Fold, model: ModelState, facts: HostFacts): void => {
  const { touched, toCheck } = c;
  // a host may have thousands of groups: no list search per group
  const all = new Set<number>(toCheck.items.slice(0, toCheck.n));
  // the host's groups in ascending order (the order of its group records)
  for (const id of [...facts.groups.keys()].sort((a, b) => a - b)) all.add(id);
  for (let i = 0; i < touched.groups.n; i++) all.add(touched.groups.items[i]!);
  for (let i = 0; i < touched.devices.n; i++) {
    const group = model.devices.get(touched.devices.items[i]!)?.group;
    if (group != null) all.add(group);
  }
  toCheck.n = 0;
  for (const id of all) toCheck.items[toCheck.n++] = id;
};

/** applies the event `c.ev` to its host `c.h` */
const apply = (c: Fold, e: IommuEvent): void => {
  const { h, view, touched, toCheck } = c;
  // a host of a state written before the model was folded (a format-1 snapshot): its model as its read model says
  const model = (h.kernel ??= modelFromReadModel(h, [...managedSetOf(c, h)]));
  view.host = h.host;
  view.model = model;
  view.managed = managedSetOf(c, h);
  const facts = (view.facts = factsOf(h));
  followObjects(h, model, facts, e, c.openObjectViolation, c.closeObjectViolation);
  if (h.ownershipRecorded === false && OWNERSHIP_CALLS.has(e.type)) {
    h.ownershipRecorded = true;
    for (const [id, f] of facts.groups) {
      f.ownerKnown = true;
      markGroup(h, id, f);
    }
    if (c.changedOut) c.changedOut.all = true;
  }
  // the ctx, container and fd records this event touches are derived when they are read (readModel.ts pendingOf)
  touched.pending = pendingOf(h, model);
  try {
    beforeDerive(c, e);
    view.managed = managedSetOf(c, h);
    foldModel(c, model, e);
    let groupsBefore: Set<number> | undefined;
    if (!isUntouched(touched)) {
      for (let i = 0; i < touched.groups.n; i++) {
        const id = touched.groups.items[i]!;
        if ((facts.groups.get(id)?.openViolations ?? 0) > 0) (groupsBefore ??= new Set()).add(id);
      }
      syncFacts(h, model, touched);
    }
    for (const fd of c.goneFds) closeFdViolations(c, fd);
    for (const name of c.goneDevices) {
      if (anyOpen(c, unsafeInterrupts.id)) closeViolation(c, deviceKey(c, unsafeInterrupts.id, name));
      delete h.topology[name];
    }
    afterDerive(c, e);
    // the group rules of every group touched (a device's record, its actors or access, is its group's)
    if (c.checkAll) checkEveryGroup(c, model, facts);
    else {
      for (let i = 0; i < touched.groups.n; i++) check(c, touched.groups.items[i]!);
      for (let i = 0; i < touched.devices.n; i++) {
        const group = model.devices.get(touched.devices.items[i]!)?.group;
        if (group != null) check(c, group);
      }
    }
    for (let i = 0; i < toCheck.n; i++) {
      const id = toCheck.items[i]!;
      const f = facts.groups.get(id);
      if (f) checkGroup(c, model.groups.get(id)!, f);
      else if (groupsBefore?.has(id)) closeGroupViolations(c, id);
    }
    // the groups checked are every group whose record the read model derived again or the event's facts wrote
    const changed = c.changedOut;
    if (changed) {
      if (c.checkAll) changed.all = true;
      for (let i = 0; i < toCheck.n; i++) changed.groups.push(toCheck.items[i]!);
    }
  } finally {
    clearTouched(touched);
    toCheck.n = 0;
    c.checkAll = false;
    if (c.goneFds.length > 0) c.goneFds.length = 0;
    if (c.goneDevices.length > 0) c.goneDevices.length = 0;
  }
};

const closeSequenceViolation = (c: Fold, host: HostState, key: string): void => {
  closeViolation(c, key);
  const i = host.sequenceViolations.indexOf(key);
  if (i >= 0) host.sequenceViolations.splice(i, 1);
};

/**
 * What a seq that is not the next one means for the violations (recorded on arrival, whether the event is
 * applied or held). A gap opens `sequence-gap`: the events after it are held (the reorder buffer, below)
 * and the state shown is the state before it; it closes when its last missing seq arrives (or at the next
 * topology snapshot). An event that completes a gap records `sequence-late-arrival` (information, opened
 * and closed by it). A seq that was never missing (a repeat) opens `sequence-out-of-order` until the next
 * topology snapshot. The host is marked uncertain only when an event is applied out of seq order: a
 * repeat, a fill of a gap whose later events were already applied, or held events applied past a gap.
 */
const openGap = (c: Fold, host: HostState, g: SequenceGap, why: string): void => {
  openViolation(c, g.key, sequenceGap.id, sequenceGap.describe(host.host, g, why), null, null);
  host.sequenceViolations.push(g.key);
};

const sequenceStep = (c: Fold, host: HostState, last: number): void => {
  const ev = c.ev;
  const name = ev.host;
  // applied now although a later seq already was: the fold leaves seq order
  const lateApplied = host.appliedSeq !== null && ev.seq <= host.appliedSeq;
  const seen = observeSequence(host.sequence, last, ev.seq, name, gapKey);
  switch (seen.kind) {
    case 'in-order':
      return;
    case 'gap':
      openGap(c, host, seen.gap, '');
      return;
    case 'late': {
      if (lateApplied) markUncertain(c, `event seq ${ev.seq} from ${name} arrived after seq ${host.appliedSeq} was applied: applied out of order`);
      if (seen.opened) openGap(c, host, seen.opened, ` (seq ${ev.seq} arrived after seq ${seen.opened.to + 1})`);
      if (seen.fill && seen.filled) {
        const g = seen.fill;
        closeSequenceViolation(c, host, g.key);
        const range = g.key.slice(g.key.lastIndexOf('|') + 1);
        const key = `sequence-late-arrival|${name}|${range}`;
        const how = lateApplied ? 'applied after later events' : 'the events held after them follow in seq order';
        openViolation(c, key, 'sequence-late-arrival', `events ${range} from ${name} arrived late, the last one (seq ${ev.seq}) after seq ${last}: ${how}`, null, null);
        closeViolation(c, key);
      }
      return;
    }
    case 'repeat': {
      const reason = `event seq ${ev.seq} from ${name} arrived after seq ${last} but was not missing (a repeat)`;
      const key = `sequence-out-of-order|${name}|${ev.seq}|${ev.id}`;
      markUncertain(c, reason);
      openViolation(c, key, 'sequence-out-of-order', `${reason}: applied late, state uncertain until the next topology snapshot`, null, null);
      host.sequenceViolations.push(key);
      return;
    }
    default: {
      const _exhaustive: never = seen;
      return _exhaustive;
    }
  }
};

// --- the reorder buffer ---------------------------------------------------------------------------
// Per host, events beyond a missing seq wait in `held` (ascending by seq, in the state, so snapshots and
// time travel keep them) until the missing seq arrives; then the contiguous run is applied in seq order.
// Cost per event: a binary search and an insert (an append when the late run arrives in order), and each
// held event is applied once; nothing depends on other hosts, on open violations or on the history.

/** applies one event of host `c.h` as the event being folded (its refs name it) */
const applyAs = (c: Fold, event: IommuEvent, position: string | undefined): void => {
  c.ev = event;
  c.pos = position;
  c.cachedRef = null;
  apply(c, event);
};

const hold = (host: HostState, event: IommuEvent, position: string | undefined): void => {
  const held = host.held;
  const item = { event, position: position ?? null };
  const seq = event.seq;
  if (held.length === 0 || held[held.length - 1]!.event.seq <= seq) {
    held.push(item);
    return;
  }
  // after every held event with seq ≤ this one (a repeated seq follows its twin)
  let lo = 0;
  let hi = held.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (held[mid]!.event.seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  held.splice(lo, 0, item);
};

/**
 * Applies held events in seq order: the contiguous run after the frontier, or (`below`) every held event
 * with a seq under it, jumping the missing seqs (they stand as gaps, the host becomes uncertain).
 */
const releaseHeld = (c: Fold, host: HostState, below: number | null): void => {
  const held = host.held;
  let i = 0;
  try {
    while (i < held.length) {
      const { event, position } = held[i]!;
      const frontier = host.appliedSeq;
      const next = frontier === null ? c.options.firstSeq : frontier + 1;
      if (event.seq > next) {
        if (below === null || event.seq >= below) break;
        c.ev = event;
        c.pos = position ?? undefined;
        c.cachedRef = null;
        markUncertain(c, `events ${next}..${event.seq - 1} from ${host.host} are missing: later events applied past them`);
      }
      // taken out of the buffer before it is applied: an event the fold throws on is not applied twice
      i++;
      if (frontier === null || event.seq > frontier) host.appliedSeq = event.seq;
      applyAs(c, event, position ?? undefined);
    }
  } finally {
    if (i > 0) held.splice(0, i);
  }
};

/** makes `event` the one being folded into `state` and returns its host's state */
const enter = (c: Fold, state: FleetState, event: IommuEvent, posText: string | undefined): HostState => {
  c.fleet = state;
  c.ev = event;
  c.pos = posText;
  c.cachedRef = null;
  let host = state.hosts[event.host];
  if (!host) state.hosts[event.host] = host = newHost(event.host, c.managedSetOf);
  else {
    if (host.held === undefined) {
      // a state from before the reorder buffer: everything recorded was applied
      host.held = [];
      host.appliedSeq = host.lastSeq;
    }
    // a restored or cloned host (plain data): the fold's own object from now on (readModel.ts liveHost)
    if (!isLiveHost(host)) state.hosts[event.host] = host = liveHost(host, c.managedSetOf);
  }
  c.h = host;
  return host;
};

const evolveOne = (c: Fold, state: FleetState, event: IommuEvent, position?: bigint): FleetState => {
  const posText = position === undefined ? undefined : position.toString();
  const host = enter(c, state, event, posText);
  const firstSeq = c.options.firstSeq;
  const seq = event.seq;
  const isTopology = event.type === 'TopologySnapshotTaken';
  const last = host.lastSeq;
  if (last === null) {
    // the history starts at firstSeq: a first event beyond it (not a sysfs read) opens the gap before it
    if (seq > firstSeq && !isTopology) {
      host.sequence.lowestSeq = firstSeq;
      sequenceStep(c, host, firstSeq - 1);
    } else host.sequence.lowestSeq = seq;
  } else if (seq !== last + 1) sequenceStep(c, host, last);
  if (host.lastTimeNs !== null && isEarlierDecimal(event.time, host.lastTimeNs)) {
    const clock = host.clock;
    clock.wentBack.push({ event: ref(c), previousTimeNs: host.lastTimeNs });
    if (clock.wentBack.length > MAX_CLOCK_STEPS + 100) clock.wentBackDropped += clock.wentBack.splice(0, clock.wentBack.length - MAX_CLOCK_STEPS).length;
  }
  if (last === null || seq > last) host.lastSeq = seq;
  host.lastTimeNs = event.time;
  host.eventCount++;
  state.eventCount++;
  if (posText !== undefined) state.lastPosition = posText;

  const applied = host.appliedSeq;
  if (applied === null ? seq <= firstSeq : seq <= applied + 1) {
    // the next seq (or an earlier one: a repeat or a late fill, applied where it arrives)
    if (applied === null || seq > applied) host.appliedSeq = seq;
    apply(c, event);
    if (host.held.length > 0) releaseHeld(c, host, null);
  } else if (isTopology) {
    // a sysfs read re-bases the host: what is held before it is applied, it is the new frontier
    releaseHeld(c, host, seq);
    host.appliedSeq = seq;
    applyAs(c, event, posText);
    if (host.held.length > 0) releaseHeld(c, host, null);
  } else {
    hold(host, event, posText);
    if (host.held.length > c.options.maxHeldEvents) releaseHeld(c, host, Number.POSITIVE_INFINITY);
    // after a defect threw half way through a release, what is contiguous again goes on at the next event
    else if (host.held[0]!.event.seq <= (applied === null ? firstSeq : applied + 1)) releaseHeld(c, host, null);
  }
  return state;
};

const evolve = (c: Fold, state: FleetState, event: IommuEvent, position?: bigint, opened?: Violation[], changed?: ChangedGroups): FleetState => {
  c.openedOut = opened;
  c.changedOut = changed;
  if (changed) {
    changed.all = false;
    changed.groups.length = 0;
  }
  try {
    return evolveOne(c, state, event, position);
  } finally {
    c.openedOut = undefined;
    c.changedOut = undefined;
  }
};

const passOver = (c: Fold, state: FleetState, event: IommuEvent, position?: bigint): FleetState => {
  const host = enter(c, state, event, position === undefined ? undefined : position.toString());
  const seq = event.seq;
  if (host.lastSeq === null || seq > host.lastSeq) host.lastSeq = seq;
  host.sequence.lowestSeq ??= seq;
  // evolve may have held it before it threw: it leaves the buffer, its seq is the frontier if it was next
  const i = host.held.findIndex((x) => x.event.id === event.id);
  if (i >= 0) host.held.splice(i, 1);
  const applied = host.appliedSeq;
  if (applied === null ? seq <= c.options.firstSeq : seq === applied + 1) {
    host.appliedSeq = seq;
    if (host.held.length > 0) releaseHeld(c, host, null);
  }
  return state;
};

export const createFleetProjection = (options: FleetProjectionOptions = {}): FleetProjection => {
  const resolved: ResolvedOptions = {
    managedDmaDrivers: options.managedDmaDrivers ?? DEFAULT_MANAGED_DMA_DRIVERS,
    tenancy: options.tenancy === undefined ? DEFAULT_TENANCY_POLICY : options.tenancy,
    closedViolationLimit: options.closedViolationLimit ?? 100_000,
    maxHeldEvents: options.maxHeldEvents ?? 4096,
    firstSeq: options.firstSeq ?? 1,
  };
  if (!Number.isInteger(resolved.maxHeldEvents) || resolved.maxHeldEvents < 0) {
    throw new RangeError(`fleet projection: maxHeldEvents must be an integer ≥ 0, got ${resolved.maxHeldEvents}`);
  }
  const defaultManaged = new Set(resolved.managedDmaDrivers);
  const tenantMixing = createTenantMixing(resolved.tenancy);
  const groupRules: readonly GroupRule[] = [kernelDriverInUserGroup, splitDomain, twoOwners, legacyAndCdev, ...(tenantMixing ? [tenantMixing] : [])];
  const view: FoldView = {
    host: '',
    model: null!,
    facts: null!,
    managed: defaultManaged,
    isKernelDma: (driver) => driver !== null && !view.managed.has(driver),
  };
  const touched = newTouched();
  const c: Fold = {
    options: resolved,
    defaultManaged,
    overrideSets: new WeakMap(),
    lastOverride: null,
    lastOverrideSet: defaultManaged,
    managedSetOf: (host) => managedSetOf(c, host),
    groupRules,
    ruleHolds: groupRules.map(() => false),
    view,
    groupIndexes: new WeakMap(),
    ruleCountIndexes: new WeakMap(),
    touched,
    changes: touchedBy(touched),
    goneFds: [],
    goneDevices: [],
    toCheck: reusedList<number>(),
    checkAll: false,
    fleet: null!,
    h: null!,
    ev: null!,
    pos: undefined,
    cachedRef: null,
    openedOut: undefined,
    changedOut: undefined,
    openObjectViolation: (key, ruleId, message, group, device) => openViolation(c, key, ruleId, message, group, device),
    closeObjectViolation: (key) => closeViolation(c, key),
  };
  return {
    name: 'fleet',
    options: resolved,
    initialState: () => ({ formatVersion: 1, hosts: {}, violations: { open: {}, closed: [], closedDropped: 0 }, eventCount: 0, lastPosition: null }),
    evolve: (state, event, position, opened, changed) => evolve(c, state, event, position, opened, changed),
    passOver: (state, event, position) => passOver(c, state, event, position),
  };
};
