/**
 * The fleet projection's kernel read model (HostState.groups/devices/iommufds/containers/deviceFds/groupFds,
 * the JSON the violation rules and the HTTP API read) as a function of the upstream kernel model's state
 * (`HostState.kernel`, projections/kernel): issue 16, "one transition function per variant".
 *
 * Pure. Each record is derived on its own (`deriveGroup`, `deriveDevice`, ...), so a fold can re-derive only
 * the records a transition touched; `deriveReadModel` derives the whole host (the agreement test's reference).
 *
 * Two kinds of facts are not the model's. A live host keeps them in its fact tables (`factsOf`: an entry per
 * group and device record shown, the one place the fold writes them), which the derivation merges in; the
 * whole-host derivation carries them over from the previous record (`prev`):
 * - projection-only facts (types.ts `GroupFacts`, and `DeviceFacts`' tenant/vm): who acted (gone with the device's
 *   last fd), what the record knows of the recording (ownerKnown, uncertainty) and the open-violation counters;
 * - kernel facts the upstream model does not hold (`DeviceFacts`' attachedPt, selfAttachedHwpt, pasids; the
 *   device a hwpt was allocated for, carried on the ctx records): no kernel decision reads them, so the model
 *   keeps none. The fold sets them from the recorded event; `settleDeviceFacts` clears them when the model says
 *   what they hang on is gone.
 * The violation rules read the model and the fact tables (violations/hostView.ts), never these records.
 */
import { emptyGroup, initialState } from './kernel/kernel.js';
import { DEVICE_DOMAIN, DEVICE_DRIVER, DEVICE_GROUP, GROUP_CONTAINER, GROUP_MEMBERS, GROUP_OWNERS, NO_CHANGES, putContainer, putDevice, putFd, putGroup, putObject, sameList, setGroupFd, setIctxOpen, type ModelChanges } from './kernel/mutate.js';
import type { Domain, DeviceFdState as ModelFd, DeviceState as ModelDevice, GroupState as ModelGroup, IommufdObject, ModelState, Owner } from './kernel/types.js';
import { boundOf, domainRefOf, groupDomainOf, kernelDmaMembers, shownGroup, userOwnerOf } from './violations/hostView.js';
import { fdsOfDevice, fdsOnHwpt, groupsOwnedBy, NO_PASIDS as NO_MODEL_PASIDS } from './kernel/fdIndex.js';
import type {
  ContainerState,
  DeviceFacts,
  DeviceFdState,
  DeviceState,
  DomainRef,
  GroupFacts,
  GroupState,
  HostFacts,
  HostState,
  IommufdContextState,
  IommufdObjectState,
  UserOwner,
} from './types.js';

/** the read model of one host, derived */
export type HostReadModel = Pick<HostState, 'groups' | 'devices' | 'iommufds' | 'containers' | 'deviceFds' | 'groupFds'>;

const DEFAULT_DOMAIN: DomainRef = domainRefOf({ kind: 'default' });

/**
 * No PASID attachments: the model's one frozen empty object (fdIndex.ts), shared by every device's facts and every
 * record that has none. PASIDs are never written in place: a change replaces the object (fleetProjection.ts
 * beforeDerive copies), and a write to this one throws.
 */
const NO_PASIDS = NO_MODEL_PASIDS as Record<string, number>;

/** a group record before anything is known of it (the projection's own facts at their start values) */
export const newGroup = (group: number): GroupState => ({
  group,
  members: [],
  userOwner: null,
  ownerKnown: true,
  extraOwners: [],
  twoOwners: false,
  userOwnerCount: 0,
  kernelDmaDrivers: 0,
  domain: DEFAULT_DOMAIN,
  attachedDevices: [],
  pasids: NO_PASIDS,
  legacyGroupOpen: false,
  legacyGroupFd: null,
  container: null,
  uncertain: false,
  uncertainReason: null,
  openViolations: 0,
});

/** a device record before anything is known of it */
export const newDevice = (device: string): DeviceState => ({
  device,
  group: null,
  driver: null,
  kernelDma: false,
  openFds: [],
  boundFd: null,
  boundIctx: null,
  devId: null,
  attachedHwpt: null,
  attachedPt: null,
  selfAttachedHwpt: null,
  pasids: NO_PASIDS,
  accessGranted: false,
  translatedBy: null,
  tenant: null,
  vm: null,
});

/** what decides `kernelDma` (the projection's managed-DMA set: its option, or the host's override) */
export type IsKernelDma = (driver: string | null) => boolean;

// A record derived again keeps the previous record's lists and values that did not change (most derivations
// change one field): no copy per derivation of what stayed, and the shared parts are replaced, never mutated.

/**
 * An empty list: one frozen array shared by every record list that is empty (a group's extra owners and attached
 * devices, a device's open fds: most are; an empty array each was 32 bytes and its own store). Record lists are
 * replaced, never written in place: a write to this one throws.
 */
const NO_ITEMS: never[] = Object.freeze([]) as never[];

const listOf = <T>(prev: T[] | undefined, next: readonly T[]): T[] => (prev !== undefined && sameList(prev, next) ? prev : next.length === 0 ? NO_ITEMS : [...next]);

const sameDomain = (a: DomainRef, d: Domain): boolean => {
  switch (d.kind) {
    case 'hwpt':
      return a.kind === 'hwpt' && a.hwptId === d.hwpt && a.ictx === d.ictx;
    case 'container':
      return a.kind === 'container' && a.container === d.container;
    default:
      return a.kind === d.kind;
  }
};
const domainFrom = (prev: DomainRef | null | undefined, d: Domain): DomainRef => (prev != null && sameDomain(prev, d) ? prev : domainRefOf(d));

const ownerFrom = (prev: UserOwner | null | undefined, o: Owner): UserOwner =>
  prev != null && (o.kind === 'ictx' ? prev.kind === 'iommufd' && prev.handle === o.ictx : prev.kind === 'legacy-container' && prev.handle === o.container) ? prev : userOwnerOf(o);

const hasKeys = (o: object): boolean => {
  for (const _ in o) return true;
  return false;
};

