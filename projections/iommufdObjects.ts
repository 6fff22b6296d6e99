/**
 * The iommufd objects added after 6.6, per host, as the fold follows them (issue 19): who owns each (its
 * iommufd context and the process that allocated it), what links them (a vDEVICE to its device and vIOMMU, a
 * vIOMMU to its nesting parent, a nested hwpt to its parent, a fault queue to the hwpts that report to it),
 * which page faults were delivered and answered, the last vEVENT sequence of each vEVENTQ, HW queues, dirty
 * tracking, the device resets in flight and the Intel cache tags. Sources: kernel-changes-6.7-to-7.3.md
 * items 1–10, 14, 15 and 20.
 *
 * Pure, like the rest of the fold: `followObjects` reads the host's kernel model and facts as they are BEFORE
 * the event's own transitions (the fleet projection calls it first in its dispatch), writes only
 * `HostState.objects`, and reports the violations of the rules about these objects through the callbacks it
 * is given. It never reads the host's group, device or ctx records: those are derived on read (readModel.ts),
 * and a read in the fold would derive every record marked since the last one. Plain JSON
 * data: records keyed by `ictx/id` (object ids are per context), arrays, strings, numbers, booleans, null.
 */
import type { IommuEvent } from '../schemas/index.js';
import { releaseAtLeast } from './kernel/releases.js';
import type { GroupState as ModelGroup, IommufdObject, ModelState } from './kernel/types.js';
import type { RuleId } from './rules.js';
import type { HostFacts, HostState } from './types.js';
import { boundFdOf, shownGroup } from './violations/hostView.js';
import { attachDuringReset } from './violations/attachDuringReset.js';
import { faultsAutoResponded } from './violations/faultsAutoResponded.js';
import { nestedParentForeign } from './violations/nestedParentForeign.js';
import { vdeviceForeignGroup } from './violations/vdeviceForeignGroup.js';
import { veventLost } from './violations/veventLost.js';

/** an event named by id and host seq (what evidence cites) */
export interface ObjectEventRef {
  readonly eventId: string;
  readonly seq: number;
}

/** an iommufd context as these objects see it: who opened it, and the event fds that keep it alive */
export interface ObjectContext {
  readonly handle: string;
  /** the process that opened /dev/iommu (the envelope's actor), when recorded */
  readonly pid: number | null;
  readonly vm: string | null;
  readonly tenant: string | null;
  /** its IOMMU_OPENED was recorded: every object of it since is known, so a missing id is evidence */
  readonly openedOnRecord: boolean;
  /** the /dev/iommu fd is open */
  open: boolean;
  /** open fault and vEVENTQ fds: each holds a reference on the context (iommufd_ctx_get) */
  eventFds: string[];
  /** its objects followed here (hwpts, vIOMMUs, vDEVICEs, queues): a teardown with none scans nothing */
  objects: number;
}

interface Owned {
  readonly ictx: string;
  readonly id: number;
  /** the process that allocated it (the envelope's actor, else its context's) */
  readonly pid: number | null;
  /** the open violation this object raised, if any (closed when it goes) */
  violation: string | null;
}

export interface HwptRecord extends Owned {
  /** `pt_id`: an IOAS, a parent hwpt or a vIOMMU */
  readonly parent: number;
  readonly parentKind: 'ioas' | 'hwpt' | 'viommu' | null;
  /** a user stage-1 table nested under `parent` */
  readonly nested: boolean;
  /** IOMMU_HWPT_ALLOC_NEST_PARENT */
  readonly nestParent: boolean;
  /** IOMMU_HWPT_ALLOC_DIRTY_TRACKING at allocation */
  readonly dirtyTracking: boolean;
  /** IOMMU_HWPT_SET_DIRTY_TRACKING's last successful state */
  dirtyEnabled: boolean;
  /** `fault_id` with IOMMU_HWPT_FAULT_ID_VALID: its fault queue */
  readonly faultId: number | null;
  readonly dataType: string | null;
  /** the dev_id's device */
  readonly device: string | null;
}

export interface ViommuRecord extends Owned {
  readonly viommuType: string;
  readonly devId: number;
  readonly device: string | null;
  /** `hwpt_id`: the nesting parent it holds */
  readonly parentHwpt: number;
}

export interface VdeviceRecord extends Owned {
  readonly viommuId: number;
  readonly devId: number;
  /** the device it stands for (resolved through its context's dev_id) */
  readonly device: string | null;
  /** the device's id in the guest (vSID, vRID) */
  readonly virtId: string;
  /** its device was unbound while it lived (before 6.17 the kernel keeps it) */
  deviceGone: boolean;
}

export interface PendingFault {
  readonly devId: number;
  readonly device: string | null;
  readonly pasid: number | null;
  readonly cookie: number;
  readonly addr: string;
  readonly read: ObjectEventRef;
}

