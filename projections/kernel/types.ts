import type { ErrnoName, IommuEvent, IommuEventInput } from '../../schemas/index.js';
import type { FdIndex } from './fdIndex.js';
import type { ModelChanges } from './mutate.js';
import type { OperationEvent } from './operations.js';
import type { RuleId, RuleTable } from './rules.js';

/** the protocol variants a history can be replayed against (protocol.md §1, seed-2021-iommu-fd-sketch.txt) */
export const VARIANT_NAMES = ['legacy', 'stage1', 'stage2', 'stage3', 'upstream'] as const;
export type VariantName = (typeof VARIANT_NAMES)[number];
export const isVariantName = (s: unknown): s is VariantName => typeof s === 'string' && (VARIANT_NAMES as readonly string[]).includes(s);

/** an id that names no object: a recorded id the replay has no counterpart for (see replay/idMap.ts) */
export const MISSING_ID = -1;

/**
 * One call a model re-decides, mapped from a recorded operation event (operations.ts). Object ids are
 * already translated to the replay's own ids; handles (fds) are the recorder's names, shared by both sides.
 */
export type Operation =
  /** `via`: drivers/<drv>/bind (default) or drivers_probe (the driver core picks the driver) */
  | { readonly kind: 'bindDriver'; readonly device: string; readonly driver: string; readonly via?: 'bind' | 'drivers_probe' | undefined }
  | { readonly kind: 'unbindDriver'; readonly device: string; readonly driver?: string | undefined }
  /** `cdev`: the node opened, when recorded (noiommu-vfioN from 7.3: ops/noiommu.ts) */
  | { readonly kind: 'openDevice'; readonly device: string; readonly deviceFd: string; readonly cdev?: string | undefined }
  | { readonly kind: 'accessDevice'; readonly device: string; readonly deviceFd: string; readonly access: string }
  | {
      readonly kind: 'bindIommufd';
      readonly device: string;
      readonly deviceFd: string;
      readonly ictx: string;
      readonly badFd?: 'negative' | 'closed' | 'not-iommufd' | undefined;
      readonly args?: IoctlArgs | undefined;
      /** VFIO_DEVICE_BIND_FLAG_TOKEN with a VF token (6.17; ops/vfToken.ts) */
      readonly vfToken?: boolean | undefined;
    }
  | { readonly kind: 'attachPt'; readonly device: string; readonly deviceFd: string; readonly ptId: number; readonly pasid?: number | undefined; readonly args?: IoctlArgs | undefined }
  | { readonly kind: 'detachPt'; readonly device: string; readonly deviceFd: string; readonly pasid?: number | undefined; readonly args?: IoctlArgs | undefined }
  | { readonly kind: 'closeDevice'; readonly device: string; readonly deviceFd: string }
  | { readonly kind: 'openIommufd'; readonly ictx: string }
  | { readonly kind: 'closeIommufd'; readonly ictx: string }
  | { readonly kind: 'allocIoas'; readonly ictx: string }
  /** `dataType`: a user stage-1 table (nested hwpt under the parent hwpt in `ptId`, 6.7); absent or `none`: a paging hwpt */
  | {
      readonly kind: 'allocHwpt';
      readonly ictx: string;
      readonly devId: number;
      readonly ptId: number;
      readonly flags: number;
      readonly dataType?: string | undefined;
      /** `fault_id` with IOMMU_HWPT_FAULT_ID_VALID (6.11): the fault queue the hwpt reports to */
      readonly faultId?: number | undefined;
    }
  | { readonly kind: 'destroy'; readonly ictx: string; readonly objectId: number }
  /** IOMMU_HWPT_SET_DIRTY_TRACKING (6.7) */
  | { readonly kind: 'setDirtyTracking'; readonly ictx: string; readonly hwptId: number; readonly enable: boolean }
  /** IOMMU_GET_HW_INFO (6.6): the device object's IOMMU type and capabilities (projections/kernel/ops/hwptOps.ts) */
  | { readonly kind: 'getHwInfo'; readonly ictx: string; readonly devId: number }
  /** IOMMU_HWPT_INVALIDATE (6.8): `dataType` as the catalogue names enum iommu_hwpt_invalidate_data_type */
  | { readonly kind: 'invalidateHwpt'; readonly ictx: string; readonly hwptId: number; readonly dataType: string; readonly entryLen: number; readonly entryNum: number }
  /** IOMMU_HWPT_GET_DIRTY_BITMAP (6.7) */
  | { readonly kind: 'getDirtyBitmap'; readonly ictx: string; readonly hwptId: number; readonly iova: bigint; readonly length: bigint; readonly pageSize: bigint; readonly noClear?: boolean | undefined }
  /** IOMMU_FAULT_QUEUE_ALLOC (6.11): `faultFd` is the recorder's name for the returned fd (projections/kernel/ops/faultQueue.ts) */
  | { readonly kind: 'allocFaultQueue'; readonly ictx: string; readonly flags: number; readonly faultFd: string }
  /** close of a fault (6.11) or vEVENTQ (6.15) fd */
  | { readonly kind: 'closeEventFd'; readonly ictx: string; readonly fd: string; readonly fdKind: 'fault' | 'veventq' }
  /** IOMMU_VIOMMU_ALLOC (6.13): `viommuType` is enum iommu_viommu_type as the catalogue names it */
  | { readonly kind: 'allocViommu'; readonly ictx: string; readonly devId: number; readonly hwptId: number; readonly viommuType: string; readonly flags: number }
  /** IOMMU_VDEVICE_ALLOC (6.13): `virtId` is the 64-bit guest id as a 0x-prefixed hex string */
  | { readonly kind: 'allocVdevice'; readonly ictx: string; readonly viommuId: number; readonly devId: number; readonly virtId: string }
  | { readonly kind: 'mapIoas'; readonly ictx: string; readonly ioasId: number; readonly iova: bigint; readonly length: bigint }
  | { readonly kind: 'unmapIoas'; readonly ictx: string; readonly ioasId: number; readonly iova: bigint; readonly length: bigint }
  /** IOMMU_IOAS_MAP_FILE (6.13): `fd`, `start` (hex), `flags`, `fileKind` are carried for the recorded event */
  | {
      readonly kind: 'mapFile';
      readonly ictx: string;
      readonly ioasId: number;
      readonly iova: bigint;
      readonly length: bigint;
      readonly fd: string;
      readonly start: string;
      readonly flags?: number | undefined;
      readonly fileKind?: string | undefined;
    }
  /** IOMMU_IOAS_CHANGE_PROCESS (6.13) */
  | { readonly kind: 'changeProcess'; readonly ictx: string }
  /** IOMMU_IOAS_GET_PA (7.3, ops/getPa.ts): a read; `phys` is what the recorder saw returned (the model cannot know it) */
  | { readonly kind: 'getPa'; readonly ictx: string; readonly ioasId: number; readonly iova: bigint; readonly length: bigint; readonly phys?: string | undefined }
  /** IOMMU_VEVENTQ_ALLOC (6.15, ops/veventq.ts): `veventqFd` is the handle the recorder gave the returned fd */
  | { readonly kind: 'allocVeventq'; readonly ictx: string; readonly viommuId: number; readonly veventqType: string; readonly depth: number; readonly flags: number; readonly veventqFd: string }
  /** close of a fault or vEVENTQ fd (ops/veventq.ts) */
  /** IOMMU_HW_QUEUE_ALLOC (6.17, ops/hwQueue.ts) */
  | {
      readonly kind: 'allocHwQueue';
      readonly ictx: string;
      readonly viommuId: number;
      readonly hwQueueType: string;
      readonly index: number;
      readonly iova: bigint;
      readonly length: bigint;
      readonly flags: number;
    }
  /** VFIO_DEVICE_FEATURE_DMA_BUF (6.19) on a device fd: `dmaBufFd` is the recorder's handle for the returned fd */
  | { readonly kind: 'createDmaBuf'; readonly device: string; readonly deviceFd: string; readonly dmaBufFd: string; readonly regionIndex: number; readonly nrRanges: number }
  /** VFIO_DEVICE_RESET / VFIO_DEVICE_PCI_HOT_RESET on a device fd (ops/reset.ts) */
  | { readonly kind: 'resetDevice'; readonly device: string; readonly deviceFd: string; readonly reset: 'device' | 'hot' }
  | { readonly kind: 'openGroup'; readonly group: number; readonly groupFd: string }
  | { readonly kind: 'closeGroup'; readonly group: number; readonly groupFd: string }
  | { readonly kind: 'groupStatus'; readonly group: number; readonly groupFd: string }
  | {
      readonly kind: 'setContainer';
      readonly group: number;
      readonly groupFd: string;
      readonly container: string;
      readonly containerKind: 'legacy' | 'iommufd';
    }
  | { readonly kind: 'unsetContainer'; readonly group: number; readonly groupFd: string }
  /** `newFd` is the handle the recorder gave the returned fd (a synthetic one when the call failed) */
  | { readonly kind: 'getDeviceFd'; readonly group: number; readonly groupFd: string; readonly device: string; readonly newFd: string }
  | { readonly kind: 'openContainer'; readonly container: string }
  | { readonly kind: 'setIommu'; readonly container: string; readonly iommuType: string }
  | { readonly kind: 'closeContainer'; readonly container: string };