const pasidsFrom = (prev: Record<string, number> | undefined, next: Readonly<Record<string, number>>): Record<string, number> => {
  if (prev !== undefined) {
    let n = 0;
    let same = true;
    for (const k in next) {
      n++;
      if (prev[k] !== next[k]) {
        same = false;
        break;
      }
    }
    if (same) {
      for (const _ in prev) n--;
      if (n === 0) return prev;
    }
  }
  return hasKeys(next) ? { ...next } : NO_PASIDS;
};

/** a group's facts as its record shows them */
export const groupFactsOf = (g: GroupState): GroupFacts => ({ ownerKnown: g.ownerKnown, uncertain: g.uncertain, uncertainReason: g.uncertainReason, openViolations: g.openViolations, pending: false });

/** a device's facts as its record shows them */
export const deviceFactsOf = (d: DeviceState): DeviceFacts => ({ tenant: d.tenant, vm: d.vm, attachedPt: d.attachedPt, selfAttachedHwpt: d.selfAttachedHwpt, pasids: d.pasids, pending: false });

/**
 * A device's facts after a transition, given its open fds (`fdsOfDevice`): what hangs on the model and is gone
 * with it. Who acted through the device's fds: nobody once they are all closed; the pt_id and hwpt it attached
 * itself: gone with the attachment; its PASID attachments: gone with the binding.
 */
export const settleDeviceFacts = (f: DeviceFacts, fds: readonly ModelFd[]): void => {
  const bound = boundOf(fds);
  if (bound?.hwpt == null) {
    f.attachedPt = null;
    f.selfAttachedHwpt = null;
  }
  if (bound === undefined && hasKeys(f.pasids)) f.pasids = NO_PASIDS;
  if (fds.length === 0) {
    f.tenant = null;
    f.vm = null;
  }
};

/** whether the read model shows a device record, given its open fds: the model has the device, or it has open fds */
const deviceShown = (model: ModelState, device: string, fds: readonly ModelFd[]): boolean => fds.length > 0 || model.devices.has(device);

/**
 * The group record `id` derived from `model` and the group's facts `f` (undefined: the read model shows
 * none). `inPlace`: `prev` is updated and returned (the fold's own records: no record allocated per
 * derivation); otherwise a new record.
 */
export const deriveGroup = (model: ModelState, id: number, prev: GroupState | undefined, isKernelDma: IsKernelDma, f: GroupFacts, inPlace = false): GroupState | undefined => {
  const g = shownGroup(model, id);
  if (!g) return undefined;
  const kernelDmaDrivers = kernelDmaMembers(model, g, isKernelDma);
  const members = listOf(prev?.members, g.devices);
  const userOwner = g.owner === null ? null : ownerFrom(prev?.userOwner, g.owner);
  const extraOwners = g.extraOwners.length === 0 ? NO_ITEMS : g.extraOwners.map(userOwnerOf);
  const domain = domainFrom(prev?.domain, groupDomainOf(model, g));
  const attachedDevices = listOf(prev?.attachedDevices, g.attached);
  const pasids = pasidsFrom(prev?.pasids, g.pasids);
  if (inPlace && prev !== undefined) {
    prev.members = members;
    prev.userOwner = userOwner;
    prev.ownerKnown = f.ownerKnown;
    prev.extraOwners = extraOwners;
    prev.twoOwners = g.extraOwners.length > 0;
    prev.userOwnerCount = g.owner === null ? 0 : g.ownerCnt;
    prev.kernelDmaDrivers = kernelDmaDrivers;
    prev.domain = domain;
    prev.attachedDevices = attachedDevices;
    prev.pasids = pasids;
    prev.legacyGroupOpen = g.groupFd !== null;
    prev.legacyGroupFd = g.groupFd;
    prev.container = g.container;
    prev.uncertain = f.uncertain;
    prev.uncertainReason = f.uncertainReason;
    prev.openViolations = f.openViolations;
    return prev;
  }
  return {
    group: id,
    members,
    userOwner,
    ownerKnown: f.ownerKnown,
    extraOwners,
    twoOwners: g.extraOwners.length > 0,
    userOwnerCount: g.owner === null ? 0 : g.ownerCnt,
    kernelDmaDrivers,
    domain,
    attachedDevices,
    pasids,
    legacyGroupOpen: g.groupFd !== null,
    legacyGroupFd: g.groupFd,
    container: g.container,
    uncertain: f.uncertain,
    uncertainReason: f.uncertainReason,
    openViolations: f.openViolations,
  };
};

/** the device record `name` derived from `model` and the device's facts `f`, settled (undefined: none); `inPlace` as `deriveGroup`'s */
export const deriveDevice = (model: ModelState, name: string, prev: DeviceState | undefined, isKernelDma: IsKernelDma, f: DeviceFacts, inPlace = false): DeviceState | undefined => {
  const d = model.devices.get(name);
  // its open fds; the bound one: bound to an iommufd (cdev bind, or the group-path open that bound it)
  const fds = fdsOfDevice(model, name);
  let bound: ModelFd | undefined;
  let accessGranted = false;
  // the previous record's list while the fds are the same (most derivations): no list built
  const prevFds = prev?.openFds;
  let same = prevFds !== undefined && prevFds.length === fds.length;
  for (let i = 0; i < fds.length; i++) {
    const fd = fds[i]!;
    if (same && prevFds![i] !== fd.handle) same = false;
    if (bound === undefined && fd.ictx !== null) bound = fd;
    if (fd.accessGranted) accessGranted = true;
  }
  if (!d && fds.length === 0) return undefined;
  const openFds = same ? prevFds! : fds.length === 0 ? NO_ITEMS : fds.map((fd) => fd.handle);
  const group = d?.group ?? null;
  const groupModel = group === null ? undefined : model.groups.get(group);
  const driver = d?.driver ?? null;
  const translatedBy = groupModel ? domainFrom(prev?.translatedBy, groupDomainOf(model, groupModel)) : null;
  if (inPlace && prev !== undefined) {
    prev.group = group;
    prev.driver = driver;
    prev.kernelDma = isKernelDma(driver);
    prev.openFds = openFds;
    prev.boundFd = bound?.handle ?? null;
    prev.boundIctx = bound?.ictx ?? null;
    prev.devId = bound?.devId ?? null;
    prev.attachedHwpt = bound?.hwpt ?? null;
    prev.attachedPt = f.attachedPt;
    prev.selfAttachedHwpt = f.selfAttachedHwpt;
    prev.pasids = f.pasids;
    prev.accessGranted = accessGranted;
    prev.translatedBy = translatedBy;
    prev.tenant = f.tenant;
    prev.vm = f.vm;
    return prev;
  }
  return {
    device: name,
    group,
    driver,
    kernelDma: isKernelDma(driver),
    openFds,
    boundFd: bound?.handle ?? null,
    boundIctx: bound?.ictx ?? null,
    devId: bound?.devId ?? null,
    attachedHwpt: bound?.hwpt ?? null,
    attachedPt: f.attachedPt,
    selfAttachedHwpt: f.selfAttachedHwpt,
    pasids: f.pasids,
    accessGranted,
    translatedBy,
    tenant: f.tenant,
    vm: f.vm,
  };
};