export interface FaultQueueRecord extends Owned {
  /** the fault fd; null when its alloc was not recorded and only reads named it */
  readonly fd: string;
  fdOpen: boolean;
  /** hwpts allocated with this fault_id */
  hwpts: number[];
  /** faults read and not yet answered */
  pending: PendingFault[];
  delivered: number;
  answered: number;
  /** answered IOMMU_PAGE_RESP_INVALID by the kernel (detach, replace, fd close, context teardown) */
  autoAnswered: number;
}

export interface VeventqRecord extends Owned {
  readonly fd: string;
  fdOpen: boolean;
  readonly viommuId: number | null;
  readonly veventqType: string | null;
  readonly depth: number | null;
  /** the last `sequence` read; null before the first read */
  lastSequence: number | null;
  /** the sequence the next read must carry; null when the queue's start was not recorded */
  nextSequence: number | null;
  /** vEVENTs lost (gaps counted; a LOST_EVENTS header without a gap counts as one) */
  lost: number;
  /** open vevent-lost violations of this queue */
  violations: string[];
}

export interface HwQueueRecord extends Owned {
  readonly viommuId: number;
  readonly hwQueueType: string;
  readonly index: number;
}

/** a device between pci_dev_reset_iommu_prepare and _done (7.0) */
export interface ResetFenceRecord {
  readonly device: string;
  readonly since: ObjectEventRef;
  /** attach-during-reset violations it opened (closed at its done) */
  violations: string[];
}

/** an Intel cache tag (intel_iommu:cache_tag_assign): the VT-d domain id and PASID a device's caches serve */
export interface CacheTagRecord {
  readonly iommu: string;
  readonly tagType: string;
  readonly domainId: number;
  readonly pasid: number;
  ref: number;
}

/** a VFIO dma-buf (6.19) of a device's BAR, open until the kernel revokes it (device fd closed, device reset) */
export interface DmaBufRecord {
  readonly dmaBufFd: string;
  readonly device: string;
  readonly deviceFd: string;
  readonly regionIndex: number;
  readonly created: ObjectEventRef;
}

export interface HostObjectsState {
  contexts: Record<string, ObjectContext>;
  hwpts: Record<string, HwptRecord>;
  viommus: Record<string, ViommuRecord>;
  vdevices: Record<string, VdeviceRecord>;
  faultQueues: Record<string, FaultQueueRecord>;
  veventqs: Record<string, VeventqRecord>;
  hwQueues: Record<string, HwQueueRecord>;
  /** fault and vEVENTQ fd → the key of its queue */
  eventFds: Record<string, string>;
  /** devices inside a reset fence, by device */
  resets: Record<string, ResetFenceRecord>;
  /** cache tags per device */
  cacheTags: Record<string, CacheTagRecord[]>;
  /** open VFIO dma-bufs by their fd (absent in a snapshot taken before they were followed) */
  dmaBufs?: Record<string, DmaBufRecord>;
}

export const emptyObjectsState = (): HostObjectsState => ({
  contexts: {},
  hwpts: {},
  viommus: {},
  vdevices: {},
  faultQueues: {},
  veventqs: {},
  hwQueues: {},
  eventFds: {},
  resets: {},
  cacheTags: {},
});

/** a host's objects: none for a host folded before they were followed (an older snapshot) */
export const objectsOf = (h: HostState): HostObjectsState => h.objects ?? emptyObjectsState();

export type OpenViolationFn = (key: string, ruleId: RuleId, message: string, group: number | null, device: string | null) => void;
export type CloseViolationFn = (key: string) => void;

/** the events this module follows; any other returns at once (no state is created for it) */
const FOLLOWED: ReadonlySet<IommuEvent['type']> = new Set<IommuEvent['type']>([
  'IommufdOpened',
  'IommufdClosed',
  'IommufdHwptAllocIssued',
  'IommufdDestroyIssued',
  'IommufdHwptSetDirtyTrackingIssued',
  'IommufdFaultQueueAllocIssued',
  'IommufdPageFaultRead',
  'IommufdPageResponseWritten',
  'IommufdEventFdClosed',
  'IommufdViommuAllocIssued',
  'IommufdVdeviceAllocIssued',
  'IommufdVeventqAllocIssued',
  'IommufdVeventRead',
  'IommufdHwQueueAllocIssued',
  'VfioDeviceAttachPtIssued',
  'VfioDeviceDetachPtIssued',
  'VfioDeviceClosed',
  'VfioDeviceResetIssued',
  'TraceDeviceResetFence',
  'TraceCacheTag',
  'VfioDeviceDmaBufCreated',
  'VfioDeviceDmaBufRevoked',
]);

/** followed events that only act on objects already followed (they create none) */
const ACTS_ON_OBJECTS: ReadonlySet<IommuEvent['type']> = new Set<IommuEvent['type']>([
  'IommufdClosed',
  'IommufdDestroyIssued',
  'IommufdHwptSetDirtyTrackingIssued',
  'IommufdPageFaultRead',
  'IommufdPageResponseWritten',
  'IommufdEventFdClosed',
  'IommufdVeventRead',
  'VfioDeviceAttachPtIssued',
  'VfioDeviceDetachPtIssued',
  'VfioDeviceClosed',
  'VfioDeviceResetIssued',
  'VfioDeviceDmaBufRevoked',
]);

