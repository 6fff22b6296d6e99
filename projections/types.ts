/**
 * The state the fleet projection folds events into: what the kernel holds per IOMMU group, device and
 * iommufd context (protocol.md §1.0 and §4), per host.
 *
 * The whole state is plain JSON data: records keyed by name, arrays, strings, numbers, booleans and
 * `null` (never `undefined`, never bigint, never Map/Set). So a snapshot is `JSON.stringify(state)`,
 * the HTTP API can return a slice as-is, and a JSON round trip gives a deep-equal state. The one exception
 * is `HostState.kernel` (the host's upstream kernel model), which snapshots.ts converts.
 */

import type { IommuEvent } from '../schemas/index.js';
import type { HostObjectsState } from './iommufdObjects.js';
import type { ModelState } from './kernel/types.js';

/** where an event sits: enough to cite it and to order it on its host (seq) and in the store (position) */
export interface EventRef {
  readonly eventId: string;
  /** the host's envelope sequence number */
  readonly seq: number;
  /** wall-clock ns since the epoch, decimal string */
  readonly timeNs: string;
  /** the store's global position (decimal string), when the event came from a store */
  readonly position?: string;
}

/** who holds user DMA ownership of a group (`group->owner`): an iommufd context or a legacy VFIO container */
export interface UserOwner {
  readonly kind: 'iommufd' | 'legacy-container';
  /** the recorder's file handle of the iommufd context or the /dev/vfio/vfio container */
  readonly handle: string;
}

/**
 * The domain currently set on a group (`group->domain`): every member device is translated by it,
 * attached or not (iommu.c:`__iommu_group_set_domain_internal`). `container` is the legacy type1
 * backend's own domain after `VFIO_SET_IOMMU`. Domain objects are immutable: a change assigns a new one.
 */
export interface DomainRef {
  readonly kind: 'default' | 'blocking' | 'hwpt' | 'container';
  /** the hwpt id, for kind 'hwpt' */
  readonly hwptId?: number;
  /** the iommufd context the hwpt belongs to, for kind 'hwpt' */
  readonly ictx?: string;
  /** the legacy container handle, for kind 'container' */
  readonly container?: string;
}

export interface GroupState {
  readonly group: number;
  /** member devices (sysfs `/sys/kernel/iommu_groups/N/devices`), in the order they were seen */
  members: string[];
  /** `group->owner`; null in the kernel states K0/Kn */
  userOwner: UserOwner | null;
  /**
   * false while only collector signals (sysfs, uevents, traces) describe the host: no signal shows a DMA
   * ownership claim or the domain kind, so `userOwner` null and the default `domain` then mean "unknown",
   * not "no owner"; true once a VFIO or iommufd call of the host is recorded (issue 17, assert 2)
   */
  ownerKnown: boolean;
  /**
   * owners recorded beyond `userOwner` (a second iommufd, or a container and an iommufd). Impossible
   * upstream (claim → -EPERM): seen only when events were lost or on a non-upstream kernel.
   */
  extraOwners: UserOwner[];
  /** true while more than one owner is recorded */
  twoOwners: boolean;
  /** user `owner_cnt`: iommufd binds, or 1 for a legacy container claim */
  userOwnerCount: number;
  /** members bound to a kernel DMA-API driver (not `driver_managed_dma`): `owner_cnt` with owner NULL */
  kernelDmaDrivers: number;
  domain: DomainRef;
  /** `igroup->device_list`: devices attached (by themselves, or carried by a replace) to the group's hwpt */
  attachedDevices: string[];
  /** group-wide PASID attachments (S39): pasid → hwpt id */
  pasids: Record<string, number>;
  /** the legacy `/dev/vfio/N` node is open */
  legacyGroupOpen: boolean;
  /** the open legacy group fd, if any */
  legacyGroupFd: string | null;
  /** what `VFIO_GROUP_SET_CONTAINER` set on the group fd */
  container: { readonly handle: string; readonly kind: 'legacy' | 'iommufd' } | null;
  /** events of this host were lost or reordered while this group mattered: the state may be wrong */
  uncertain: boolean;
  uncertainReason: string | null;
  /** open violations concerning this group or one of its members (keeps the re-check cheap) */
  openViolations: number;
}

export interface DeviceState {
  readonly device: string;
  /** null when the device has no iommu_group (no IOMMU) */
  group: number | null;
  driver: string | null;
  /** the bound driver counts toward `owner_cnt` (a kernel DMA-API driver) */
  kernelDma: boolean;
  /** open VFIO device fds (cdev or legacy group path) */
  openFds: string[];
  /** the cdev fd bound to an iommufd, and what it is bound to */
  boundFd: string | null;
  boundIctx: string | null;
  devId: number | null;
  /** the hwpt this device is in `igroup->device_list` for (kernel truth, moved by a sibling's replace) */
  attachedHwpt: number | null;
  /** the pt_id this device itself last passed to ATTACH (an IOAS or a hwpt) */
  attachedPt: number | null;
  /** the hwpt this device's own ATTACH resolved to; differs from `attachedHwpt` after a sibling's replace */
  selfAttachedHwpt: number | null;
  /** PASID attachments this device made: pasid → hwpt id */
  pasids: Record<string, number>;
  /** `df->access_granted` on one of its fds (bound cdev, or a legacy group-path fd) */
  accessGranted: boolean;
  /** the domain the IOMMU translates this device's DMA with: always its group's domain */
  translatedBy: DomainRef | null;
  /** tenant and VM of the process holding the device (from the envelope actor) */
  tenant: string | null;
  vm: string | null;
}