export const deriveDeviceFd = (model: ModelState, handle: string): DeviceFdState | undefined => {
  const f = model.fds.get(handle);
  if (!f) return undefined;
  return { fd: handle, device: f.device, via: f.via, accessGranted: f.accessGranted, boundIctx: f.ictx };
};

/** the PASID attachments a device made itself (its facts: the model keeps them per group only, `DeviceFacts.pasids`) */
export type PasidsOf = (device: string) => Readonly<Record<string, number>> | undefined;

const NO_GROUPS: readonly number[] = Object.freeze([]);

export const deriveIctx = (
  model: ModelState,
  handle: string,
  prev: IommufdContextState | undefined,
  pasidsOf: PasidsOf,
  /** ids of `prev`'s objects that went since (their records are not the objects holding the id now) */
  gone?: ReadonlySet<number>,
): IommufdContextState | undefined => {
  const c = model.ictxs.get(handle);
  if (!c) return undefined;
  let devices: string[] = [];
  for (const f of model.fds.values()) if (f.ictx === handle && !devices.includes(f.device)) devices.push(f.device);
  let groups: number[] = [];
  // the groups it owns, in the model's order; most ctxs derived again (open, IOAS alloc) own none: no scan
  if (groupsOwnedBy(model, handle) > 0) for (const g of model.groups.values()) if (g.owner?.kind === 'ictx' && g.owner.ictx === handle) groups.push(g.id);
  // the groups whose domain is each hwpt: worked out at the first hwpt (most ctxs derived hold an IOAS at most)
  let domainGroups: Map<number, number[]> | undefined;
  const objects: Record<string, IommufdObjectState> = {};
  for (const [id, o] of c.objects) {
    const old = gone?.has(id) ? undefined : prev?.objects[id];
    switch (o.kind) {
      case 'device':
        objects[id] = old?.kind === 'device' && old.device === o.device ? old : { id, kind: 'device', auto: false, ioasId: null, device: o.device, devices: [], groups: [], mappings: 0 };
        break;
      case 'ioas': {
        const mappings = o.mappings ?? 0;
        objects[id] = old?.kind === 'ioas' && old.mappings === mappings ? old : { id, kind: 'ioas', auto: false, ioasId: null, device: null, devices: [], groups: [], mappings };
        break;
      }
      case 'hwpt': {
        const users = hwptUsers(model, handle, id, pasidsOf);
        const on = (domainGroups ??= groupsByHwpt(model, handle)).get(id) ?? NO_GROUPS;
        objects[id] =
          old?.kind === 'hwpt' && old.auto === o.auto && old.ioasId === o.ioas && sameList(old.devices, users) && sameList(old.groups, on)
            ? old
            : { id, kind: 'hwpt', auto: o.auto, ioasId: o.ioas, device: old?.device ?? null, devices: users, groups: on === NO_GROUPS ? [] : (on as number[]), mappings: 0 };
        break;
      }
      default:
        // the objects added after 6.6 are followed in HostState.objects (iommufdObjects.ts)
        break;
    }
  }
  if (prev !== undefined) {
    // the lists that did not change stay the previous record's
    if (sameList(prev.devices, devices)) devices = prev.devices;
    if (sameList(prev.groups, groups)) groups = prev.groups;
  }
  return { handle, open: c.open, objects, devices, groups };
};

/** the groups with members whose domain is a hwpt of ctx `handle`, by hwpt */
const groupsByHwpt = (model: ModelState, handle: string): Map<number, number[]> => {
  const out = new Map<number, number[]>();
  for (const g of model.groups.values()) {
    if (g.devices.length === 0) continue;
    const dom = groupDomainOf(model, g);
    if (dom.kind === 'hwpt' && dom.ictx === handle) (out.get(dom.hwpt) ?? out.set(dom.hwpt, []).get(dom.hwpt)!).push(g.id);
  }
  return out;
};

/** the devices on a hwpt: attached (RID) through a bound fd, or by a PASID attachment of their own */
const hwptUsers = (model: ModelState, handle: string, id: number, pasidsOf: PasidsOf): string[] => {
  const out: string[] = [];
  for (const f of fdsOnHwpt(model, handle, id).values()) if (!out.includes(f.device)) out.push(f.device);
  if (model.fdIndex.pasidHwpts.get(handle)?.has(id)) {
    for (const f of model.fds.values()) {
      if (f.ictx !== handle || out.includes(f.device)) continue;
      const p = pasidsOf(f.device);
      if (p && Object.values(p).includes(id)) out.push(f.device);
    }
  }
  return out;
};

export const deriveContainer = (model: ModelState, handle: string): ContainerState | undefined => {
  const c = model.containers.get(handle);
  if (!c) return undefined;
  const groups: number[] = [];
  for (const g of model.groups.values()) if (g.container?.kind === 'legacy' && g.container.handle === handle) groups.push(g.id);
  return { handle, open: c.open, iommuType: c.iommuType, groups };
};