const NEST_PARENT = 0x1;
const DIRTY_TRACKING = 0x2;
const SEQUENCE_MAX = 0x7fffffff;

const keyOf = (ictx: string, id: number): string => `${ictx}/${id}`;
const refOf = (e: IommuEvent): ObjectEventRef => ({ eventId: e.id, seq: e.seq });
const removeItem = <T>(list: T[], item: T): void => {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
};

/** true when the record has no key (no allocation, unlike Object.keys) */
const isEmpty = (record: object): boolean => {
  for (const _ in record) return false;
  return true;
};

/**
 * The event being followed, with where it writes: the helpers below are module functions taking it (closures
 * made per event cost more than the fold's budget of about 1 µs an event). One record, refilled per event:
 * `followObjects` is synchronous and never re-entered, as the fold that calls it (it keeps the last host and
 * event until the next call).
 */
interface Follow {
  h: HostState;
  /** the host's kernel model and facts, what the fleet's records are derived from */
  model: ModelState;
  facts: HostFacts;
  o: HostObjectsState;
  e: IommuEvent;
  open: OpenViolationFn;
  close: CloseViolationFn;
}
const noViolation = (): void => undefined;
const current: Follow = { h: undefined as unknown as HostState, model: undefined as unknown as ModelState, facts: undefined as unknown as HostFacts, o: emptyObjectsState(), e: undefined as unknown as IommuEvent, open: noViolation, close: noViolation };

const ruleKey = (c: Follow, rule: RuleId, subject: string): string => `${rule}|${c.h.host}|${subject}`;
const pidOf = (c: Follow, ictx: string): number | null => c.e.actor?.pid ?? c.o.contexts[ictx]?.pid ?? null;
const contextOf = (c: Follow, ictx: string): ObjectContext =>
  (c.o.contexts[ictx] ??= { handle: ictx, pid: null, vm: null, tenant: null, openedOnRecord: false, open: true, eventFds: [], objects: 0 });

/** a new object of the context: counted, so the context's teardown knows whether it has any to destroy */
const own = (c: Follow, ictx: string): ObjectContext => {
  const ctx = contextOf(c, ictx);
  ctx.objects++;
  return ctx;
};

/** the object `id` of ctx `ictx` of the kinds the fleet's ctx records show (readModel.ts deriveIctx), if any */
const recordedObject = (model: ModelState, ictx: string, id: number): Extract<IommufdObject, { kind: 'device' | 'ioas' | 'hwpt' }> | undefined => {
  const obj = model.ictxs.get(ictx)?.objects.get(id);
  return obj?.kind === 'device' || obj?.kind === 'ioas' || obj?.kind === 'hwpt' ? obj : undefined;
};

/** the device a dev_id names in a context (the fleet's device objects) */
const deviceOf = (model: ModelState, ictx: string, devId: number): string | null => {
  const obj = model.ictxs.get(ictx)?.objects.get(devId);
  return obj?.kind === 'device' ? obj.device : null;
};

/** the group of a device as its record shows it (none when the model has no such device) */
const groupOf = (model: ModelState, device: string): number | null => model.devices.get(device)?.group ?? null;

/** whether the fleet shows a record of the device (readModel.ts: it has facts, and the model the device or fds of it) */
const hasRecord = (c: Follow, device: string): boolean => c.facts.devices.has(device) && (c.model.devices.has(device) || c.model.fdIndex.byDevice.has(device));

// --- page faults the kernel answers itself -----------------------------------------------------------------

const recordAutoResponse = (c: Follow, key: string, q: FaultQueueRecord, device: string, count: number, why: string): void => {
  q.autoAnswered += count;
  const vkey = ruleKey(c, 'faults-auto-responded', `${key}|${device}|${c.e.seq}`);
  c.open(vkey, faultsAutoResponded.id, faultsAutoResponded.describe(count, device, key, why), groupOf(c.model, device), device);
  c.close(vkey);
};

/** the faults of `device` pending in the context's queues (pasid undefined: every PASID), answered INVALID */
const autoRespond = (c: Follow, ictx: string | null, device: string, pasid: number | null | undefined, why: string): void => {
  for (const key in c.o.faultQueues) {
    const q = c.o.faultQueues[key]!;
    if (ictx !== null && q.ictx !== ictx) continue;
    const kept: PendingFault[] = [];
    for (const f of q.pending) if (f.device !== device || (pasid !== undefined && f.pasid !== pasid)) kept.push(f);
    const answered = q.pending.length - kept.length;
    if (answered === 0) continue;
    q.pending = kept;
    recordAutoResponse(c, key, q, device, answered, why);
  }
};