export type OperationKind = Operation['kind'];

/** the fields of a call a plan reads (a plan asks for no more of its Operation than it uses) */
export type OperationFields<K extends OperationKind, F extends keyof Extract<Operation, { readonly kind: K }>> = Pick<Extract<Operation, { readonly kind: K }>, F>;

/** a VFIO ioctl argument's header when the caller did not pass the usual values (argsz = struct size, flags = 0) */
export interface IoctlArgs {
  readonly argsz?: number | undefined;
  readonly flags?: number | undefined;
}

/**
 * What a model says the call returned. Success carries the ids the kernel writes back; failure an errno;
 * `crash` is a kernel BUG_ON (the host is dead); `blocks` a call that would sleep until userspace acts (S31).
 */
export type ModelOutcome =
  | ({ readonly ok: true } & Readonly<Record<string, number | string | boolean | true>>)
  | { readonly ok: false; readonly errno: ErrnoName }
  | { readonly ok: false; readonly crash: string }
  | { readonly ok: false; readonly blocks: string };

// ---- state ------------------------------------------------------------------------------------------

export type Domain =
  | { readonly kind: 'default' }
  /** upstream: the group's blocking domain; seed stages: the block_dma domain of one iommu_fd */
  | { readonly kind: 'blocking'; readonly ictx?: string }
  | { readonly kind: 'hwpt'; readonly ictx: string; readonly hwpt: number }
  /** a legacy container's own (type1) domain */
  | { readonly kind: 'container'; readonly container: string };