/** the whole read model of a host from its kernel model; `prev` gives the projection's own facts */
export const deriveReadModel = (model: ModelState, prev: HostState, isKernelDma: IsKernelDma, fresh: { group: (n: number) => GroupState; device: (name: string) => DeviceState }): HostReadModel => {
  const out: HostReadModel = { groups: {}, devices: {}, iommufds: {}, containers: {}, deviceFds: {}, groupFds: {} };
  for (const id of model.groups.keys()) {
    const g = deriveGroup(model, id, prev.groups[id], isKernelDma, groupFactsOf(prev.groups[id] ?? fresh.group(id)));
    if (g) out.groups[id] = g;
  }
  const names = new Set<string>([...model.devices.keys(), ...[...model.fds.values()].map((f) => f.device)]);
  for (const name of names) {
    const facts = deviceFactsOf(prev.devices[name] ?? fresh.device(name));
    settleDeviceFacts(facts, fdsOfDevice(model, name));
    const d = deriveDevice(model, name, prev.devices[name], isKernelDma, facts);
    if (d) out.devices[name] = d;
  }
  for (const handle of model.ictxs.keys()) {
    const c = deriveIctx(model, handle, prev.iommufds[handle], (d) => out.devices[d]?.pasids);
    if (c) out.iommufds[handle] = c;
  }
  for (const handle of model.containers.keys()) {
    const c = deriveContainer(model, handle);
    if (c) out.containers[handle] = c;
  }
  for (const handle of model.fds.keys()) {
    const f = deriveDeviceFd(model, handle);
    if (f) out.deviceFds[handle] = f;
  }
  for (const [handle, group] of model.groupFds) out.groupFds[handle] = group;
  return out;
};


// --- incremental derivation: the records a transition touches ---------------------------------------------

/**
 * The records a transition touched (told by the model's writers: `touchedBy`): what to derive again, and the
 * groups whose rules to check. No per-event reader needs the records (the rules and the fold read the model
 * and the facts): the group and device records marked (`syncFacts`, `markGroup`, `markDevice`) and the kinds of
 * ctx, container, fd and group-fd records changed accumulate in the host's `Pending` and are derived when the
 * host's records of that kind are read (`liveHost`).
 */
export interface Touched {
  /** the capabilities changed (the managed-DMA set): every group and device */
  all: boolean;
  /** without repeats (an event touches a few: a list search costs less than a hash set) */
  readonly groups: ReusedList<number>;
  readonly devices: ReusedList<string>;
  /**
   * the groups touched whole (`touchGroup`: members, owners' ctxs, container): touched again in the same event
   * they add nothing, as every later change of those is told on its own (a domain change of each member of a
   * group of n touched it n times, n members each)
   */
  readonly wholeGroups: ReusedList<number>;
  /** the host's pending records, the host's own (`bindPending`) */
  pending: Pending;
}

/**
 * Which kinds of the ctx, container, device-fd and group-fd records of a host changed since they were last
 * read: a flag per kind, the kind derived again whole when read (a set of handles per kind cost the fold a
 * hash insert per record a change reaches, for records most of which are never read between two changes).
 */
export interface Pending {
  ictxs: boolean;
  containers: boolean;
  fds: boolean;
  groupFds: boolean;
  /**
   * the host's ctx records as last derived. A record derived again carries facts of the previous one by id
   * (the device of a hwpt), and xa_alloc hands the id out again (a ctx's handle too): the record of a ctx or
   * object that went is dropped from here at once, so what takes its id later is derived without it (a list
   * of what went, kept until the next read, grew with the history while nobody read the records).
   */
  ictxRecords: Record<string, IommufdContextState>;
  /**
   * the group and device records to derive again (their model or their facts changed), in the order they were
   * first marked: a record the derivation creates is added to its host's records in that order, as it was
   * added when every record was derived after each event. Lists, not sets: a record's facts say whether it is
   * marked (`markPending`), so no repeat is pushed; a list of a few keys takes a fraction of a set's hash
   * table, and emptied it holds no store (every host keeps both, most never read)
   */
  readonly groups: number[];
  readonly devices: string[];
}

const newPending = (ictxRecords: Record<string, IommufdContextState> = {}): Pending => ({ ictxs: false, containers: false, fds: false, groupFds: false, ictxRecords, groups: [], devices: [] });

/**
 * A list without repeats kept from event to event: its first `n` items. Cleared by setting `n` to 0, so its
 * backing store stays (an array's `length = 0` frees it, and the next event's first push allocates again).
 */
export interface ReusedList<T> {
  readonly items: T[];
  n: number;
}

export const reusedList = <T>(): ReusedList<T> => ({ items: [], n: 0 });

/** `item` added unless the list has it; whether it was added */
export const addOnce = <T>(list: ReusedList<T>, item: T): boolean => {
  const items = list.items;
  for (let i = 0; i < list.n; i++) if (items[i] === item) return false;
  items[list.n++] = item;
  return true;
};

export const newTouched = (): Touched => ({ all: false, groups: reusedList(), devices: reusedList(), wholeGroups: reusedList(), pending: newPending() });

/** called after every event, most of which touch nothing: an empty set is left alone (`Set.clear` allocates a new table) */
export const clearTouched = (t: Touched): void => {
  t.all = false;
  t.groups.n = 0;
  t.devices.n = 0;
  t.wholeGroups.n = 0;
};

export const isUntouched = (t: Touched): boolean => !t.all && t.groups.n === 0 && t.devices.n === 0;

// --- derived on read: the records no per-event reader needs ---------------------------------------------------

