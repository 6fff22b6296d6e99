import { DEFAULT_MANAGED_DMA_DRIVERS, OPERATION_TYPES, type IommuEvent } from '../schemas/index.js';
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
import { followObjects } from './iommufdObjects.js';
import { newSequenceState, observeSequence } from './sequence.js';
import { isModelEvent } from './kernel/operations.js';
import { upstreamDecider } from './kernel/upstream.decider.js';
import { clearTouched, deriveTouched, isUntouched, modelFromReadModel, newDevice, newGroup, newTouched, noteEffect } from './readModel.js';
import { applyEffect } from './kernel/kernel.js';
import { deviceWith } from './kernel/records.js';
import type { ModelState } from './kernel/types.js';
import type {
  DeviceState,
  DomainRef,
  EventRef,
  FleetState,
  GroupState,
  HostState,
  IommufdContextState,
  IommufdObjectState,
  SequenceGap,
  UserOwner,
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
   * again too): what a consumer of the fold needs without scanning the map of open violations.
   */
  evolve(state: FleetState, event: IommuEvent, position?: bigint, opened?: Violation[]): FleetState;
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

const DEFAULT_DOMAIN: DomainRef = Object.freeze({ kind: 'default' });
const BLOCKING_DOMAIN: DomainRef = Object.freeze({ kind: 'blocking' });

const remove = <T>(list: T[], item: T): boolean => {
  const i = list.indexOf(item);
  if (i < 0) return false;
  list.splice(i, 1);
  return true;
};
const addOnce = <T>(list: T[], item: T): void => {
  if (!list.includes(item)) list.push(item);
};

const newHost = (host: string): HostState => ({
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
});

const gapKey = (host: string, from: number, to: number): string => `sequence-gap|${host}|${from}..${to}`;

/** clock steps kept per host (the newest); time travel folds further when older ones were dropped */
export const MAX_CLOCK_STEPS = 1000;

// decimal strings without leading zeros compare by length, then lexically
const compareDecimal = (a: string, b: string): number => (a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0);


/**
 * The calls that show who owns a group and on which domain it is: VFIO and iommufd operations (a VMM's
 * recorder). Driver binds, uevents, traces and sysfs snapshots never show an ownership claim.
 */
const OWNERSHIP_CALLS: ReadonlySet<string> = new Set([...OPERATION_TYPES].filter((t) => !t.startsWith('Driver')));


const newIctx = (handle: string): IommufdContextState => ({ handle, open: true, objects: {}, devices: [], groups: [] });

const newObject = (id: number, kind: IommufdObjectState['kind'], auto: boolean, ioasId: number | null, device: string | null): IommufdObjectState => ({
  id,
  kind,
  auto,
  ioasId,
  device,
  devices: [],
  groups: [],
  mappings: 0,
});

const sameOwner = (a: UserOwner | null, b: UserOwner): boolean => a !== null && a.kind === b.kind && a.handle === b.handle;
/** the owner a group's container claims it as (a legacy container, or an iommufd used as one) */
const containerOwner = (c: { readonly handle: string; readonly kind: 'legacy' | 'iommufd' }): UserOwner => ({ kind: c.kind === 'legacy' ? 'legacy-container' : 'iommufd', handle: c.handle });