const autoRespondQueue = (c: Follow, key: string, q: FaultQueueRecord, why: string): void => {
  const byDevice = new Map<string, number>();
  for (const f of q.pending) {
    const name = f.device ?? `dev_id ${f.devId}`;
    byDevice.set(name, (byDevice.get(name) ?? 0) + 1);
  }
  q.pending = [];
  for (const [device, count] of byDevice) recordAutoResponse(c, key, q, device, count, why);
};

// --- objects going away --------------------------------------------------------------------------------------

const closeOwned = (c: Follow, x: Owned): void => {
  if (x.violation !== null) c.close(x.violation);
  x.violation = null;
};

const closeQueueViolations = (c: Follow, q: VeventqRecord): void => {
  for (const v of q.violations) c.close(v);
  q.violations = [];
};

/** IOMMU_DESTROY of `ictx/id` (or the teardown of its context): whichever object it is goes */
const destroy = (c: Follow, ictx: string, id: number): void => {
  const o = c.o;
  const key = keyOf(ictx, id);
  const hwpt = o.hwpts[key];
  if (hwpt) {
    closeOwned(c, hwpt);
    if (hwpt.faultId !== null) {
      const q = o.faultQueues[keyOf(ictx, hwpt.faultId)];
      if (q) removeItem(q.hwpts, id);
    }
    delete o.hwpts[key];
  }
  const viommu = o.viommus[key];
  if (viommu) {
    closeOwned(c, viommu);
    delete o.viommus[key];
  }
  const vdevice = o.vdevices[key];
  if (vdevice) {
    closeOwned(c, vdevice);
    delete o.vdevices[key];
  }
  const fq = o.faultQueues[key];
  if (fq) {
    if (o.eventFds[fq.fd] === key) delete o.eventFds[fq.fd];
    delete o.faultQueues[key];
  }
  const vq = o.veventqs[key];
  if (vq) {
    closeQueueViolations(c, vq);
    if (o.eventFds[vq.fd] === key) delete o.eventFds[vq.fd];
    delete o.veventqs[key];
  }
  const hwQueue = o.hwQueues[key];
  if (hwQueue) delete o.hwQueues[key];
  const ctx = o.contexts[ictx];
  if (ctx && (hwpt || viommu || vdevice || fq || vq || hwQueue)) ctx.objects--;
};

/** iommufd_fops_release once the last reference is gone: every object of the context is destroyed */
const teardown = (c: Follow, ictx: string): void => {
  const o = c.o;
  if ((o.contexts[ictx]?.objects ?? 0) === 0) {
    delete o.contexts[ictx];
    return;
  }
  for (const key in o.faultQueues) {
    const q = o.faultQueues[key]!;
    if (q.ictx === ictx && q.pending.length > 0) autoRespondQueue(c, key, q, `iommufd ${ictx} was torn down`);
  }
  for (const records of [o.hwpts, o.viommus, o.vdevices, o.faultQueues, o.veventqs, o.hwQueues] as Record<string, Owned>[]) {
    for (const key in records) {
      const x = records[key]!;
      if (x.ictx === ictx) destroy(c, ictx, x.id);
    }
  }
  delete o.contexts[ictx];
};

/** the context's file is closed, no device is bound and no event fd holds it: it goes */
/**
 * Whether a device but `except` is bound to ctx `ictx`, from the model's fds (the fleet's ctx record, derived on
 * read, lists the same: readModel.ts deriveIctx): the first such fd answers (no list of the devices is made)
 */
const anyDeviceBoundTo = (model: ModelState, ictx: string, except: string | null): boolean => {
  for (const f of model.fds.values()) if (f.ictx === ictx && f.device !== except) return true;
  return false;
};

/** tears a closed ctx down once nothing holds it: no event fd, no bound device but `except` (being unbound) */
const teardownIfUnreferenced = (c: Follow, ictx: string, except: string | null): void => {
  const ctx = c.o.contexts[ictx];
  if (ctx && !ctx.open && ctx.eventFds.length === 0 && !anyDeviceBoundTo(c.model, ictx, except)) teardown(c, ictx);
};

// --- the rules about parents and owners ----------------------------------------------------------------------

/** why `parent` cannot be a nesting parent in `ictx`, or null when it can (or the context's objects are not all known) */
const foreignParent = (c: Follow, ictx: string, parent: number): string | null => {
  const o = c.o;
  if (!o.contexts[ictx]?.openedOnRecord) return null;
  if (o.viommus[keyOf(ictx, parent)]) return null;
  const own = o.hwpts[keyOf(ictx, parent)];
  if (own) return own.nestParent ? null : `hwpt ${parent}, allocated without IOMMU_HWPT_ALLOC_NEST_PARENT (-EINVAL upstream)`;
  if (recordedObject(c.model, ictx, parent)?.kind === 'hwpt') return null;
  const elsewhere = Object.values(o.hwpts).find((x) => x.id === parent && x.nestParent && x.ictx !== ictx);
  return `id ${parent}, no hwpt or vIOMMU of that context (-EINVAL upstream)${elsewhere ? `: iommufd ${elsewhere.ictx} holds a nesting parent hwpt ${parent}` : ''}`;
};