type LazyKey = 'groups' | 'devices' | 'iommufds' | 'containers' | 'deviceFds' | 'groupFds';
const LAZY_KEYS: readonly LazyKey[] = ['groups', 'devices', 'iommufds', 'containers', 'deviceFds', 'groupFds'];
type LazyParts = Pick<HostReadModel, LazyKey> & {
  /** `groups` has its dictionary store (`groupsAsDictionary`) */
  groupsAsDictionary: boolean;
  readonly pending: Pending;
  facts: HostFacts;
  /** the managed-DMA set in force on the host (what decides a record's `kernelDma`): the fold's, one function for every host */
  readonly managedDmaDrivers: (host: HostState) => ReadonlySet<string>;
  /** the model the pending records are derived from: the one the fold marked them against (`pendingOf`) */
  model: ModelState | null;
};
/** a live host's lazy parts: a non-enumerable symbol-keyed field (no reader, clone or JSON sees it) */
const LAZY = Symbol('lazyReadModel');
type LiveHost = HostState & { readonly [LAZY]?: LazyParts };
const partsOf = (host: HostState): LazyParts | undefined => (host as LiveHost)[LAZY];

/** the records of one kind derived again whole: each record of the model's, and none the model no longer has */
const rederive = <T>(records: Record<string, T>, keys: Iterable<string>, has: (key: string) => boolean, derive: (key: string) => T | undefined): void => {
  for (const key of keys) put(records, key, derive(key));
  for (const key in records) if (!has(key)) delete records[key];
};

/**
 * the records of one kind marked since they were last derived, derived again (`derive`: undefined once the read
 * model shows none). A key may be listed twice (marked again after its facts were replaced whole: the setter
 * of `liveHost`): derived again where it is, the same record.
 */
const deriveMarked = <K extends string | number, R>(marked: K[], records: Record<string, R>, derive: (key: K, prev: R | undefined) => R | undefined): void => {
  if (marked.length === 0) return;
  for (const key of marked) put(records, key, derive(key, records[key as string]));
  marked.length = 0;
};

/** an index above V8's limit for fast elements (2^29 - 1): an object that ever held one keeps a dictionary store */
const SLOW_ELEMENTS_INDEX = 2 ** 30;

/**
 * A host's group records (keyed by group number) given a dictionary elements store, in place, before the first
 * are derived into it: a group number is an array index, and a fast (holey) store is sized to the largest one,
 * 201+ slots (2.6 kB) for groups 100-103 and 200, where a dictionary of five takes ~0.3 kB. The keys, their
 * order and the JSON stay a plain object's. Not before: an empty dictionary costs ~150 bytes on a host never read.
 */
const groupsAsDictionary = (parts: LazyParts): void => {
  const records = parts.groups as Record<number, GroupState | undefined>;
  records[SLOW_ELEMENTS_INDEX] = undefined;
  delete records[SLOW_ELEMENTS_INDEX];
  parts.groupsAsDictionary = true;
};

/** the device (or group) records marked, derived again (each has facts while the read model shows it) */
const deriveRecords = (host: HostState, model: ModelState, parts: LazyParts, key: 'groups' | 'devices'): void => {
  const { pending, facts } = parts;
  const managed = parts.managedDmaDrivers(host);
  const isKernelDma: IsKernelDma = (driver) => driver !== null && !managed.has(driver);
  if (key === 'devices') {
    deriveMarked(pending.devices, parts.devices, (name, prev) => {
      const f = facts.devices.get(name);
      if (f === undefined) return undefined;
      f.pending = false;
      return deriveDevice(model, name, prev, isKernelDma, f, true);
    });
  } else {
    if (!parts.groupsAsDictionary && pending.groups.length > 0) groupsAsDictionary(parts);
    deriveMarked(pending.groups, parts.groups, (id, prev) => {
      const f = facts.groups.get(id);
      if (f === undefined) return undefined;
      f.pending = false;
      return deriveGroup(model, id, prev, isKernelDma, f, true);
    });
  }
};

/** the records of kind `key` pending derived (each kind is derived from the model and the facts alone: one read derives its own kind) */
const derivePending = (host: HostState, parts: LazyParts, key: LazyKey): void => {
  const p = parts.pending;
  // the host's model, or (a reader took it off the host: a snapshot written without it) the one the fold marked against
  const model = host.kernel ?? parts.model;
  if (!model) return;
  if (key === 'groups' || key === 'devices') deriveRecords(host, model, parts, key);
  else if (key === 'iommufds' && p.ictxs) {
    p.ictxs = false;
    const devices = parts.facts.devices;
    rederive(parts.iommufds, model.ictxs.keys(), (h) => model.ictxs.has(h), (h) => deriveIctx(model, h, parts.iommufds[h], (d) => devices.get(d)?.pasids));
  } else if (key === 'containers' && p.containers) {
    p.containers = false;
    rederive(parts.containers, model.containers.keys(), (h) => model.containers.has(h), (h) => deriveContainer(model, h));
  } else if (key === 'deviceFds' && p.fds) {
    p.fds = false;
    rederive(parts.deviceFds, model.fds.keys(), (h) => model.fds.has(h), (h) => deriveDeviceFd(model, h));
  } else if (key === 'groupFds' && p.groupFds) {
    p.groupFds = false;
    rederive(parts.groupFds, model.groupFds.keys(), (h) => model.groupFds.has(h), (h) => model.groupFds.get(h));
  }
};

/** one accessor per lazy key, shared by every live host (the host is `this`): hosts built alike share one shape */
const LAZY_ACCESSORS: Readonly<Record<LazyKey, PropertyDescriptor>> = Object.fromEntries(
  LAZY_KEYS.map((key) => [
    key,
    {
      enumerable: true,
      configurable: true,
      get(this: HostState) {
        const parts = partsOf(this)!;
        derivePending(this, parts, key);
        return parts[key];
      },
      set(this: HostState, value: HostReadModel[LazyKey]) {
        const parts = partsOf(this)!;
        derivePending(this, parts, key);
        (parts as Record<LazyKey, unknown>)[key] = value;
        if (key === 'iommufds') parts.pending.ictxRecords = value as HostReadModel['iommufds'];
        if (key === 'groups') parts.groupsAsDictionary = false;
        // records put whole: the facts are theirs from now on
        if (key === 'groups' || key === 'devices') parts.facts = factsOfRecords(parts.groups, parts.devices);
      },
    },
  ]),
) as Record<LazyKey, PropertyDescriptor>;