export const createFleetProjection = (options: FleetProjectionOptions = {}): FleetProjection => {
  const resolved = {
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
  // host overrides, keyed by the array in the state (a restored state rebuilds its set once)
  const overrideSets = new WeakMap<readonly string[], Set<string>>();
  const tenantMixing = createTenantMixing(resolved.tenancy);
  // the group rules in evaluation order (kernel-driver-in-user-group first: checkGroup relies on it)
  const groupRules: readonly GroupRule[] = [kernelDriverInUserGroup, splitDomain, twoOwners, legacyAndCdev, ...(tenantMixing ? [tenantMixing] : [])];

  // the event being applied: evolve is synchronous and never re-entered, so these are per-call
  let fleet!: FleetState;
  let h!: HostState;
  let ev!: IommuEvent;
  // the store position of the event being applied (decimal string), when it has one
  let pos: string | undefined;
  let cachedRef: EventRef | null = null;
  const ref = (): EventRef =>
    (cachedRef ??= pos === undefined ? { eventId: ev.id, seq: ev.seq, timeNs: ev.time } : { eventId: ev.id, seq: ev.seq, timeNs: ev.time, position: pos });

  const managedSet = (): Set<string> => {
    const override = h.capabilities?.managedDmaDrivers;
    if (!override) return defaultManaged;
    let set = overrideSets.get(override);
    if (!set) overrideSets.set(override, (set = new Set(override)));
    return set;
  };
  const isKernelDma = (driver: string | null): boolean => driver !== null && !managedSet().has(driver);

  // open violation keys by host and group, keyed by the open-violation record of the state (a restored or
  // cloned state rebuilds it once): dropping a group closes its violations without a scan of all of them
  const groupIndexes = new WeakMap<object, Map<string, Set<string>>>();
  const groupIndex = (): Map<string, Set<string>> => {
    const open = fleet.violations.open;
    let index = groupIndexes.get(open);
    if (!index) {
      index = new Map();
      for (const v of Object.values(open)) if (v.group !== undefined) indexKey(index, `${v.host}|${v.group}`).add(v.key);
      groupIndexes.set(open, index);
    }
    return index;
  };
  const indexKey = (index: Map<string, Set<string>>, k: string): Set<string> => {
    let set = index.get(k);
    if (!set) index.set(k, (set = new Set()));
    return set;
  };

  // --- violations -----------------------------------------------------------------------------------

  const openViolation = (key: string, ruleId: RuleId, message: string, group: number | null, device: string | null): void => {
    if (Object.hasOwn(fleet.violations.open, key)) return;
    const v: { -readonly [K in keyof Violation]: Violation[K] } = {
      key,
      ruleId,
      severity: RULES[ruleId].severity,
      host: h.host,
      message,
      opened: ref(),
      evidence: [ev.id],
    };
    if (group !== null) v.group = group;
    if (device !== null) v.device = device;
    fleet.violations.open[key] = v;
    openedOut?.push(v);
    h.openViolations++;
    if (group !== null) {
      const g = h.groups[group];
      if (g) g.openViolations++;
      indexKey(groupIndex(), `${h.host}|${group}`).add(key);
    }
  };

  const closeViolation = (key: string): void => {
    const v = fleet.violations.open[key];
    if (!v) return;
    delete fleet.violations.open[key];
    const closed = ref();
    v.closed = closed;
    // how long the exposure lasted (0 when the host's clock went back in between)
    const ns = BigInt(closed.timeNs) - BigInt(v.opened.timeNs);
    v.durationNs = ns > 0n ? ns.toString() : '0';
    if (v.evidence[v.evidence.length - 1] !== ev.id) v.evidence.push(ev.id);
    const log = fleet.violations;
    log.closed.push(v);
    // trim in batches of a tenth of the limit: shifting one at a time is O(limit) per close
    const limit = resolved.closedViolationLimit;
    if (log.closed.length > limit + Math.max(1, Math.floor(limit / 10))) {
      const drop = log.closed.length - limit;
      log.closed.splice(0, drop);
      log.closedDropped += drop;
    }
    h.openViolations--;
    if (v.group !== undefined) {
      const g = h.groups[v.group];
      if (g) g.openViolations--;
      groupIndex().get(`${v.host}|${v.group}`)?.delete(key);
    }
  };

  const groupKey = (rule: RuleId, g: number): string => `${rule}|${h.host}|g${g}`;
  const deviceKey = (rule: RuleId, d: string): string => `${rule}|${h.host}|${d}`;
  const fdKey = (rule: RuleId, fd: string): string => `${rule}|${h.host}|fd:${fd}`;

  /** syncs one group rule: open while it holds (message built only when it opens), closed otherwise */
  const syncGroupRule = (rule: GroupRule, g: GroupState): void => {
    if (rule.holds(g, h)) {
      const key = groupKey(rule.id, g.group);
      if (!Object.hasOwn(fleet.violations.open, key)) openViolation(key, rule.id, rule.describe(g, h), g.group, null);
    } else if (g.openViolations > 0) closeViolation(groupKey(rule.id, g.group));
  };

  /** a cheap look before the full re-check: does any group or member rule hold? */
  const anyRuleHolds = (g: GroupState): boolean => {
    for (const rule of groupRules) if (rule.holds(g, h)) return true;
    if (g.domain.kind !== 'hwpt') return false;
    for (const m of g.members) {
      const d = h.devices[m];
      if (d && translatedByUnattachedDomain.holdsFor(d, g, h)) return true;
    }
    return false;
  };

  /** re-evaluates every group-level rule (projections/violations/*) of one group after an event changed it */
  const checkGroup = (g: GroupState): void => {
    if (g.openViolations === 0 && !anyRuleHolds(g)) return;
    syncGroupRule(kernelDriverInUserGroup, g);
    if (g.openViolations > 0) {
      // the close conditions of the rules an event opens, that a group change can make true
      if (passthroughRefusedNotViable.settled(g)) closeViolation(groupKey(passthroughRefusedNotViable.id, g.group));
      if (kernelBindIntoUserGroup.settled(g)) closeViolation(groupKey(kernelBindIntoUserGroup.id, g.group));
    }
    for (let i = 1; i < groupRules.length; i++) syncGroupRule(groupRules[i]!, g);
    const member = translatedByUnattachedDomain;
    for (const m of g.members) {
      const d = h.devices[m];
      if (!d) continue;
      if (member.holdsFor(d, g, h)) {
        const key = deviceKey(member.id, m);
        if (!Object.hasOwn(fleet.violations.open, key)) openViolation(key, member.id, member.describe(d, g), g.group, m);
      } else if (g.openViolations > 0) closeViolation(deviceKey(member.id, m));
    }
  };

  const checkDeviceGroup = (d: DeviceState): void => {
    if (d.group === null) return;
    const g = h.groups[d.group];
    if (g) checkGroup(g);
  };

  // --- state helpers --------------------------------------------------------------------------------

  /** a new group record of this host: its owner is known once an ownership call was recorded, uncertain while the host is */
  const ensureGroupRecord = (n: number): GroupState => {
    const g = newGroup(n);
    g.ownerKnown = h.ownershipRecorded !== false;
    if (h.uncertain) {
      g.uncertain = true;
      g.uncertainReason = h.uncertain.reason;
    }
    return g;
  };
  const ensureGroup = (n: number): GroupState => (h.groups[n] ??= ensureGroupRecord(n));
  const ensureDevice = (name: string): DeviceState => {
    let d = h.devices[name];
    if (!d) h.devices[name] = d = newDevice(name);
    return d;
  };
  const ensureIctx = (handle: string): IommufdContextState => {
    let c = h.iommufds[handle];
    if (!c) h.iommufds[handle] = c = newIctx(handle);
    return c;
  };
  const groupOf = (d: DeviceState): GroupState | undefined => (d.group === null ? undefined : h.groups[d.group]);

  const setGroupDomain = (g: GroupState, domain: DomainRef): void => {
    const old = g.domain;
    if (old.kind === 'hwpt' && old.ictx !== undefined) {
      const o = h.iommufds[old.ictx]?.objects[old.hwptId!];
      if (o) remove(o.groups, g.group);
    }
    g.domain = domain;
    if (domain.kind === 'hwpt' && domain.ictx !== undefined) {
      const o = h.iommufds[domain.ictx]?.objects[domain.hwptId!];
      if (o) addOnce(o.groups, g.group);
    }
    for (const m of g.members) {
      const d = h.devices[m];
      if (d) d.translatedBy = domain;
    }
  };

  const addMember = (g: GroupState, d: DeviceState): void => {
    if (d.group !== null && d.group !== g.group) {
      const old = h.groups[d.group];
      if (old) removeMember(old, d);
    }
    if (!g.members.includes(d.device)) {
      g.members.push(d.device);
      if (d.kernelDma) g.kernelDmaDrivers++;
    }
    d.group = g.group;
    // a device probed into a group lands in the group's current domain (S27)
    d.translatedBy = g.domain;
  };

  const removeMember = (g: GroupState, d: DeviceState): void => {
    if (!remove(g.members, d.device)) return;
    if (d.kernelDma) g.kernelDmaDrivers--;
    if (remove(g.attachedDevices, d.device) && g.attachedDevices.length === 0 && g.domain.kind === 'hwpt') {
      setGroupDomain(g, g.userOwner ? BLOCKING_DOMAIN : DEFAULT_DOMAIN);
    }
    if (g.openViolations > 0) closeViolation(deviceKey('translated-by-unattached-domain', d.device));
    d.group = null;
    d.translatedBy = null;
  };

  /** closes every open violation of a group (it is gone) */
  const closeGroupViolations = (group: number): void => {
    const keys = groupIndex().get(`${h.host}|${group}`);
    if (keys) for (const key of [...keys]) closeViolation(key);
  };

  const dropGroupIfGone = (g: GroupState): void => {
    if (g.members.length > 0 || g.userOwner !== null || g.legacyGroupOpen) return;
    if (g.openViolations > 0) closeGroupViolations(g.group);
    delete h.groups[g.group];
  };

  const setDriver = (d: DeviceState, driver: string | null): void => {
    const g = groupOf(d);
    if (d.kernelDma && g) g.kernelDmaDrivers--;
    d.driver = driver;
    d.kernelDma = isKernelDma(driver);
    if (d.kernelDma && g) g.kernelDmaDrivers++;
  };

  const noteActor = (d: DeviceState): void => {
    const a = ev.actor;
    if (!a) return;
    if (a.tenant !== undefined) d.tenant = a.tenant;
    if (a.vm !== undefined) d.vm = a.vm;
  };

  /** a successful claim of user DMA ownership (iommu_device_claim_dma_owner / iommu_group_claim_dma_owner) */
  const claim = (g: GroupState, owner: UserOwner): void => {
    if (g.userOwner === null) {
      g.userOwner = owner;
      g.userOwnerCount = 1;
      // __iommu_take_dma_ownership: the group moves to its blocking domain
      setGroupDomain(g, BLOCKING_DOMAIN);
      return;
    }
    g.userOwnerCount++;
    if (sameOwner(g.userOwner, owner) || g.extraOwners.some((o) => sameOwner(o, owner))) return;
    g.extraOwners.push(owner);
    g.twoOwners = true;
  };

  /** one owner reference dropped; the last one of the last owner returns the group to its default domain */
  const release = (g: GroupState, owner: UserOwner, ownerGone: boolean): void => {
    if (g.userOwnerCount > 0) g.userOwnerCount--;
    if (ownerGone) {
      if (sameOwner(g.userOwner, owner)) g.userOwner = g.extraOwners.shift() ?? null;
      else g.extraOwners = g.extraOwners.filter((o) => !sameOwner(o, owner));
      g.twoOwners = g.extraOwners.length > 0;
    }
    if (g.userOwner === null || g.userOwnerCount === 0) {
      g.userOwner = null;
      g.extraOwners = [];
      g.twoOwners = false;
      g.userOwnerCount = 0;
      // __iommu_release_dma_ownership: back to the default domain; the group state is known again
      setGroupDomain(g, DEFAULT_DOMAIN);
      if (!h.uncertain) {
        g.uncertain = false;
        g.uncertainReason = null;
      }
    }
  };

  const hwptObject = (ictx: string, hwpt: number, ptId: number): IommufdObjectState => {
    const c = ensureIctx(ictx);
    let o = c.objects[hwpt];
    if (!o) c.objects[hwpt] = o = newObject(hwpt, 'hwpt', ptId !== hwpt, ptId !== hwpt ? ptId : null, null);
    return o;
  };

  const dropDeviceFromHwpt = (ictx: string | null, hwpt: number, device: string): void => {
    if (ictx === null) return;
    const c = h.iommufds[ictx];
    const o = c?.objects[hwpt];
    if (!c || !o) return;
    remove(o.devices, device);
    // an auto hwpt is freed with its last user (iommufd_hw_pagetable_put)
    if (o.auto && o.devices.length === 0 && o.groups.length === 0) delete c.objects[hwpt];
  };

  const attach = (d: DeviceState, ptId: number, hwpt: number): void => {
    const ictx = d.boundIctx;
    const g = groupOf(d);
    const obj = ictx !== null ? hwptObject(ictx, hwpt, ptId) : null;
    d.attachedPt = ptId;
    if (d.attachedHwpt !== null) {
      const old = d.attachedHwpt;
      d.selfAttachedHwpt = hwpt;
      if (old === hwpt) return;
      // replace: the whole group moves, every attached sibling with it (iommufd_device_do_replace)
      const movers = g ? g.attachedDevices : [d.device];
      for (const m of movers) {
        const md = h.devices[m];
        if (!md) continue;
        md.attachedHwpt = hwpt;
        if (obj) addOnce(obj.devices, m);
        dropDeviceFromHwptKeep(ictx, old, m);
      }
      if (g) setGroupDomain(g, ictx !== null ? { kind: 'hwpt', hwptId: hwpt, ictx } : { kind: 'hwpt', hwptId: hwpt });
      freeIfUnused(ictx, old);
      return;
    }
    d.attachedHwpt = hwpt;
    d.selfAttachedHwpt = hwpt;
    if (obj) addOnce(obj.devices, d.device);
    if (!g) return;
    g.attachedDevices.push(d.device);
    // the first attach moves the whole group; later ones join (or, recorded against another hwpt, split it)
    if (g.domain.kind !== 'hwpt') setGroupDomain(g, ictx !== null ? { kind: 'hwpt', hwptId: hwpt, ictx } : { kind: 'hwpt', hwptId: hwpt });
  };

  const dropDeviceFromHwptKeep = (ictx: string | null, hwpt: number, device: string): void => {
    if (ictx === null) return;
    const o = h.iommufds[ictx]?.objects[hwpt];
    if (o) remove(o.devices, device);
  };
  const freeIfUnused = (ictx: string | null, hwpt: number): void => {
    if (ictx === null) return;
    const c = h.iommufds[ictx];
    const o = c?.objects[hwpt];
    if (c && o && o.auto && o.devices.length === 0 && o.groups.length === 0) delete c.objects[hwpt];
  };

  const detach = (d: DeviceState): void => {
    if (d.attachedHwpt === null) return;
    const hwpt = d.attachedHwpt;
    d.attachedHwpt = null;
    d.selfAttachedHwpt = null;
    d.attachedPt = null;
    const g = groupOf(d);
    if (g && remove(g.attachedDevices, d.device) && g.attachedDevices.length === 0 && g.domain.kind === 'hwpt') {
      // the last detach: iommu_detach_group → blocking while owned (__iommu_group_set_core_domain)
      setGroupDomain(g, g.userOwner ? BLOCKING_DOMAIN : DEFAULT_DOMAIN);
    }
    dropDeviceFromHwpt(d.boundIctx, hwpt, d.device);
  };

  /** the implicit unbind at fd close: PASIDs, detach, then release of the DMA ownership (S1 step 7, S21) */
  const unbind = (d: DeviceState, fdHandle: string, ictx: string): void => {
    const g = groupOf(d);
    for (const p of Object.keys(d.pasids)) if (g) delete g.pasids[p];
    d.pasids = {};
    detach(d);
    const c = h.iommufds[ictx];
    if (c) {
      remove(c.devices, d.device);
      for (const [id, o] of Object.entries(c.objects)) if (o.kind === 'device' && o.device === d.device) delete c.objects[id];
    }
    d.boundFd = d.boundFd === fdHandle ? null : d.boundFd;
    d.boundIctx = null;
    d.devId = null;
    if (g) {
      let still = false;
      for (const m of g.members) {
        const md = h.devices[m];
        if (md && md !== d && md.boundIctx === ictx) still = true;
      }
      release(g, { kind: 'iommufd', handle: ictx }, !still);
      if (c && !still) remove(c.groups, g.group);
    }
    if (c && !c.open && c.devices.length === 0) delete h.iommufds[ictx];
    if (h.openViolations > 0) closeViolation(deviceKey('unsafe-interrupts', d.device));
  };

  const bindOk = (d: DeviceState, fdHandle: string, ictx: string, devId: number | null): void => {
    const c = ensureIctx(ictx);
    addOnce(c.devices, d.device);
    if (devId !== null) c.objects[devId] = newObject(devId, 'device', false, null, d.device);
    d.boundFd = fdHandle;
    d.boundIctx = ictx;
    d.devId = devId;
    d.accessGranted = true;
    const fd = h.deviceFds[fdHandle];
    if (fd) {
      fd.accessGranted = true;
      fd.boundIctx = ictx;
    }
    noteActor(d);
    const g = groupOf(d);
    if (g) {
      claim(g, { kind: 'iommufd', handle: ictx });
      addOnce(c.groups, g.group);
    }
    const caps = h.capabilities;
    // null: nobody observed it (sysfs does not show MSI isolation); only a recorded false is a finding
    if (caps && caps.interruptRemapping === false) {
      openViolation(deviceKey(unsafeInterrupts.id, d.device), unsafeInterrupts.id, unsafeInterrupts.describe(d.device, ictx, caps.allowUnsafeInterrupts), d.group, d.device);
    }
  };

  const closeFdViolations = (fdHandle: string): void => {
    if (h.openViolations === 0) return;
    closeViolation(fdKey('access-before-bind', fdHandle));
    closeViolation(fdKey('access-granted-without-bind', fdHandle));
    closeViolation(fdKey('passthrough-refused-group-in-use', fdHandle));
  };

  /** an -EPERM claim refused: another user owns the group, or (nobody does) a kernel driver blocks it; `fd` is the refused device or group fd */
  const refusedClaim = (g: GroupState, device: string | null, fd: string, what: string): void => {
    const inUse = passthroughRefusedGroupInUse;
    if (inUse.opensOnRefusal(g)) {
      openViolation(fdKey(inUse.id, fd), inUse.id, inUse.describe(g, device, fd, what), g.group, device);
      return;
    }
    const rule = passthroughRefusedNotViable;
    if (!rule.opensOnRefusal(g)) return;
    openViolation(groupKey(rule.id, g.group), rule.id, rule.describe(g, h, device, what), g.group, device);
  };


  const closeDeviceFd = (fdHandle: string): void => {
    const fd = h.deviceFds[fdHandle];
    const d = h.devices[fd?.device ?? ''];
    delete h.deviceFds[fdHandle];
    closeFdViolations(fdHandle);
    if (!fd || !d) return;
    if (fd.boundIctx !== null) {
      // group-path fds of one device share a single open (vfio_df_open/vfio_df_close count opens): the
      // binding made at the first open lasts until the last of them closes
      const heir = fd.via === 'group' ? d.openFds.find((o) => o !== fdHandle && h.deviceFds[o]?.via === 'group') : undefined;
      if (heir !== undefined) {
        h.deviceFds[heir]!.boundIctx = fd.boundIctx;
        if (d.boundFd === fdHandle) d.boundFd = heir;
      } else unbind(d, fdHandle, fd.boundIctx);
    }
    remove(d.openFds, fdHandle);
    if (d.openFds.length === 0) {
      d.accessGranted = false;
      d.tenant = null;
      d.vm = null;
    }
    checkDeviceGroup(d);
  };

  const removeDevice = (d: DeviceState): void => {
    for (const fd of [...d.openFds]) closeDeviceFd(fd);
    const g = groupOf(d);
    if (g) {
      removeMember(g, d);
      checkGroup(g);
      dropGroupIfGone(g);
    }
    if (h.openViolations > 0) closeViolation(deviceKey('unsafe-interrupts', d.device));
    delete h.devices[d.device];
    delete h.topology[d.device];
  };

  const markUncertain = (reason: string): void => {
    // while the host is uncertain every group is (ensureGroup marks new ones): nothing more to do
    if (h.uncertain) return;
    h.uncertain = { since: ref(), reason };
    for (const g of Object.values(h.groups)) {
      if (!g.uncertain) {
        g.uncertain = true;
        g.uncertainReason = reason;
      }
    }
  };

  // --- per event ------------------------------------------------------------------------------------

  const topologySnapshot = (e: Extract<IommuEvent, { type: 'TopologySnapshotTaken' }>): void => {
    const c = e.data.capabilities;
    // an import (a forum paste) lists some devices only: it adds what it saw and removes nothing
    const partial = e.data.partial === true;
    h.capabilities = {
      iommu: c.iommu,
      interruptRemapping: c.interruptRemapping ?? (partial ? (h.capabilities?.interruptRemapping ?? null) : null),
      allowUnsafeInterrupts: c.allowUnsafeInterrupts,
      cacheCoherent: c.cacheCoherent,
      kernelRelease: c.kernelRelease ?? null,
      managedDmaDrivers: c.managedDmaDrivers ? [...c.managedDmaDrivers] : null,
    };
    const seenDevices = new Set<string>();
    const seenGroups = new Set<number>();
    if (!partial) h.topology = {};
    for (const td of e.data.devices) {
      seenDevices.add(td.device);
      const d = ensureDevice(td.device);
      h.topology[td.device] = {
        headerType: td.headerType ?? null,
        requireDirect: td.requireDirect ?? false,
        maxPasids: td.maxPasids ?? 0,
        pasidAttach: td.pasidAttach ?? false,
      };
      setDriver(d, td.driver);
      if (td.group !== null) {
        seenGroups.add(td.group);
        addMember(ensureGroup(td.group), d);
      } else if (d.group !== null) {
        const g = h.groups[d.group];
        if (g) removeMember(g, d);
      }
    }
    for (const tg of e.data.groups) {
      seenGroups.add(tg.group);
      const g = ensureGroup(tg.group);
      for (const m of tg.devices) {
        seenDevices.add(m);
        addMember(g, ensureDevice(m));
      }
    }
    // a full read of sysfs: what it no longer lists is gone
    if (!partial) for (const d of Object.values(h.devices)) if (!seenDevices.has(d.device)) removeDevice(d);
    for (const g of Object.values(h.groups)) {
      // the count is re-derived from the drivers just read
      g.kernelDmaDrivers = 0;
      for (const m of g.members) if (h.devices[m]?.kernelDma) g.kernelDmaDrivers++;
      if (!partial && !seenGroups.has(g.group)) dropGroupIfGone(g);
    }
    if (partial) {
      for (const g of Object.values(h.groups)) checkGroup(g);
      return;
    }
    // sysfs shows drivers and membership, not ownership: groups nobody owns are known again
    h.uncertain = null;
    for (const key of h.sequenceViolations) closeViolation(key);
    h.sequenceViolations = [];
    for (const g of Object.values(h.groups)) {
      if (g.userOwner === null) {
        g.uncertain = false;
        g.uncertainReason = null;
      }
      checkGroup(g);
    }
  };

  /** the upstream model's transition for the event, on the host's kernel state (issue 16: always folded) */
  const evolveKernel = (e: IommuEvent): void => {
    // a host of a state written before the model was folded (a format-1 snapshot): its model as its read model says
    h.kernel ??= modelFromReadModel(h, [...managedSet()]);
    if (!isModelEvent(e)) return;
    upstreamDecider.evolve(h.kernel, e);
    if (e.type === 'TopologySnapshotTaken') rebaseDrivers(h.kernel, e);
  };

  /**
   * A sysfs read is what the host runs now: the drivers it shows replace the model's (whose `observe` keeps
   * its own, for the replay, which decides each driver change itself). A record that lost a driver change is
   * re-based here, as the projection's own devices were.
   */
  const rebaseDrivers = (model: ModelState, e: Extract<IommuEvent, { type: 'TopologySnapshotTaken' }>): void => {
    for (const td of e.data.devices) {
      const d = model.devices.get(td.device);
      if (d && d.driver !== td.driver) applyEffect(model, { type: 'DeviceSet', device: deviceWith(d, { driver: td.driver }) });
    }
  };

  /**
   * The event types whose read-model records are derived from the model's transition (issue 16 step c): the
   * model's Effects name the records touched, readModel.ts derives them again, the group rules are re-checked.
   * Every other type keeps the projection's own transition for now (the model folds it beside them).
   */
  const DERIVED_TYPES: ReadonlySet<IommuEvent['type']> = new Set([
    'IommufdOpened',
    'IommufdClosed',
    'IommufdIoasAllocIssued',
    'IommufdHwptAllocIssued',
    'IommufdDestroyIssued',
    'IommufdEventFdClosed',
    'VfioGroupOpened',
    'VfioGroupClosed',
    'VfioGroupGetStatusIssued',
    'VfioGroupSetContainerIssued',
    'VfioGroupUnsetContainerIssued',
  ]);

  /** the findings an event closes by itself (before its transition, as they always were): its fd is gone */
  const closedByEvent = (e: IommuEvent): void => {
    if (e.type === 'VfioGroupClosed' && h.openViolations > 0) closeViolation(fdKey(passthroughRefusedGroupInUse.id, e.data.groupFd));
  };
  const touched = newTouched();
  const freshRecords = { group: (n: number) => ensureGroupRecord(n), device: newDevice };

  /** the model's transition for the event, and the read-model records it touched derived again */
  const foldDerived = (e: IommuEvent): void => {
    const model = (h.kernel ??= modelFromReadModel(h, [...managedSet()]));
    try {
      if (isModelEvent(e)) {
        for (const effect of upstreamDecider.effectsOf!(model, e)) {
          noteEffect(touched, model, effect);
          applyEffect(model, effect);
        }
      }
      if (!isUntouched(touched)) deriveAndCheck(model);
    } finally {
      clearTouched(touched);
    }
  };

  const deriveAndCheck = (model: ModelState): void => {
    const groupsBefore = new Map<number, GroupState>();
    for (const id of touched.groups) {
      const g = h.groups[id];
      if (g) groupsBefore.set(id, g);
    }
    deriveTouched(h, model, touched, isKernelDma, freshRecords);
    for (const id of touched.groups) {
      const g = h.groups[id];
      if (g) checkGroup(g);
      else if ((groupsBefore.get(id)?.openViolations ?? 0) > 0) closeGroupViolations(id);
    }
  };

  const apply = (e: IommuEvent): void => {
    const derived = DERIVED_TYPES.has(e.type);
    if (!derived) evolveKernel(e);
    followObjects(h, e, openViolation, closeViolation);
    if (derived) {
      closedByEvent(e);
      foldDerived(e);
    }
    if (h.ownershipRecorded === false && OWNERSHIP_CALLS.has(e.type)) {
      h.ownershipRecorded = true;
      for (const g of Object.values(h.groups)) g.ownerKnown = true;
    }
    switch (e.type) {
      case 'TopologySnapshotTaken':
        topologySnapshot(e);
        return;
      case 'DeviceAddedToGroup':
      case 'TraceAddDeviceToGroup': {
        const d = ensureDevice(e.data.device);
        const g = ensureGroup(e.data.group);
        addMember(g, d);
        checkGroup(g);
        return;
      }
      case 'DeviceRemovedFromGroup':
      case 'TraceRemoveDeviceFromGroup': {
        const d = h.devices[e.data.device];
        if (d && d.group === e.data.group) removeDevice(d);
        return;
      }
      case 'DriverBound': {
        const d = ensureDevice(e.data.device);
        setDriver(d, e.data.driver);
        const g = groupOf(d);
        if (g) {
          if (d.kernelDma && g.userOwner !== null) {
            const rule = kernelBindIntoUserGroup;
            openViolation(groupKey(rule.id, g.group), rule.id, rule.describeBound(g, d.device, e.data.driver), g.group, d.device);
          }
          checkGroup(g);
        }
        return;
      }
      case 'DriverUnbound': {
        const d = ensureDevice(e.data.device);
        setDriver(d, null);
        checkDeviceGroup(d);
        return;
      }
      case 'DriverBindRefused': {
        const d = ensureDevice(e.data.device);
        const g = groupOf(d);
        if (g && g.userOwner !== null && !managedSet().has(e.data.driver)) {
          const rule = kernelBindIntoUserGroup;
          openViolation(groupKey(rule.id, g.group), rule.id, rule.describeRefused(g, d.device, e.data.driver, e.data.errno), g.group, d.device);
        }
        return;
      }
      case 'VfioDeviceOpened': {
        if (!e.data.outcome.ok) return;
        const d = ensureDevice(e.data.device);
        h.deviceFds[e.data.deviceFd] = { fd: e.data.deviceFd, device: d.device, via: 'cdev', accessGranted: false, boundIctx: null };
        addOnce(d.openFds, e.data.deviceFd);
        noteActor(d);
        checkDeviceGroup(d);
        return;
      }
      case 'VfioDeviceAccessAttempted': {
        const fd = h.deviceFds[e.data.deviceFd];
        const granted = fd ? fd.accessGranted : (h.devices[e.data.device]?.accessGranted ?? false);
        if (granted) return;
        const what = `${e.data.access}${e.data.request ? ` ${e.data.request}` : ''}`;
        const group = h.devices[e.data.device]?.group ?? null;
        if (e.data.outcome.ok) {
          const rule = accessGrantedWithoutBind;
          openViolation(fdKey(rule.id, e.data.deviceFd), rule.id, rule.describe(what, e.data.device, e.data.deviceFd), group, e.data.device);
        } else if (e.data.outcome.errno !== 'EBADF') {
          // -EBADF: fget() found no open file, so the call reached no device (kernel oracle, 6.1: the cdev open
          // had failed -ENOENT); any other refusal is the device's own access gate
          const rule = accessBeforeBind;
          openViolation(fdKey(rule.id, e.data.deviceFd), rule.id, rule.describe(what, e.data.device, e.data.deviceFd, e.data.outcome.errno), group, e.data.device);
        }
        return;
      }
      case 'VfioDeviceBindIommufdIssued': {
        const d = ensureDevice(e.data.device);
        const g = groupOf(d);
        if (e.data.outcome.ok) {
          if (!h.deviceFds[e.data.deviceFd]) {
            // opened before recording began
            h.deviceFds[e.data.deviceFd] = { fd: e.data.deviceFd, device: d.device, via: 'cdev', accessGranted: false, boundIctx: null };
            addOnce(d.openFds, e.data.deviceFd);
          }
          bindOk(d, e.data.deviceFd, e.data.ictx, e.data.outcome.devId);
          closeFdViolations(e.data.deviceFd);
          if (g) checkGroup(g);
        } else if (e.data.outcome.errno === 'EPERM' && g) {
          refusedClaim(g, d.device, e.data.deviceFd, 'BIND_IOMMUFD');
        }
        return;
      }
      case 'VfioDeviceAttachPtIssued': {
        if (!e.data.outcome.ok) return;
        const d = ensureDevice(e.data.device);
        const hwpt = e.data.outcome.ptId;
        if (e.data.pasid !== undefined) {
          const p = String(e.data.pasid);
          d.pasids[p] = hwpt;
          // PASIDs are programmed on every device of the group (__iommu_set_group_pasid, S39)
          const g = groupOf(d);
          if (g) g.pasids[p] = hwpt;
          if (d.boundIctx !== null) addOnce(hwptObject(d.boundIctx, hwpt, e.data.ptId).devices, d.device);
          return;
        }
        attach(d, e.data.ptId, hwpt);
        checkDeviceGroup(d);
        return;
      }
      case 'VfioDeviceDetachPtIssued': {
        if (!e.data.outcome.ok) return;
        const d = h.devices[e.data.device];
        if (!d) return;
        if (e.data.pasid !== undefined) {
          const p = String(e.data.pasid);
          const hwpt = d.pasids[p];
          delete d.pasids[p];
          const g = groupOf(d);
          if (g) delete g.pasids[p];
          if (hwpt !== undefined) dropDeviceFromHwpt(d.boundIctx, hwpt, d.device);
          return;
        }
        detach(d);
        checkDeviceGroup(d);
        return;
      }
      case 'VfioDeviceClosed':
        closeDeviceFd(e.data.deviceFd);
        return;
      case 'IommufdOpened':
      case 'IommufdClosed':
      case 'IommufdIoasAllocIssued':
      case 'IommufdDestroyIssued':
      case 'IommufdEventFdClosed':
        // derived (foldDerived): nothing of the projection's own
        return;
      case 'IommufdHwptAllocIssued': {
        // the dev_id's device, which the model's hwpt does not name (readModel.ts carries it on)
        const c = e.data.outcome.ok ? h.iommufds[e.data.ictx] : undefined;
        const o = c?.objects[e.data.outcome.ok ? e.data.outcome.hwptId : -1];
        const dev = c?.objects[e.data.devId];
        if (c && o && dev?.kind === 'device') c.objects[o.id] = { ...o, device: dev.device };
        return;
      }
      case 'IommufdIoasMapIssued':
      case 'IommufdIoasUnmapIssued': {
        if (!e.data.outcome.ok) return;
        const o = h.iommufds[e.data.ictx]?.objects[e.data.ioasId];
        if (o) o.mappings = Math.max(0, o.mappings + (e.type === 'IommufdIoasMapIssued' ? 1 : -1));
        return;
      }
      case 'VfioGroupOpened':
      case 'VfioGroupClosed':
      case 'VfioGroupGetStatusIssued':
      case 'VfioGroupUnsetContainerIssued':
        // derived (foldDerived); a closed group fd's refusal finding closed before (closedByEvent)
        return;
      case 'VfioGroupSetContainerIssued':
        // derived (foldDerived); an -EPERM is a refusal finding
        if (!e.data.outcome.ok && e.data.outcome.errno === 'EPERM') refusedClaim(h.groups[e.data.group] ?? ensureGroup(e.data.group), null, e.data.groupFd, 'VFIO_GROUP_SET_CONTAINER');
        return;
      case 'VfioGroupGetDeviceFdIssued': {
        const g = ensureGroup(e.data.group);
        if (!e.data.outcome.ok) {
          // a refusal on a group its own container holds (no IOMMU set yet: vfio_df_group_open -EINVAL) claimed
          // nothing from anyone: no other user, no blocker (kernel oracle, s11 on virtio-iommu)
          const own = g.container !== null && sameOwner(g.userOwner, containerOwner(g.container));
          if (!own && (e.data.outcome.errno === 'EPERM' || e.data.outcome.errno === 'EINVAL')) refusedClaim(g, e.data.device, e.data.groupFd, 'VFIO_GROUP_GET_DEVICE_FD');
          return;
        }
        const d = ensureDevice(e.data.device);
        const fdHandle = e.data.outcome.deviceFd;
        h.deviceFds[fdHandle] = { fd: fdHandle, device: d.device, via: 'group', accessGranted: true, boundIctx: null };
        addOnce(d.openFds, fdHandle);
        d.accessGranted = true;
        noteActor(d);
        // an iommufd used as the container: the first device open binds it (vfio_df_group_open → bind → claim)
        if (g.container?.kind === 'iommufd' && d.boundIctx === null) bindOk(d, fdHandle, g.container.handle, null);
        checkGroup(g);
        return;
      }
      case 'VfioContainerOpened':
        if (e.data.outcome.ok) h.containers[e.data.container] = { handle: e.data.container, open: true, iommuType: null, groups: [] };
        return;
      case 'VfioContainerSetIommuIssued': {
        if (!e.data.outcome.ok) return;
        const ct = h.containers[e.data.container];
        if (!ct) return;
        ct.iommuType = e.data.iommuType;
        for (const n of ct.groups) {
          const g = h.groups[n];
          if (g && sameOwner(g.userOwner, { kind: 'legacy-container', handle: ct.handle })) {
            setGroupDomain(g, { kind: 'container', container: ct.handle });
            checkGroup(g);
          }
        }
        return;
      }
      case 'VfioContainerClosed': {
        const ct = h.containers[e.data.container];
        if (!ct) return;
        // groups still set keep the container alive
        ct.open = false;
        if (ct.groups.length === 0) delete h.containers[e.data.container];
        return;
      }
      case 'PassthroughErrorReported': {
        // the VMM's account of a refusal: evidence of the open refusal findings of its group
        if (e.data.group === undefined || h.groups[e.data.group]?.openViolations === 0) return;
        const keys = groupIndex().get(`${h.host}|${e.data.group}`);
        if (!keys) return;
        for (const key of keys) {
          const v = fleet.violations.open[key];
          if (v && (v.ruleId === passthroughRefusedNotViable.id || v.ruleId === passthroughRefusedGroupInUse.id) && v.evidence[v.evidence.length - 1] !== ev.id) v.evidence.push(ev.id);
        }
        return;
      }
      case 'TraceAttachDeviceToDomain':
      case 'TraceIoPageFault':
        // signals: evidence for forensics, no state of their own
        return;
      case 'IommufdIoasGetPaIssued':
        // IOMMU_IOAS_GET_PA (7.3) is a read: it changes no ownership, mapping or object
        return;
      case 'VfioDeviceDmaBufCreated':
      case 'VfioDeviceDmaBufRevoked':
        // VFIO dma-bufs (6.19): the device's open ones are followed in iommufdObjects.ts (followObjects)
        return;
      case 'DriverUnbindRefused':
      case 'VfioDeviceResetIssued':
      case 'IommufdGetHwInfoIssued':
      case 'IommufdHwptInvalidateIssued':
      case 'IommufdHwptSetDirtyTrackingIssued':
      case 'IommufdHwptGetDirtyBitmapIssued':
      case 'IommufdFaultQueueAllocIssued':
      case 'IommufdPageFaultRead':
      case 'IommufdPageResponseWritten':
      case 'IommufdViommuAllocIssued':
      case 'IommufdVdeviceAllocIssued':
      case 'IommufdVeventqAllocIssued':
      case 'IommufdVeventRead':
      case 'IommufdHwQueueAllocIssued':
      case 'IommufdIoasMapFileIssued':
      case 'IommufdIoasChangeProcessIssued':
      case 'TraceDeviceResetFence':
      case 'TraceCacheTag':
        // recorded, not yet projected (issue 19: the projection follows these objects next)
        return;
      default: {
        const _exhaustive: never = e;
        return _exhaustive;
      }
    }
  };

  const closeSequenceViolation = (host: HostState, key: string): void => {
    closeViolation(key);
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
  const openGap = (host: HostState, g: SequenceGap, why: string): void => {
    openViolation(g.key, sequenceGap.id, sequenceGap.describe(host.host, g, why), null, null);
    host.sequenceViolations.push(g.key);
  };

  const sequenceStep = (host: HostState, last: number): void => {
    const name = ev.host;
    // applied now although a later seq already was: the fold leaves seq order
    const lateApplied = host.appliedSeq !== null && ev.seq <= host.appliedSeq;
    const seen = observeSequence(host.sequence, last, ev.seq, name, gapKey);
    switch (seen.kind) {
      case 'in-order':
        return;
      case 'gap':
        openGap(host, seen.gap, '');
        return;
      case 'late': {
        if (lateApplied) markUncertain(`event seq ${ev.seq} from ${name} arrived after seq ${host.appliedSeq} was applied: applied out of order`);
        if (seen.opened) openGap(host, seen.opened, ` (seq ${ev.seq} arrived after seq ${seen.opened.to + 1})`);
        if (seen.fill && seen.filled) {
          const g = seen.fill;
          closeSequenceViolation(host, g.key);
          const range = g.key.slice(g.key.lastIndexOf('|') + 1);
          const key = `sequence-late-arrival|${name}|${range}`;
          const how = lateApplied ? 'applied after later events' : 'the events held after them follow in seq order';
          openViolation(key, 'sequence-late-arrival', `events ${range} from ${name} arrived late, the last one (seq ${ev.seq}) after seq ${last}: ${how}`, null, null);
          closeViolation(key);
        }
        return;
      }
      case 'repeat': {
        const reason = `event seq ${ev.seq} from ${name} arrived after seq ${last} but was not missing (a repeat)`;
        const key = `sequence-out-of-order|${name}|${ev.seq}|${ev.id}`;
        markUncertain(reason);
        openViolation(key, 'sequence-out-of-order', `${reason}: applied late, state uncertain until the next topology snapshot`, null, null);
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

  /** applies one event of host `h` as the event being folded (its refs name it) */
  const applyAs = (event: IommuEvent, position: string | undefined): void => {
    ev = event;
    pos = position;
    cachedRef = null;
    apply(event);
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
  const releaseHeld = (host: HostState, below: number | null): void => {
    const held = host.held;
    let i = 0;
    try {
      while (i < held.length) {
        const { event, position } = held[i]!;
        const frontier = host.appliedSeq;
        const next = frontier === null ? resolved.firstSeq : frontier + 1;
        if (event.seq > next) {
          if (below === null || event.seq >= below) break;
          ev = event;
          pos = position ?? undefined;
          cachedRef = null;
          markUncertain(`events ${next}..${event.seq - 1} from ${host.host} are missing: later events applied past them`);
        }
        // taken out of the buffer before it is applied: an event the fold throws on is not applied twice
        i++;
        if (frontier === null || event.seq > frontier) host.appliedSeq = event.seq;
        applyAs(event, position ?? undefined);
      }
    } finally {
      if (i > 0) held.splice(0, i);
    }
  };

  /** makes `event` the one being folded into `state` and returns its host's state */
  const enter = (state: FleetState, event: IommuEvent, posText: string | undefined): HostState => {
    fleet = state;
    ev = event;
    pos = posText;
    cachedRef = null;
    let host = state.hosts[event.host];
    if (!host) state.hosts[event.host] = host = newHost(event.host);
    else if (host.held === undefined) {
      // a state from before the reorder buffer: everything recorded was applied
      host.held = [];
      host.appliedSeq = host.lastSeq;
    }
    h = host;
    return host;
  };

  // where the event being folded reports the violations it opens (evolve's `opened`)
  let openedOut: Violation[] | undefined;

  const evolve = (state: FleetState, event: IommuEvent, position?: bigint, opened?: Violation[]): FleetState => {
    openedOut = opened;
    try {
      return evolveOne(state, event, position);
    } finally {
      openedOut = undefined;
    }
  };

  const evolveOne = (state: FleetState, event: IommuEvent, position?: bigint): FleetState => {
    const posText = position === undefined ? undefined : position.toString();
    const host = enter(state, event, posText);
    const seq = event.seq;
    const isTopology = event.type === 'TopologySnapshotTaken';
    const last = host.lastSeq;
    if (last === null) {
      // the history starts at firstSeq: a first event beyond it (not a sysfs read) opens the gap before it
      if (seq > resolved.firstSeq && !isTopology) {
        host.sequence.lowestSeq = resolved.firstSeq;
        sequenceStep(host, resolved.firstSeq - 1);
      } else host.sequence.lowestSeq = seq;
    } else if (seq !== last + 1) sequenceStep(host, last);
    if (host.lastTimeNs !== null && compareDecimal(event.time, host.lastTimeNs) < 0) {
      const clock = host.clock;
      clock.wentBack.push({ event: ref(), previousTimeNs: host.lastTimeNs });
      if (clock.wentBack.length > MAX_CLOCK_STEPS + 100) clock.wentBackDropped += clock.wentBack.splice(0, clock.wentBack.length - MAX_CLOCK_STEPS).length;
    }
    if (last === null || seq > last) host.lastSeq = seq;
    host.lastTimeNs = event.time;
    host.eventCount++;
    state.eventCount++;
    if (posText !== undefined) state.lastPosition = posText;

    const applied = host.appliedSeq;
    if (applied === null ? seq <= resolved.firstSeq : seq <= applied + 1) {
      // the next seq (or an earlier one: a repeat or a late fill, applied where it arrives)
      if (applied === null || seq > applied) host.appliedSeq = seq;
      apply(event);
      if (host.held.length > 0) releaseHeld(host, null);
    } else if (isTopology) {
      // a sysfs read re-bases the host: what is held before it is applied, it is the new frontier
      releaseHeld(host, seq);
      host.appliedSeq = seq;
      applyAs(event, posText);
      if (host.held.length > 0) releaseHeld(host, null);
    } else {
      hold(host, event, posText);
      if (host.held.length > resolved.maxHeldEvents) releaseHeld(host, Number.POSITIVE_INFINITY);
      // after a defect threw half way through a release, what is contiguous again goes on at the next event
      else if (host.held[0]!.event.seq <= (applied === null ? resolved.firstSeq : applied + 1)) releaseHeld(host, null);
    }
    return state;
  };

  const passOver = (state: FleetState, event: IommuEvent, position?: bigint): FleetState => {
    const host = enter(state, event, position === undefined ? undefined : position.toString());
    const seq = event.seq;
    if (host.lastSeq === null || seq > host.lastSeq) host.lastSeq = seq;
    host.sequence.lowestSeq ??= seq;
    // evolve may have held it before it threw: it leaves the buffer, its seq is the frontier if it was next
    const i = host.held.findIndex((x) => x.event.id === event.id);
    if (i >= 0) host.held.splice(i, 1);
    const applied = host.appliedSeq;
    if (applied === null ? seq <= resolved.firstSeq : seq === applied + 1) {
      host.appliedSeq = seq;
      if (host.held.length > 0) releaseHeld(host, null);
    }
    return state;
  };

  return {
    name: 'fleet',
    options: resolved,
    initialState: () => ({ formatVersion: 1, hosts: {}, violations: { open: {}, closed: [], closedDropped: 0 }, eventCount: 0, lastPosition: null }),
    evolve,
    passOver,
  };
};