export type Owner = { readonly kind: 'ictx'; readonly ictx: string } | { readonly kind: 'container'; readonly container: string };

export interface DeviceState {
  readonly name: string;
  readonly group: number | null;
  readonly driver: string | null;
  readonly bridge: boolean;
  readonly requireDirect: boolean;
  readonly maxPasids: number;
  readonly pasidAttach: boolean;
  readonly domain: Domain;
  /** an SR-IOV VF: its PF (/sys/bus/pci/devices/D/physfn), for the VF token (ops/vfToken.ts) */
  readonly physfn?: string;
  /** an SR-IOV PF (has sriov_totalvfs) */
  readonly sriovPf?: boolean;
  /** between pci_dev_reset_iommu_prepare and _done (7.0; ops/reset.ts) */
  readonly resetting?: boolean;
  /**
   * IOMMU_CAP_DIRTY_TRACKING of the device's IOMMU, when known (the snapshot's `hwInfo`, what GET_HW_INFO reports):
   * iommufd_hwpt_paging_alloc refuses IOMMU_HWPT_ALLOC_DIRTY_TRACKING without it; undefined = not known, allowed
   */
  readonly dirtyTracking?: boolean | undefined;
}

export interface GroupState {
  readonly id: number;
  readonly devices: readonly string[];
  /** stage-3 input: partitions whose requester ids are reliably distinguishable */
  readonly subGroups: readonly (readonly string[])[] | null;
  /** iommu_group owner_cnt (upstream); the seed models use it as "devices bound to the owner" */
  readonly ownerCnt: number;
  readonly owner: Owner | null;
  /**
   * owners beside `owner` that a recorded history says claimed the group too: the kernel refuses a second
   * owner (-EPERM), but `evolve` follows what was recorded, so the violation rules can see it (issue 16).
   * Empty on every state the model decides itself.
   */
  readonly extraOwners: readonly Owner[];
  /** igroup->device_list: devices attached through iommufd (order of attach) */
  readonly attached: readonly string[];
  /** PASID attachments: pasid → hwpt (ictx of the owner) */
  readonly pasids: Readonly<Record<string, number>>;
  /** the legacy /dev/vfio/N node's open file, when open */
  readonly groupFd: string | null;
  readonly container: { readonly handle: string; readonly kind: 'legacy' | 'iommufd' } | null;
  /** the snapshot's `type` read "unknown": no default domain yet (ops/probeDefer.ts) */
  readonly noDefaultDomain?: boolean;
}