const isLazyKey = (key: string): key is LazyKey => (LAZY_KEYS as readonly string[]).includes(key);

const factsOfRecords = (groups: HostState['groups'], devices: HostState['devices']): HostFacts => {
  const facts: HostFacts = { groups: new Map(), devices: new Map() };
  for (const g of Object.values(groups)) facts.groups.set(g.group, groupFactsOf(g));
  for (const d of Object.values(devices)) facts.devices.set(d.device, deviceFactsOf(d));
  return facts;
};

/**
 * `host` as a host the fold derives lazily: a new object with `host`'s fields in their order, whose groups,
 * devices, iommufds, containers, deviceFds and groupFds are accessors that derive what is pending (`pendingOf`)
 * before they return the records, so every reader (a query, a snapshot, `structuredClone`, JSON, the analytics
 * analyzer) sees them derived. The fold itself reads the model and the host's facts (`factsOf`, built here from
 * the host's records). The accessors are added to a new object, never put over the fields of an existing one:
 * that would turn the host into a dictionary-mode object, and every field read of the fold would become a hash
 * lookup. `managedDmaDrivers`: the managed-DMA set in force on a host (the fold's: its option or the host's override).
 */
export const liveHost = (host: HostState, managedDmaDrivers: (host: HostState) => ReadonlySet<string>): HostState => {
  const out: Record<string, unknown> = {};
  const parts: LazyParts = {
    groups: host.groups,
    groupsAsDictionary: false,
    devices: host.devices,
    iommufds: host.iommufds,
    containers: host.containers,
    deviceFds: host.deviceFds,
    groupFds: host.groupFds,
    pending: newPending(host.iommufds),
    facts: factsOfRecords(host.groups, host.devices),
    managedDmaDrivers,
    model: host.kernel ?? null,
  };
  for (const key of Object.keys(host)) {
    if (isLazyKey(key)) Object.defineProperty(out, key, LAZY_ACCESSORS[key]);
    else out[key] = (host as unknown as Record<string, unknown>)[key];
  }
  Object.defineProperty(out, LAZY, { value: parts, enumerable: false, writable: false, configurable: false });
  return out as unknown as HostState;
};

/** whether `host` is one `liveHost` built (a restored or cloned host is plain data until the fold rebuilds it) */
export const isLiveHost = (host: HostState): boolean => partsOf(host) !== undefined;

/**
 * The projection's own facts of a live host (`liveHost`): the one place the fold writes them. A writer marks
 * the record it changed (`markGroup`, `markDevice`): the record shows them once derived again.
 */
export const factsOf = (host: HostState): HostFacts => {
  const parts = partsOf(host);
  if (!parts) throw new Error(`readModel: host ${host.host} is not a live host (liveHost)`);
  return parts.facts;
};

/** the pending records of a live host (`liveHost`), which a fold of it (its kernel model `model`) fills */
export const pendingOf = (host: HostState, model: ModelState): Pending => {
  const parts = partsOf(host);
  if (!parts) throw new Error(`readModel: host ${host.host} is not a live host (liveHost)`);
  parts.model = model;
  return parts.pending;
};

const touchDomain = (t: Touched, d: Domain | undefined): void => {
  if (d?.kind === 'hwpt') t.pending.ictxs = true;
};

const touchContainer = (t: Touched, c: ModelGroup['container']): void => {
  if (c === null) return;
  if (c.kind === 'legacy') t.pending.containers = true;
  else t.pending.ictxs = true;
};

const touchOwners = (t: Touched, g: ModelGroup): void => {
  if (g.owner?.kind === 'ictx') t.pending.ictxs = true;
  for (const o of g.extraOwners) if (o.kind === 'ictx') t.pending.ictxs = true;
};

const touchMembers = (t: Touched, g: ModelGroup): void => {
  // the members' domains are the group's: its ctx records (touchGroup) cover a hwpt's
  for (const m of g.devices) addOnce(t.devices, m);
};

/** a group and everything derived from it: its members, the ctxs (its owners', its domain's hwpt), its container */
const touchGroup = (t: Touched, model: ModelState, g: ModelGroup | undefined): void => {
  if (!g || !addOnce(t.wholeGroups, g.id)) return;
  addOnce(t.groups, g.id);
  touchOwners(t, g);
  touchContainer(t, g.container);
  touchMembers(t, g);
  if (!t.pending.ictxs) for (const m of g.devices) touchDomain(t, model.devices.get(m)?.domain);
};

/**
 * What the model's writers change (mutate.ts), noted in `t`: the records changed and those derived from them,
 * as far as the fields they are derived from change, on both sides of the change (what a device, group or fd
 * was derived into before, and after).
 */
export const touchedBy = (t: Touched): ModelChanges => ({
  caps: () => {
    t.all = true;
  },
  device: (model, d, parts, fromGroup, fromDomain) => {
    addOnce(t.devices, d.name);
    if ((parts & (DEVICE_GROUP | DEVICE_DOMAIN)) !== 0) {
      // membership or domain: the group's records (kernel-DMA count, domain, members' translatedBy, hwpt users)
      touchDomain(t, fromDomain);
      touchDomain(t, d.domain);
      if (fromGroup !== null && fromGroup !== d.group) touchGroup(t, model, model.groups.get(fromGroup));
      if (d.group !== null) touchGroup(t, model, model.groups.get(d.group));
    } else if ((parts & DEVICE_DRIVER) !== 0 && d.group !== null) addOnce(t.groups, d.group);
  },
  group: (model, g, parts) => {
    addOnce(t.groups, g.id);
    // the owners' ctxs list their groups, and a PASID attachment is a user of its hwpt
    if ((parts & GROUP_OWNERS) !== 0) touchOwners(t, g);
    if ((parts & GROUP_CONTAINER) !== 0) touchContainer(t, g.container);
    if ((parts & GROUP_MEMBERS) !== 0) {
      touchMembers(t, g);
      if (!t.pending.ictxs) for (const m of g.devices) touchDomain(t, model.devices.get(m)?.domain);
    }
  },
  fd: (fd, fromIctx) => {
    t.pending.fds = true;
    addOnce(t.devices, fd.device);
    if (fd.ictx !== null || fromIctx !== null) t.pending.ictxs = true;
  },
  object: (ictx, id, gone) => {
    if (gone) {
      const record = t.pending.ictxRecords[ictx];
      if (record) delete record.objects[id];
    }
    t.pending.ictxs = true;
  },
  ictx: (handle, gone) => {
    if (gone) delete t.pending.ictxRecords[handle];
    t.pending.ictxs = true;
  },
  groupFd: () => {
    t.pending.groupFds = true;
  },
  container: () => {
    t.pending.containers = true;
  },
  freed: () => {},
  moved: () => {},
});