/**
 * The projection's own facts about a group (not kernel state): the one place the fold keeps them. The group
 * record (`GroupState`) shows them beside what it derives from the kernel model (readModel.ts).
 */
export interface GroupFacts {
  ownerKnown: boolean;
  uncertain: boolean;
  uncertainReason: string | null;
  openViolations: number;
  /** its record is in the host's pending records (readModel.ts `markGroup`): marked once until derived, not looked up per mark */
  pending: boolean;
}

/**
 * The projection's own facts about a device: who acted (tenant/vm), and what it attached itself, which the kernel
 * does not keep per device: the pt_id it passed to ATTACH and the hwpt it attached itself (a sibling's replace
 * moves the device, not what it asked for: translated-by-unattached-domain reads them), null once not attached;
 * the PASIDs it attached (the kernel and the model keep them per group: S39), empty once unbound.
 */
export interface DeviceFacts {
  tenant: string | null;
  vm: string | null;
  attachedPt: number | null;
  selfAttachedHwpt: number | null;
  pasids: Record<string, number>;
  /** its record is in the host's pending records (readModel.ts `markDevice`), as `GroupFacts.pending` */
  pending: boolean;
}

/**
 * A live host's facts (readModel.ts `factsOf`), an entry per group and device record the read model shows (one
 * comes and goes with the record): what the violation rules and the fold read beside the kernel model.
 */
export interface HostFacts {
  readonly groups: Map<number, GroupFacts>;
  readonly devices: Map<string, DeviceFacts>;
}

export interface IommufdObjectState {
  readonly id: number;
  readonly kind: 'ioas' | 'hwpt' | 'device';
  /** hwpt: created by auto-domain search at ATTACH(ioas) and freed with its last user */
  readonly auto: boolean;
  /** hwpt: the IOAS (or parent pt) it maps */
  readonly ioasId: number | null;
  /** device objects: the device; hwpt from HWPT_ALLOC: the dev_id's device */
  readonly device: string | null;
  /** hwpt: devices attached to it, across groups */
  devices: string[];
  /** hwpt: groups whose domain it is */
  groups: number[];
  /** ioas: successful IOAS_MAP minus IOAS_UNMAP calls */
  mappings: number;
}

export interface IommufdContextState {
  readonly handle: string;
  /** the /dev/iommu fd is still open; a closed ctx lives on while devices are bound (S9) */
  open: boolean;
  objects: Record<string, IommufdObjectState>;
  /** devices bound to this context */
  devices: string[];
  /** groups this context owns */
  groups: number[];
}

export interface ContainerState {
  readonly handle: string;
  open: boolean;
  iommuType: string | null;
  groups: number[];
}

export interface DeviceFdState {
  readonly fd: string;
  readonly device: string;
  /** cdev = /dev/vfio/devices/vfioN; group = VFIO_GROUP_GET_DEVICE_FD */
  readonly via: 'cdev' | 'group';
  /** `df->access_granted` */
  accessGranted: boolean;
  /** the iommufd this fd bound the device to (cdev bind, or an iommufd-backed legacy group open) */
  boundIctx: string | null;
}

/** the host's recorded capabilities (TopologySnapshotTaken.capabilities) */
export interface HostCapabilitiesState {
  readonly iommu: boolean;
  /** null: not observed (sysfs does not show MSI isolation) */
  readonly interruptRemapping: boolean | null;
  readonly allowUnsafeInterrupts: boolean;
  readonly cacheCoherent: boolean;
  readonly kernelRelease: string | null;
  /** a host override of the managed-DMA driver set */
  readonly managedDmaDrivers: readonly string[] | null;
}

/** per-device topology facts kept from the last snapshot */
export interface DeviceTopologyState {
  readonly headerType: 'normal' | 'bridge' | 'cardbus' | null;
  readonly requireDirect: boolean;
  readonly maxPasids: number;
  readonly pasidAttach: boolean;
}