export interface DeviceFdState {
  readonly handle: string;
  readonly device: string;
  readonly via: 'cdev' | 'group';
  readonly ictx: string | null;
  readonly devId: number | null;
  /** hwpt this device is attached to (in `ictx`), null when not attached */
  readonly hwpt: number | null;
  /**
   * `df->access_granted`: set by a successful BIND_IOMMUFD (vfio_df_ioctl_bind_iommufd) or at a group-path open
   * (vfio_df_group_open), never cleared while the fd is open; ioctl/mmap/read/write of the fd need it (S1 step 3)
   */
  readonly accessGranted: boolean;
  /** opened through /dev/vfio/devices/noiommu-vfioN (7.3): no group, no DMA ownership */
  readonly noiommu?: true;
}

export type IommufdObject =
  | { readonly kind: 'device'; readonly device: string; readonly deviceFd: string }
  /** `areas`: the IOVA ranges mapped, [first, last] inclusive (upstream tracks them; absent = none) */
  | {
      readonly kind: 'ioas';
      readonly compat: boolean;
      readonly areas?: readonly (readonly [bigint, bigint])[];
      /** first IOVAs (decimal) of the areas mapped from a file (IOMMU_IOAS_MAP_FILE, IOPT_ADDRESS_FILE) */
      readonly fileAreas?: readonly string[];
      /**
       * successful IOMMU_IOAS_MAP calls less successful IOMMU_IOAS_UNMAP calls, never below 0 (absent = 0): what the
       * fleet projection shows as the IOAS's mappings (an UNMAP may take several areas, `areas` counts those)
       */
      readonly mappings?: number;
    }
  /**
   * `flags`: the IOMMU_HWPT_ALLOC flags it was made with (absent = 0); `parent`: a nested hwpt's parent hwpt
   * (6.7), which it holds a reference on (IOMMU_DESTROY of the parent is -EBUSY while it lives)
   */
  | {
      readonly kind: 'hwpt';
      readonly ioas: number;
      readonly auto: boolean;
      readonly flags?: number;
      readonly parent?: number;
      readonly dirtyTracking?: boolean;
      /** a nested hwpt's user data type (`vtd-s1`, ...): its driver's IOMMU_HWPT_INVALIDATE takes only the matching type */
      readonly dataType?: string;
      /** the fault queue (IOMMU_HWPT_FAULT_ID_VALID, 6.11) it holds a reference on */
      readonly fault?: number;
    }
  /** a fault queue (6.11): its fd holds a reference on it and on the ctx until closed (`fdOpen`) */
  | { readonly kind: 'fault'; readonly fd: string; readonly fdOpen: boolean }
  /** a vIOMMU (6.13) on its nesting-parent hwpt (a reference: the hwpt is -EBUSY to IOMMU_DESTROY) */
  | { readonly kind: 'viommu'; readonly hwpt: number; readonly viommuType: string }
  /**
   * a vDEVICE (6.13): holds its vIOMMU; `devId` the device object it stands for. From 6.17 it is destroyed
   * with its device and its id stays taken until the ctx closes (`destroyed`: a lookup finds nothing)
   */
  | { readonly kind: 'vdevice'; readonly viommu: number; readonly devId: number; readonly virtId: string; readonly destroyed?: boolean }
  /** a vEVENTQ (6.15): holds its vIOMMU; its fd (while `fdOpen`) holds the object and the ctx (ops/veventq.ts) */
  | { readonly kind: 'veventq'; readonly viommu: number; readonly veventqType: string; readonly fd: string; readonly fdOpen: boolean }
  /** a HW queue (6.17): holds its vIOMMU (ops/hwQueue.ts) */
  | { readonly kind: 'hwQueue'; readonly viommu: number; readonly hwQueueType: string; readonly index: number };

export interface IctxState {
  readonly handle: string;
  readonly open: boolean;
  readonly objects: Map<number, IommufdObject>;
}

export interface ContainerState {
  readonly handle: string;
  readonly iommuType: string | null;
  readonly open: boolean;
}

export interface Capabilities {
  /** null: not observed; the models then assume isolated MSI (the common case on hosts with an IOMMU) */
  readonly interruptRemapping: boolean | null;
  readonly allowUnsafeInterrupts: boolean;
  readonly cacheCoherent: boolean;
  readonly managedDmaDrivers: readonly string[];
  /** `uname -r` of the host (topology snapshot), for per-release answers (releases.ts); absent: the newest kernel */
  readonly kernelRelease?: string | null;
}