const put = <T>(records: Record<string, T>, key: string | number, value: T | undefined): void => {
  if (value === undefined) delete records[key];
  else records[key] = value;
};

export const newDeviceFacts = (): DeviceFacts => ({ tenant: null, vm: null, attachedPt: null, selfAttachedHwpt: null, pasids: NO_PASIDS, pending: false });

/** the facts of a new group record of `host`: its owner is known once an ownership call was recorded, uncertain while the host is */
export const newGroupFacts = (host: HostState): GroupFacts => ({
  ownerKnown: host.ownershipRecorded !== false,
  uncertain: host.uncertain !== null,
  uncertainReason: host.uncertain?.reason ?? null,
  openViolations: 0,
  pending: false,
});

/**
 * After a transition: the facts of the records it touched follow the model (an entry for each group and device
 * record the read model shows, with `newGroupFacts` for a new group, none for one gone; a device's facts
 * settled), and those records are marked to be derived again (`pending`).
 */
export const syncFacts = (host: HostState, model: ModelState, t: Touched): void => {
  const parts = partsOf(host)!;
  const facts = parts.facts;
  const pending = parts.pending;
  if (t.all) {
    // every record: the lists rebuilt without repeats through sets (a host may have thousands)
    const groups = new Set([...t.groups.items.slice(0, t.groups.n), ...model.groups.keys(), ...facts.groups.keys()]);
    const devices = new Set([...t.devices.items.slice(0, t.devices.n), ...model.devices.keys(), ...facts.devices.keys()]);
    t.groups.n = 0;
    for (const id of groups) t.groups.items[t.groups.n++] = id;
    t.devices.n = 0;
    for (const name of devices) t.devices.items[t.devices.n++] = name;
  }
  for (let i = 0; i < t.devices.n; i++) {
    const name = t.devices.items[i]!;
    // one lookup of the device's fds for both
    const fds = fdsOfDevice(model, name);
    if (deviceShown(model, name, fds)) {
      let f = facts.devices.get(name);
      if (f === undefined) facts.devices.set(name, (f = newDeviceFacts()));
      settleDeviceFacts(f, fds);
      markPending(f, pending.devices, name);
    } else if (facts.devices.delete(name)) {
      // its record goes now: one shown again is a new record, after the others (as when derived after each event)
      delete parts.devices[name];
      unmark(pending.devices, name);
    }
  }
  for (let i = 0; i < t.groups.n; i++) {
    const id = t.groups.items[i]!;
    if (shownGroup(model, id) !== undefined) {
      let f = facts.groups.get(id);
      if (f === undefined) facts.groups.set(id, (f = newGroupFacts(host)));
      markPending(f, pending.groups, id);
    } else if (facts.groups.delete(id)) {
      delete parts.groups[id];
      unmark(pending.groups, id);
    }
  }
};

/** a record to derive again: its facts' flag says it is in the pending list already (no search per mark) */
const markPending = <K>(f: { pending: boolean }, marked: K[], key: K): void => {
  if (f.pending) return;
  f.pending = true;
  marked.push(key);
};

/** a record gone from the read model leaves the pending list (rare: a device unplugged, a group emptied), every time it is listed */
const unmark = <K>(marked: K[], key: K): void => {
  let n = 0;
  for (let i = 0; i < marked.length; i++) if (marked[i] !== key) marked[n++] = marked[i]!;
  marked.length = n;
};

/** the group record `id` of a live host to derive again: its facts `f` changed */
export const markGroup = (host: HostState, id: number, f: GroupFacts): void => markPending(f, partsOf(host)!.pending.groups, id);

/** the device record `name` of a live host to derive again: its facts `f` changed */
export const markDevice = (host: HostState, name: string, f: DeviceFacts): void => markPending(f, partsOf(host)!.pending.devices, name);

// --- the other way: a model state from a read model (snapshots written before the model was folded) ----------

const modelDomainOf = (d: DomainRef | null): Domain => {
  switch (d?.kind) {
    case 'hwpt':
      return { kind: 'hwpt', ictx: d.ictx ?? '', hwpt: d.hwptId ?? -1 };
    case 'container':
      return { kind: 'container', container: d.container ?? '' };
    case 'blocking':
      return { kind: 'blocking' };
    default:
      return { kind: 'default' };
  }
};

const ownerOfUser = (o: UserOwner): Owner => (o.kind === 'iommufd' ? { kind: 'ictx', ictx: o.handle } : { kind: 'container', container: o.handle });

/**
 * The upstream model state a read model describes: how a host of a snapshot written before the projection
 * folded the model (format 1, `kernel` absent) gets one, so the fold goes on deriving its read model. The
 * facts the read model never held start empty: the IOVA areas of each IOAS, the objects added after 6.6
 * (HostState.objects has them), the sub-groups of a group, device flags a topology snapshot re-reads.
 * `deriveReadModel(modelFromReadModel(h), h, ...)` gives `h`'s read model back (readModel.unit.spec.ts).
 */