const ownerText = (o: NonNullable<ModelGroup['owner']>): string => (o.kind === 'ictx' ? `iommufd ${o.ictx}` : `legacy container ${o.container}`);

// --- device resets (7.0 fence) ---------------------------------------------------------------------------------

const endFence = (c: Follow, device: string): void => {
  const f = c.o.resets[device];
  if (!f) return;
  for (const v of f.violations) c.close(v);
  delete c.o.resets[device];
};

/** the fence the device or a sibling in its group is inside, if any */
const resettingSibling = (c: Follow, device: string): ResetFenceRecord | null => {
  const group = hasRecord(c, device) ? groupOf(c.model, device) : null;
  const members = group !== null ? (shownGroup(c.model, group)?.devices ?? [device]) : [device];
  for (const m of members) {
    const f = c.o.resets[m];
    if (f) return f;
  }
  return null;
};

/**
 * Folds one event into the host's objects (state before the event's own transitions) and reports the
 * violations of the object rules. Called by the fleet projection's dispatch for every event it applies.
 */
/** the kernel revoked these dma-bufs: they no longer count as open */
const revokeDmaBufs = (o: HostObjectsState, which: (b: DmaBufRecord) => boolean): void => {
  if (!o.dmaBufs) return;
  for (const key in o.dmaBufs) if (which(o.dmaBufs[key]!)) delete o.dmaBufs[key];
};