/**
 * A host as a model sees it. The fold owns the state: `evolve` updates the maps and records in place through
 * the model's writers (mutate.ts) and returns the same object (replay runs at hundreds of thousands of
 * operations per second); `decide` only reads.
 */
export interface ModelState {
  caps: Capabilities;
  readonly devices: Map<string, DeviceState>;
  readonly groups: Map<number, GroupState>;
  readonly fds: Map<string, DeviceFdState>;
  /** `fds` by device and by hwpt (fdIndex.ts), kept by evolve */
  readonly fdIndex: FdIndex;
  readonly ictxs: Map<string, IctxState>;
  readonly groupFds: Map<string, number>;
  readonly containers: Map<string, ContainerState>;
  crashed: { readonly rule: string; readonly message: string } | null;
  /** counts the changes applied: a decision is folded as decided only into the state it was decided on */
  revision: number;
}

/**
 * a transition's state change, not yet applied: applied in place by the model's writers (mutate.ts), which tell
 * `changes` what they change. Built by `decide` on the state it reads, applied to that same state.
 */
export type Apply = (changes: ModelChanges) => void;

/** an outcome a transition is planned for: the variant's own decision, or one read from a recorded history */
export type PlannedOutcome = ModelOutcome | { readonly ok: true; readonly [id: string]: unknown } | { readonly ok: false; readonly errno: ErrnoName };

/**
 * A variant's transition for one operation: the outcome, the rule that decided it, and its state change to
 * apply (null: none). What it frees and moves is told to the `ModelChanges` it is applied with (mutate.ts).
 */
export interface Transition {
  readonly outcome: ModelOutcome;
  readonly rule: RuleId;
  readonly apply: Apply | null;
}

/**
 * A decision: the catalogue's own recorded event(s) for the call (the operation with its outcome; none
 * when the call never returns: a kernel crash, or a call that blocks), with the outcome and rule.
 */
export interface Decision extends Transition {
  readonly events: readonly DecidedEvent[];
}

/** an operation event of the catalogue as a decider emits it: type and data, without the recorder's envelope */
export type DecidedEvent = { readonly [T in OperationEventType]: { readonly type: T; readonly data: Extract<IommuEventInput, { type: T }>['data'] } }[OperationEventType];
/** the operation events of the catalogue (operations.ts: not signals, observations or calls not yet modelled) */
export type OperationEventType = OperationEvent['type'];
/** what a variant's `evolve` folds: an operation event (decided or recorded) or a topology observation */
export type ModelEvent = DecidedEvent | ObservationBody;
/** an observation without the recorder's envelope */
export type ObservationBody = { readonly [T in Observation['type']]: Pick<Extract<Observation, { type: T }>, 'type' | 'data'> }[Observation['type']];

/** non-operation events a model folds into its topology (snapshot, hotplug); traces are observations only */
export type Observation = Extract<IommuEvent, { type: 'TopologySnapshotTaken' | 'DeviceAddedToGroup' | 'DeviceRemovedFromGroup' | 'TraceDeviceResetFence' }>;

/**
 * G3: a protocol model is a decider. `decide` returns the recorded event(s) the call would give on this
 * variant; `evolve` is the variant's transition for a recorded event (its own decision's, or one read from
 * a history: the variant's transition applies when it decides the same outcome, otherwise the state stays,
 * as the variant cannot follow a call it would have answered differently) and for a topology observation;
 * `initialState(topology)` is the host as its first snapshot shows it. `rules` explains every rule id a
 * decision can name (rules.ts).
 */
export interface ProtocolDecider {
  /** a built-in variant's name, or a stage's (`upstream@6.1`, a stage file's `name`: replay/stages/) */
  readonly variant: string;
  readonly description: string;
  readonly rules: RuleTable;
  readonly initialState: (topology?: ObservationBody) => ModelState;
  readonly decide: (operation: Operation, state: ModelState) => Decision;
  /** in place; `changes` is told what changes (the fleet projection re-derives the read-model records it touches) */
  readonly evolve: (state: ModelState, event: ModelEvent, changes?: ModelChanges) => ModelState;
  /**
   * present on deciders that answer per kernel release (upstream): `fixed` is the release a stage judges
   * every host as (`upstream@6.1`), null to judge each host by the release its snapshot records
   */
  readonly release?: { readonly fixed: string | null };
}