export const modelFromReadModel = (host: HostState, managedDmaDrivers: readonly string[]): ModelState => {
  const model = initialState();
  const caps = host.capabilities;
  if (caps) {
    model.caps = {
      interruptRemapping: caps.interruptRemapping,
      allowUnsafeInterrupts: caps.allowUnsafeInterrupts,
      cacheCoherent: caps.cacheCoherent,
      managedDmaDrivers: caps.managedDmaDrivers ?? managedDmaDrivers,
      kernelRelease: caps.kernelRelease,
    };
  }
  for (const d of Object.values(host.devices)) {
    const topo = host.topology[d.device];
    const device: ModelDevice = {
      name: d.device,
      group: d.group,
      driver: d.driver,
      bridge: topo?.headerType != null && topo.headerType !== 'normal',
      requireDirect: topo?.requireDirect ?? false,
      maxPasids: topo?.maxPasids ?? 0,
      pasidAttach: topo?.pasidAttach ?? false,
      domain: modelDomainOf(d.translatedBy),
    };
    putDevice(model, NO_CHANGES, device);
  }
  for (const g of Object.values(host.groups)) {
    const group: ModelGroup = {
      ...emptyGroup(g.group, [...g.members]),
      ownerCnt: g.userOwner === null ? g.kernelDmaDrivers : g.userOwnerCount,
      owner: g.userOwner === null ? null : ownerOfUser(g.userOwner),
      extraOwners: g.extraOwners.map(ownerOfUser),
      attached: [...g.attachedDevices],
      pasids: { ...g.pasids },
      groupFd: g.legacyGroupFd,
      container: g.container,
    };
    putGroup(model, NO_CHANGES, group);
  }
  for (const c of Object.values(host.iommufds)) {
    setIctxOpen(model, NO_CHANGES, c.handle, c.open);
    for (const o of Object.values(c.objects)) {
      const object: IommufdObject =
        o.kind === 'device'
          ? { kind: 'device', device: o.device ?? '', deviceFd: host.devices[o.device ?? '']?.boundFd ?? '' }
          : o.kind === 'ioas'
            ? { kind: 'ioas', compat: false, mappings: o.mappings }
            : { kind: 'hwpt', ioas: o.ioasId ?? -1, auto: o.auto };
      putObject(model, NO_CHANGES, c.handle, o.id, object);
    }
  }
  for (const f of Object.values(host.deviceFds)) {
    const d = host.devices[f.device];
    const bound = f.boundIctx !== null && d?.boundFd === f.fd;
    const fd: ModelFd = { handle: f.fd, device: f.device, via: f.via, ictx: f.boundIctx, devId: bound ? d.devId : null, hwpt: bound ? d.attachedHwpt : null, accessGranted: f.accessGranted };
    putFd(model, NO_CHANGES, fd);
  }
  for (const [handle, group] of Object.entries(host.groupFds)) setGroupFd(model, NO_CHANGES, handle, group);
  for (const c of Object.values(host.containers)) putContainer(model, NO_CHANGES, { handle: c.handle, iommuType: c.iommuType, open: c.open });
  return model;
};

// --- a snapshot's form of a live host's group and device records: their facts, derived again on read ----------

/**
 * What a snapshot writes of a live host's group and device records (issue 23): their facts, in the records' order,
 * and the managed-DMA set in force when it is not the model's own (`caps.managedDmaDrivers`). The records are a
 * function of the kernel model and these (`readModelFromFacts`), so writing them whole wrote each fact of the model
 * twice (about 4 kB of a 10 kB checkpoint row) and made every checkpoint derive and keep every record of the host.
 */
export interface ReadModelFactsJson {
  readonly managed: readonly string[] | null;
  readonly groups: readonly (readonly [id: number, ownerKnown: boolean, uncertain: boolean, uncertainReason: string | null, openViolations: number])[];
  readonly devices: readonly (readonly [name: string, tenant: string | null, vm: string | null, attachedPt: number | null, selfAttachedHwpt: number | null, pasids: Readonly<Record<string, number>>])[];
}

const sameSet = (set: ReadonlySet<string>, list: readonly string[]): boolean => set.size === list.length && list.every((d) => set.has(d));

/** a live host's record facts as a snapshot writes them; undefined for a host that is plain data (its records are written whole) */
export const readModelFactsOf = (host: HostState, model: ModelState): ReadModelFactsJson | undefined => {
  const parts = partsOf(host);
  if (!parts) return undefined;
  const managed = parts.managedDmaDrivers(host);
  const groups: [number, boolean, boolean, string | null, number][] = [];
  for (const [id, f] of parts.facts.groups) groups.push([id, f.ownerKnown, f.uncertain, f.uncertainReason, f.openViolations]);
  // in the records' order: a group number is an index, so its record's place is by number (the facts' by first use)
  groups.sort((a, b) => a[0] - b[0]);
  const devices: [string, string | null, string | null, number | null, number | null, Readonly<Record<string, number>>][] = [];
  for (const [name, f] of parts.facts.devices) devices.push([name, f.tenant, f.vm, f.attachedPt, f.selfAttachedHwpt, f.pasids]);
  return { managed: sameSet(managed, model.caps.managedDmaDrivers) ? null : [...managed], groups, devices };
};

/** the group and device records `facts` (a snapshot's `readModelFactsOf`) describe over `model`, in their order */
export const readModelFromFacts = (model: ModelState, facts: ReadModelFactsJson): Pick<HostReadModel, 'groups' | 'devices'> => {
  const managed = new Set(facts.managed ?? model.caps.managedDmaDrivers);
  const isKernelDma: IsKernelDma = (driver) => driver !== null && !managed.has(driver);
  const groups: HostReadModel['groups'] = {};
  for (const [id, ownerKnown, uncertain, uncertainReason, openViolations] of facts.groups) {
    put(groups, id, deriveGroup(model, id, undefined, isKernelDma, { ownerKnown, uncertain, uncertainReason, openViolations, pending: false }));
  }
  const devices: HostReadModel['devices'] = {};
  for (const [name, tenant, vm, attachedPt, selfAttachedHwpt, pasids] of facts.devices) {
    const shared = Object.keys(pasids).length === 0 ? NO_PASIDS : (pasids as Record<string, number>);
    put(devices, name, deriveDevice(model, name, undefined, isKernelDma, { tenant, vm, attachedPt, selfAttachedHwpt, pasids: shared, pending: false }));
  }
  return { groups, devices };
};