export const followObjects = (h: HostState, model: ModelState, facts: HostFacts, e: IommuEvent, open: OpenViolationFn, close: CloseViolationFn): void => {
  if (!FOLLOWED.has(e.type)) return;
  // the VFIO calls only act on objects already followed: a host without any costs nothing more
  if (h.objects === undefined && ACTS_ON_OBJECTS.has(e.type)) return;
  const o = (h.objects ??= emptyObjectsState());
  const c = current;
  c.h = h;
  c.model = model;
  c.facts = facts;
  c.o = o;
  c.e = e;
  c.open = open;
  c.close = close;
  switch (e.type) {
    case 'IommufdOpened':
      if (e.data.outcome.ok) {
        o.contexts[e.data.ictx] = {
          handle: e.data.ictx,
          pid: e.actor?.pid ?? null,
          vm: e.actor?.vm ?? null,
          tenant: e.actor?.tenant ?? null,
          openedOnRecord: true,
          open: true,
          eventFds: [],
          objects: 0,
        };
      }
      return;
    case 'IommufdClosed': {
      const ctx = o.contexts[e.data.ictx];
      if (!ctx) return;
      ctx.open = false;
      teardownIfUnreferenced(c, e.data.ictx, null);
      return;
    }
    case 'IommufdHwptAllocIssued': {
      if (!e.data.outcome.ok) return;
      const { ictx, ptId } = e.data;
      const id = e.data.outcome.hwptId;
      own(c, ictx);
      const parentKind = o.viommus[keyOf(ictx, ptId)]
        ? 'viommu'
        : o.hwpts[keyOf(ictx, ptId)]
          ? 'hwpt'
          : (recordedObject(model, ictx, ptId)?.kind ?? null);
      const nested = (e.data.dataType !== undefined && e.data.dataType !== 'none') || parentKind === 'hwpt' || parentKind === 'viommu';
      const flags = e.data.flags;
      const rec: HwptRecord = {
        ictx,
        id,
        pid: pidOf(c, ictx),
        violation: null,
        parent: ptId,
        parentKind: parentKind === 'device' ? null : parentKind,
        nested,
        nestParent: (flags & NEST_PARENT) !== 0,
        dirtyTracking: (flags & DIRTY_TRACKING) !== 0,
        dirtyEnabled: false,
        faultId: e.data.faultId ?? null,
        dataType: e.data.dataType ?? null,
        device: deviceOf(model, ictx, e.data.devId),
      };
      o.hwpts[keyOf(ictx, id)] = rec;
      if (rec.faultId !== null) {
        const q = o.faultQueues[keyOf(ictx, rec.faultId)];
        if (q && !q.hwpts.includes(id)) q.hwpts.push(id);
      }
      const why = nested ? foreignParent(c, ictx, ptId) : null;
      if (why !== null) {
        rec.violation = ruleKey(c, nestedParentForeign.id, keyOf(ictx, id));
        c.open(rec.violation, nestedParentForeign.id, nestedParentForeign.describe(`nested hwpt ${id}`, ictx, ptId, why), null, rec.device);
      }
      return;
    }
    case 'IommufdDestroyIssued':
      if (e.data.outcome.ok) destroy(c, e.data.ictx, e.data.objectId);
      return;
    case 'IommufdHwptSetDirtyTrackingIssued': {
      const rec = o.hwpts[keyOf(e.data.ictx, e.data.hwptId)];
      if (rec && e.data.outcome.ok) rec.dirtyEnabled = e.data.enable;
      return;
    }
    case 'IommufdFaultQueueAllocIssued': {
      if (!e.data.outcome.ok) return;
      const { ictx } = e.data;
      const { faultId, faultFd } = e.data.outcome;
      const key = keyOf(ictx, faultId);
      o.faultQueues[key] = { ictx, id: faultId, pid: pidOf(c, ictx), violation: null, fd: faultFd, fdOpen: true, hwpts: [], pending: [], delivered: 0, answered: 0, autoAnswered: 0 };
      o.eventFds[faultFd] = key;
      own(c, ictx).eventFds.push(faultFd);
      return;
    }
    case 'IommufdPageFaultRead': {
      const key = o.eventFds[e.data.faultFd];
      const q = key === undefined ? undefined : o.faultQueues[key];
      if (!q) return;
      q.delivered++;
      q.pending.push({ devId: e.data.devId, device: deviceOf(model, q.ictx, e.data.devId), pasid: e.data.pasid ?? null, cookie: e.data.cookie, addr: e.data.addr, read: refOf(e) });
      return;
    }
    case 'IommufdPageResponseWritten': {
      const key = o.eventFds[e.data.faultFd];
      const q = key === undefined ? undefined : o.faultQueues[key];
      if (!q || !e.data.outcome.ok) return;
      const before = q.pending.length;
      q.pending = q.pending.filter((f) => f.cookie !== e.data.cookie);
      q.answered += before - q.pending.length;
      return;
    }
    case 'IommufdEventFdClosed': {
      const key = o.eventFds[e.data.fd];
      delete o.eventFds[e.data.fd];
      const ctx = o.contexts[e.data.ictx];
      if (ctx) removeItem(ctx.eventFds, e.data.fd);
      if (key !== undefined) {
        const fq = o.faultQueues[key];
        if (fq) {
          fq.fdOpen = false;
          // iommufd_fault_fops_release answers every fault still pending
          if (fq.pending.length > 0) autoRespondQueue(c, key, fq, `its fault fd ${e.data.fd} was closed`);
        }
        const vq = o.veventqs[key];
        if (vq) {
          vq.fdOpen = false;
          closeQueueViolations(c, vq);
        }
      }
      teardownIfUnreferenced(c, e.data.ictx, null);
      return;
    }
    case 'IommufdViommuAllocIssued': {
      if (!e.data.outcome.ok) return;
      const { ictx, hwptId, devId } = e.data;
      const id = e.data.outcome.viommuId;
      own(c, ictx);
      const rec: ViommuRecord = { ictx, id, pid: pidOf(c, ictx), violation: null, viommuType: e.data.viommuType, devId, device: deviceOf(model, ictx, devId), parentHwpt: hwptId };
      o.viommus[keyOf(ictx, id)] = rec;
      const why = foreignParent(c, ictx, hwptId);
      if (why !== null) {
        rec.violation = ruleKey(c, nestedParentForeign.id, keyOf(ictx, id));
        c.open(rec.violation, nestedParentForeign.id, nestedParentForeign.describe(`vIOMMU ${id}`, ictx, hwptId, why), null, rec.device);
      }
      return;
    }
    case 'IommufdVdeviceAllocIssued': {
      if (!e.data.outcome.ok) return;
      const { ictx, devId, viommuId } = e.data;
      const id = e.data.outcome.vdeviceId;
      const ctx = own(c, ictx);
      const device = deviceOf(model, ictx, devId);
      const rec: VdeviceRecord = { ictx, id, pid: pidOf(c, ictx), violation: null, viommuId, devId, device, virtId: e.data.virtId, deviceGone: false };
      o.vdevices[keyOf(ictx, id)] = rec;
      const name = `vDEVICE ${id}`;
      const vkey = ruleKey(c, vdeviceForeignGroup.id, keyOf(ictx, id));
      if (device === null) {
        if (ctx.openedOnRecord) {
          rec.violation = vkey;
          c.open(vkey, vdeviceForeignGroup.id, vdeviceForeignGroup.describeUnbound(name, devId, ictx), null, null);
        }
        return;
      }
      const g = hasRecord(c, device) ? groupOf(model, device) : null;
      const group: ModelGroup | undefined = g === null ? undefined : shownGroup(model, g);
      const owner = group?.owner;
      if (group && owner && !(owner.kind === 'ictx' && owner.ictx === ictx)) {
        rec.violation = vkey;
        c.open(vkey, vdeviceForeignGroup.id, vdeviceForeignGroup.describeForeign(name, device, group.id, ictx, ownerText(owner)), group.id, device);
      }
      return;
    }
    case 'IommufdVeventqAllocIssued': {
      if (!e.data.outcome.ok) return;
      const { ictx, viommuId } = e.data;
      const { veventqId, veventqFd } = e.data.outcome;
      const key = keyOf(ictx, veventqId);
      o.veventqs[key] = {
        ictx,
        id: veventqId,
        pid: pidOf(c, ictx),
        violation: null,
        fd: veventqFd,
        fdOpen: true,
        viommuId,
        veventqType: e.data.veventqType,
        depth: e.data.veventqDepth,
        lastSequence: null,
        nextSequence: 0,
        lost: 0,
        violations: [],
      };
      o.eventFds[veventqFd] = key;
      own(c, ictx).eventFds.push(veventqFd);
      return;
    }
    case 'IommufdVeventRead': {
      const key = o.eventFds[e.data.veventqFd];
      const q = key === undefined ? undefined : o.veventqs[key];
      if (!q || key === undefined) return;
      const { sequence, lostEvents } = e.data;
      const expected = q.nextSequence;
      const gap = expected === null ? 0 : (sequence - expected + SEQUENCE_MAX + 1) % (SEQUENCE_MAX + 1);
      if (gap > 0 || lostEvents) {
        q.lost += Math.max(gap, 1);
        const vkey = ruleKey(c, veventLost.id, `${key}|${e.seq}`);
        q.violations.push(vkey);
        c.open(vkey, veventLost.id, veventLost.describe(key, q.lastSequence, sequence, gap, lostEvents), null, null);
      }
      q.lastSequence = sequence;
      q.nextSequence = sequence === SEQUENCE_MAX ? 0 : sequence + 1;
      return;
    }
    case 'IommufdHwQueueAllocIssued': {
      if (!e.data.outcome.ok) return;
      const { ictx } = e.data;
      const id = e.data.outcome.hwQueueId;
      own(c, ictx);
      o.hwQueues[keyOf(ictx, id)] = { ictx, id, pid: pidOf(c, ictx), violation: null, viommuId: e.data.viommuId, hwQueueType: e.data.hwQueueType, index: e.data.index };
      return;
    }
    case 'VfioDeviceAttachPtIssued': {
      if (!e.data.outcome.ok || (isEmpty(o.resets) && isEmpty(o.faultQueues))) return;
      const device = e.data.device;
      const shown = hasRecord(c, device);
      const fence = resettingSibling(c, device);
      if (fence) {
        const vkey = ruleKey(c, attachDuringReset.id, `${device}|${e.seq}`);
        fence.violations.push(vkey);
        c.open(vkey, attachDuringReset.id, attachDuringReset.describe(device, fence.device), shown ? groupOf(model, device) : null, device);
      }
      if (!shown) return;
      // a replace answers the old hwpt's pending faults (iommufd_fault_domain_replace_dev)
      const hwpt = e.data.outcome.ptId;
      const pasid = e.data.pasid;
      const bound = boundFdOf(model, device);
      const old = pasid === undefined ? (bound?.hwpt ?? null) : facts.devices.get(device)!.pasids[String(pasid)];
      if (old !== null && old !== undefined && old !== hwpt) autoRespond(c, bound?.ictx ?? null, device, pasid ?? null, `it was moved from hwpt ${old} to hwpt ${hwpt} (replace)`);
      return;
    }
    case 'VfioDeviceDetachPtIssued': {
      if (!e.data.outcome.ok || isEmpty(o.faultQueues)) return;
      const device = e.data.device;
      if (hasRecord(c, device)) autoRespond(c, boundFdOf(model, device)?.ictx ?? null, device, e.data.pasid ?? null, `it was detached${e.data.pasid !== undefined ? ` from PASID ${e.data.pasid}` : ''}`);
      return;
    }
    case 'VfioDeviceDmaBufCreated':
      if (e.data.outcome.ok) {
        const b = e.data.outcome.dmaBufFd;
        (o.dmaBufs ??= {})[b] = { dmaBufFd: b, device: e.data.device, deviceFd: e.data.deviceFd, regionIndex: e.data.regionIndex, created: refOf(e) };
      }
      return;
    case 'VfioDeviceDmaBufRevoked':
      if (o.dmaBufs) delete o.dmaBufs[e.data.dmaBufFd];
      return;
    case 'VfioDeviceClosed': {
      // the kernel revokes the fd's dma-bufs at its close (the revocation may not be recorded)
      revokeDmaBufs(o, (b) => b.deviceFd === e.data.deviceFd);
      const ictx = model.fds.get(e.data.deviceFd)?.ictx ?? null;
      if (ictx === null) return;
      // the common close: no fault queue, no vDEVICE, its context still open: nothing to follow
      if (isEmpty(o.faultQueues) && isEmpty(o.vdevices) && o.contexts[ictx]?.open !== false) return;
      const device = e.data.device;
      // the close that unbinds the device (the last of its fds bound to the context)
      if (!hasRecord(c, device) || boundFdOf(model, device)?.handle !== e.data.deviceFd) return;
      autoRespond(c, ictx, device, undefined, 'its device fd was closed (unbind)');
      // 6.17: iommufd_device_unbind destroys the device's vDEVICE (its id stays taken until the context closes)
      const destroysVdevice = !isEmpty(o.vdevices) && releaseAtLeast(h.capabilities?.kernelRelease, [6, 17]);
      for (const key in o.vdevices) {
        const v = o.vdevices[key]!;
        if (v.ictx !== ictx || v.device !== device) continue;
        if (destroysVdevice) destroy(c, ictx, v.id);
        else v.deviceGone = true;
      }
      teardownIfUnreferenced(c, ictx, device);
      return;
    }
    case 'VfioDeviceResetIssued':
      // the ioctl returned: any fence of the device is over (its done trace may have been lost)
      endFence(c, e.data.device);
      // a reset revokes the device's dma-bufs (6.19)
      if (e.data.outcome.ok) revokeDmaBufs(o, (b) => b.device === e.data.device);
      return;
    case 'TraceDeviceResetFence':
      if (e.data.phase === 'prepare') {
        if (!o.resets[e.data.device]) o.resets[e.data.device] = { device: e.data.device, since: refOf(e), violations: [] };
      } else endFence(c, e.data.device);
      return;
    case 'TraceCacheTag': {
      const tags = (o.cacheTags[e.data.device] ??= []);
      const { iommu, tagType, domainId, pasid, ref } = e.data;
      const i = tags.findIndex((t) => t.iommu === iommu && t.tagType === tagType && t.domainId === domainId && t.pasid === pasid);
      if (e.data.action === 'assign' && ref > 0) {
        if (i >= 0) tags[i]!.ref = ref;
        else tags.push({ iommu, tagType, domainId, pasid, ref });
      } else if (i >= 0) {
        if (ref > 0) tags[i]!.ref = ref;
        else tags.splice(i, 1);
      }
      if (tags.length === 0) delete o.cacheTags[e.data.device];
      return;
    }
    default:
      return;
  }
};