export interface HostState {
  readonly host: string;
  /** the highest envelope seq recorded (applied or held) */
  lastSeq: number | null;
  /**
   * the seq of the host's reorder frontier: every event up to it that arrived is applied; null before the
   * first event is applied. An event beyond `appliedSeq + 1` is held (see `held`) until the missing ones come.
   */
  appliedSeq: number | null;
  /**
   * the reorder buffer: events recorded beyond a missing seq, not yet applied, ascending by seq (a repeated
   * seq after its twin). The host's state is the state before the gap while they wait; they are applied in
   * seq order when the gap fills, when the projection's hold bound is passed, or at a topology snapshot.
   */
  held: HeldEvent[];
  lastTimeNs: string | null;
  eventCount: number;
  /** set at a sequence gap or reordering, cleared by the next topology snapshot */
  uncertain: { readonly since: EventRef; readonly reason: string } | null;
  /** a VFIO or iommufd call of this host was recorded (groups' `ownerKnown`); absent in older states: true */
  ownershipRecorded?: boolean;
  capabilities: HostCapabilitiesState | null;
  topology: Record<string, DeviceTopologyState>;
  groups: Record<string, GroupState>;
  devices: Record<string, DeviceState>;
  iommufds: Record<string, IommufdContextState>;
  containers: Record<string, ContainerState>;
  deviceFds: Record<string, DeviceFdState>;
  /** open legacy group fds → group number */
  groupFds: Record<string, number>;
  /** open violations on this host (keeps the re-checks cheap) */
  openViolations: number;
  /** keys of the open sequence-gap / out-of-order violations, closed by the next topology snapshot */
  sequenceViolations: string[];
  /** the host's sequence facts as its recorded events show them (the one source for `/sequence`) */
  sequence: HostSequenceState;
  /** where the host's clock went backwards (what time travel by wall clock must know) */
  clock: HostClockState;
  /**
   * The host as the upstream kernel model holds it (projections/kernel), folded by the model's own transitions
   * over the host's observations and operations, in the order the projection applies them (issue 16): present
   * on every host the projection creates. null: not known (the state was restored from a snapshot written
   * without it, format 1; a refold from the store rebuilds it). The one part of the state that is not JSON
   * data: snapshots write it through projections/kernel/stateJson.ts.
   */
  kernel?: ModelState | null;
  /**
   * The iommufd objects added after 6.6 (vIOMMU, vDEVICE, nested hwpts, fault queues and their faults, vEVENTQs,
   * HW queues, dirty tracking, reset fences, cache tags), as projections/iommufdObjects.ts follows them (issue
   * 19). Absent on a host none of those events reached, and in states written before it was followed: read it
   * through `objectsOf`, which gives the empty record then.
   */
  objects?: HostObjectsState;
}

/** an event in a host's reorder buffer, with the store position it was recorded at (decimal string) */
export interface HeldEvent {
  readonly event: IommuEvent;
  readonly position: string | null;
}

/** a range of missing sequence numbers, and the sequence-gap violation it belongs to */
export interface SequenceGap {
  readonly from: number;
  readonly to: number;
  readonly key: string;
}

export interface HostSequenceState {
  /** the lowest seq recorded (null before the first event) */
  lowestSeq: number | null;
  /** missing ranges (inclusive), ascending; a late event that fills one shrinks or removes it */
  gaps: SequenceGap[];
  /** oldest gaps dropped by the bound (their seqs are reported neither missing nor found) */
  gapsDropped: number;
  gapsOpened: number;
  /** events applied after a higher seq of their host: late fills and repeats */
  outOfOrder: number;
}

/** an event whose time is earlier than the time of the event recorded just before it on its host */
export interface ClockStep {
  readonly event: EventRef;
  /** the time of the host's previous event (ns, decimal string) */
  readonly previousTimeNs: string;
}

/**
 * A host's clock as its events show it: between two steps back, the times of its events never decrease.
 * Enough to say, for any T, which events are in the state at T (projections' `AsOf`).
 */
export interface HostClockState {
  /** the events whose time went backwards, oldest first (the newest ones, bounded) */
  wentBack: ClockStep[];
  /** older entries of `wentBack` dropped by the bound */
  wentBackDropped: number;
}

export type Severity = 'critical' | 'warning' | 'info';

export interface Violation {
  /** stable identity of this occurrence: rule, host and subject (group/device/fd/seq) */
  readonly key: string;
  readonly ruleId: string;
  readonly severity: Severity;
  readonly host: string;
  readonly group?: number;
  readonly device?: string;
  readonly message: string;
  /** the event that made the condition true */
  readonly opened: EventRef;
  /** the event that made it false; absent while open */
  closed?: EventRef;
  /** how long it lasted, ns (decimal string: closed.timeNs − opened.timeNs, 0 if the clock went back); set at close */
  durationNs?: string;
  /** ids of the events that support it (the opening event first) */
  evidence: string[];
}

export interface ViolationLog {
  /** open violations by key */
  open: Record<string, Violation>;
  /** closed violations, oldest first (bounded by the projection's `closedViolationLimit`) */
  closed: Violation[];
  /** closed violations dropped from the front of `closed` by the bound */
  closedDropped: number;
}

export interface FleetState {
  /** format of this state (snapshots carry it) */
  readonly formatVersion: 1;
  hosts: Record<string, HostState>;
  violations: ViolationLog;
  eventCount: number;
  /** the store position of the last event applied that had one (decimal string) */
  lastPosition: string | null;
}