/** what the objects say about one device: its vDEVICEs and their vIOMMUs, the page table it is nested under, its faults, fence and tags */
export interface DeviceObjectsView {
  readonly vdevices: readonly (VdeviceRecord & { readonly viommu: ViommuRecord | null })[];
  /** the chain from the hwpt the device is attached to up to its IOAS (nested hwpt → vIOMMU → nest parent → IOAS) */
  readonly nestedUnder: readonly { readonly kind: 'hwpt' | 'viommu' | 'ioas'; readonly id: number; readonly record: HwptRecord | ViommuRecord | null }[];
  readonly pendingFaults: readonly (PendingFault & { readonly queue: string })[];
  readonly resetFence: ResetFenceRecord | null;
  readonly cacheTags: readonly CacheTagRecord[];
  /** its open VFIO dma-bufs (6.19) */
  readonly dmaBufs: readonly DmaBufRecord[];
}

/** the objects that concern `device` on host `h` (the query API's device answer) */
export const deviceObjectsOf = (h: HostState, device: string): DeviceObjectsView => {
  const o = objectsOf(h);
  const d = h.devices[device];
  const vdevices = Object.values(o.vdevices)
    .filter((v) => v.device === device)
    .map((v) => ({ ...v, viommu: o.viommus[keyOf(v.ictx, v.viommuId)] ?? null }));
  type Link = { kind: 'hwpt' | 'viommu' | 'ioas'; id: number };
  const nestedUnder: (Link & { record: HwptRecord | ViommuRecord | null })[] = [];
  const ictx = d?.boundIctx ?? null;
  let next: Link | null = d && ictx !== null && d.attachedHwpt !== null ? { kind: 'hwpt', id: d.attachedHwpt } : null;
  // bounded: a chain is at most nested hwpt → vIOMMU → nest parent → IOAS; a record that loops stops here
  for (let i = 0; next !== null && ictx !== null && i < 8; i++) {
    const link: Link = next;
    next = null;
    if (link.kind === 'viommu') {
      const v = o.viommus[keyOf(ictx, link.id)] ?? null;
      nestedUnder.push({ ...link, record: v });
      if (v) next = { kind: 'hwpt', id: v.parentHwpt };
    } else if (link.kind === 'hwpt') {
      const hw = o.hwpts[keyOf(ictx, link.id)] ?? null;
      nestedUnder.push({ ...link, record: hw });
      if (hw) {
        if (hw.parentKind !== null) next = { kind: hw.parentKind, id: hw.parent };
      } else {
        // an auto hwpt (or one allocated before recording began): the fleet knows the IOAS it maps
        const ioas = h.iommufds[ictx]?.objects[link.id]?.ioasId ?? null;
        if (ioas !== null) next = { kind: 'ioas', id: ioas };
      }
    } else nestedUnder.push({ ...link, record: null });
  }
  const pendingFaults = Object.entries(o.faultQueues).flatMap(([queue, q]) => q.pending.filter((f) => f.device === device).map((f) => ({ ...f, queue })));
  return { vdevices, nestedUnder, pendingFaults, resetFence: o.resets[device] ?? null, cacheTags: o.cacheTags[device] ?? [], dmaBufs: Object.values(o.dmaBufs ?? {}).filter((b) => b.device === device) };
};
