import { DEFAULT_MANAGED_DMA_DRIVERS, LEGACY_ALLOWED_DRIVERS, isVfioDriverName } from '../../schemas/index.js';
import type {
  Apply,
  Capabilities,
  Transition,
  DeviceFdState,
  DeviceState,
  Domain,
  GroupState,
  IctxState,
  IommufdObject,
  ModelOutcome,
  ModelState,
  ObservationBody,
  Operation,
  Owner,
  PlannedOutcome,
} from './types.js';
import { createFdIndex, fdsOfDevice, groupPathFdCount, NO_PASIDS } from './fdIndex.js';
import { emptyMap } from './sharedEmptyMap.js';
import { ALL_RULES, type RefusalRuleId, type RuleId } from './rules.js';
import { deviceWith, groupWith, openedFd } from './records.js';
import { observeResetFence } from './ops/reset.js';
import {
  changeContainer,
  changeGroup,
  putContainer,
  putDevice,
  putFd,
  putGroup,
  putObject,
  removeContainer,
  removeDevice,
  removeObject,
  sameDomain,
  sameList,
  sameRecord,
  setCaps,
  setDeviceDomain,
  setDeviceDriver,
  setGroupFd,
  setGroupOwnerCount,
  setIctxOpen,
  type ModelChanges,
} from './mutate.js';

/**
 * The parts every variant shares: the state, topology observations, lookups, the plans of the calls whose
 * outcome does not depend on the protocol (a closed fd is -EBADF everywhere). A transition writes the state
 * in place through the model's writers (mutate.ts); each variant's `evolve` is built in decider.ts.
 */

export const initialState = (): ModelState => ({
  caps: { interruptRemapping: true, allowUnsafeInterrupts: false, cacheCoherent: true, managedDmaDrivers: DEFAULT_MANAGED_DMA_DRIVERS },
  devices: new Map(),
  groups: new Map(),
  // empty on most hosts: the shared empty Map until the first entry (sharedEmptyMap.ts)
  fds: emptyMap(),
  fdIndex: createFdIndex(),
  ictxs: emptyMap(),
  groupFds: emptyMap(),
  containers: emptyMap(),
  crashed: null,
  revision: 0,
});

// ---- outcomes ---------------------------------------------------------------------------------------

// shared, never mutated: most decisions return no ids (replay allocates less per operation)
const OK_OUTCOME: ModelOutcome = Object.freeze({ ok: true });

/** a success returning `ids` (none: the shared plain success) */
export const succeeded = (ids?: Record<string, number | string | boolean>): ModelOutcome => (ids === undefined ? OK_OUTCOME : ({ ok: true, ...ids } as ModelOutcome));

export const ok = (rule: RuleId, apply: Apply | null = null, ids?: Record<string, number | string | boolean>): Transition => ({
  outcome: succeeded(ids),
  rule,
  apply,
});

// one frozen outcome per refusal rule: the errno is the rule's, read from its entry (rules.ts)
const REFUSED = new Map<string, ModelOutcome>();
const refusedBy = (rule: RefusalRuleId): ModelOutcome => {
  let outcome = REFUSED.get(rule);
  if (!outcome) REFUSED.set(rule, (outcome = Object.freeze({ ok: false, errno: ALL_RULES[rule].errno })));
  return outcome;
};

/** a success by `rule`, its state change planned from its outcome as a recorded success's is (the variant's `plan`), when applied */
export const okPlanned = (rule: RuleId, ids: Record<string, number | string | boolean> | undefined, plan: (outcome: ModelOutcome, changes: ModelChanges) => void): Transition => {
  const outcome = succeeded(ids);
  return { outcome, rule, apply: (changes) => plan(outcome, changes) };
};

/** a refusal: the call fails with the errno of `rule`'s entry and changes nothing */
export const fail = (rule: RefusalRuleId): Transition => ({ outcome: refusedBy(rule), rule, apply: null });
/** a refusal that still changed state on the way (IOMMU_IOAS_UNMAP stopping at an area crossing the range) */
export const failWith = (rule: RefusalRuleId, apply: Apply | null): Transition => ({ outcome: refusedBy(rule), rule, apply });
/** a refusal decided part-way, or the value the rest of the decision needs */
export type Planned<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly decision: Transition };
export const refuse = (rule: RefusalRuleId): { ok: false; decision: Transition } => ({ ok: false, decision: fail(rule) });
/** a kernel BUG_ON: the call never returns (no recorded event); decider.ts marks the host crashed */
export const crash = (rule: RuleId, message: string): Transition => ({ outcome: { ok: false, crash: message }, rule, apply: null });
export const blocks = (rule: RuleId, message: string): Transition => ({ outcome: { ok: false, blocks: message }, rule, apply: null });


// ---- lookups ----------------------------------------------------------------------------------------

/**
 * `driver_managed_dma`: a bound driver that never counts toward the group's owner_cnt (so never makes it
 * not viable) on a host with these capabilities. A predicate on capabilities, so that diagnose asks the
 * model's rule without building a model state.
 */
export const isManagedDmaDriver = (caps: Pick<Capabilities, 'managedDmaDrivers'>, driver: string): boolean => caps.managedDmaDrivers.includes(driver);
export const isManagedDma = (state: ModelState, driver: string): boolean => isManagedDmaDriver(state.caps, driver);

/** pre-v5.19 vfio_dev_viable: driver-less, a vfio driver, vfio_driver_allowed[] (pci-stub), or a bridge; only the driver and the header matter */
export const isLegacyViable = (device: Pick<DeviceState, 'driver' | 'bridge'>): boolean =>
  device.driver === null || isVfioDriverName(device.driver) || LEGACY_ALLOWED_DRIVERS.includes(device.driver) || device.bridge;

export const groupOfDevice = (state: ModelState, device: string): GroupState | undefined => {
  const d = state.devices.get(device);
  return d && d.group !== null ? state.groups.get(d.group) : undefined;
};

export const groupDevices = (state: ModelState, group: GroupState): DeviceState[] => {
  const out: DeviceState[] = [];
  for (const name of group.devices) {
    const d = state.devices.get(name);
    if (d) out.push(d);
  }
  return out;
};

export { sameDomain };

/** the default domain: one shared frozen record (a device's domain is replaced, never written in place: mutate.ts) */
export const DEFAULT_DOMAIN: Domain = Object.freeze({ kind: 'default' });

/** the group's current domain: upstream keeps it group-wide, so the first device's domain is the group's */
export const groupDomain = (state: ModelState, group: GroupState): Domain =>
  state.devices.get(group.devices[0] ?? '')?.domain ?? DEFAULT_DOMAIN;

/** every device of `devices` whose domain is another moves to `domain`: each is one attach_device_to_domain trace (§2.1) */
export const setDomain = (state: ModelState, devices: readonly string[], domain: Domain, changes: ModelChanges): void => {
  for (let i = 0; i < devices.length; i++) {
    const d = state.devices.get(devices[i]!);
    if (d && !sameDomain(d.domain, domain)) setDeviceDomain(state, changes, d, domain);
  }
};

export const liveIctx = (state: ModelState, handle: string): IctxState | undefined => {
  const ictx = state.ictxs.get(handle);
  return ictx && ictx.open ? ictx : undefined;
};

/** xa_alloc with XA_FLAGS_ALLOC1: the lowest free id ≥ 1; `taken` are ids this decision already allocated */
export const nextObjectId = (ictx: IctxState, taken: readonly number[] = []): number => {
  let id = 1;
  while (ictx.objects.has(id) || taken.includes(id)) id += 1;
  return id;
};

export const deviceFd = (state: ModelState, handle: string): DeviceFdState | undefined => state.fds.get(handle);

/** fds currently open on a device (cdev or legacy group path) */
export const openFdsOf = (state: ModelState, device: string): DeviceFdState[] => [...fdsOfDevice(state, device)];

export const objectOf = (state: ModelState, ictx: string, id: number): IommufdObject | undefined => state.ictxs.get(ictx)?.objects.get(id);

// ---- shared decisions -------------------------------------------------------------------------------

/** an id the outcome carries (the recorder's, or the variant's own decision's) */
export const idIn = (outcome: PlannedOutcome, key: string): number | undefined => {
  const v = (outcome as Readonly<Record<string, unknown>>)[key];
  return typeof v === 'number' ? v : undefined;
};

/** the ctx opened */
export const planOpenIommufd = (state: ModelState, ictx: string, changes: ModelChanges): void => setIctxOpen(state, changes, ictx, true);
export const decideOpenIommufd = (state: ModelState, ictx: string): Transition => ok('common.ictx.opened', (changes) => planOpenIommufd(state, ictx, changes));

/**
 * An object an alloc made (or a recorded alloc made, in a ctx opened before recording began: the ctx is
 * followed too), at the id the outcome names under `idKey`, else the lowest free one
 */
export const planNewObject = (state: ModelState, handle: string, outcome: PlannedOutcome, idKey: string, object: IommufdObject, changes: ModelChanges): void => {
  if (!outcome.ok) return;
  const ictx = state.ictxs.get(handle);
  const id = idIn(outcome, idKey) ?? (ictx ? nextObjectId(ictx) : 1);
  if (!ictx) planOpenIommufd(state, handle, changes);
  putObject(state, changes, handle, id, object);
};

const NEW_IOAS: IommufdObject = Object.freeze({ kind: 'ioas', compat: false });

/** IOAS_ALLOC as made (or recorded): an IOAS at the outcome's id */
export const planAllocIoas = (state: ModelState, handle: string, outcome: PlannedOutcome, changes: ModelChanges): void =>
  planNewObject(state, handle, outcome, 'ioasId', NEW_IOAS, changes);

/** IOMMU_DESTROY as made (or recorded): the object goes */
export const planDestroy = (state: ModelState, op: { readonly ictx: string; readonly objectId: number }, outcome: PlannedOutcome, changes: ModelChanges): void => {
  if (outcome.ok && state.ictxs.get(op.ictx)?.objects.has(op.objectId)) removeObject(state, changes, op.ictx, op.objectId);
};

export const decideAllocIoas = (state: ModelState, handle: string): Transition => {
  const ictx = liveIctx(state, handle);
  if (!ictx) return fail('common.fd.ebadf');
  return okPlanned('common.ioas.alloc', { ioasId: nextObjectId(ictx) }, (o, changes) => planAllocIoas(state, handle, o, changes));
};

export const decideMapIoas = (state: ModelState, handle: string, ioasId: number): Transition => {
  const ictx = liveIctx(state, handle);
  if (!ictx) return fail('common.fd.ebadf');
  const obj = ictx.objects.get(ioasId);
  if (!obj) return fail('common.object.enoent');
  if (obj.kind !== 'ioas') return fail('common.object.wrong-type');
  return ok('common.ioas.map');
};

/** /dev/vfio/vfio opened (or recorded opened): a container with no IOMMU backend yet */
export const planOpenContainer = (state: ModelState, handle: string, changes: ModelChanges): void => putContainer(state, changes, { handle, iommuType: null, open: true });
export const decideOpenContainer = (state: ModelState, handle: string): Transition => ok('common.container.opened', (changes) => planOpenContainer(state, handle, changes));

/** the container closed (or recorded closed): groups still set keep it alive, closed */
export const planCloseContainer = (state: ModelState, handle: string, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const c = state.containers.get(handle);
  if (!outcome.ok || !c) return;
  let used = false;
  for (const g of state.groups.values()) if (g.container?.handle === handle) used = true;
  if (used) changeContainer(state, changes, c, { open: false });
  else removeContainer(state, changes, handle);
};

export const decideCloseContainer = (state: ModelState, handle: string): Transition => {
  const c = state.containers.get(handle);
  if (!c || !c.open) return fail('common.fd.ebadf');
  return okPlanned('common.container.closed', undefined, (o, changes) => planCloseContainer(state, handle, o, changes));
};

/**
 * A driver unbound (or recorded unbound, e.g. a vfio driver the model would still have waiting on an open
 * fd): the driver goes and, for a DMA-API driver in a group no user owns, `dma_cleanup` drops owner_cnt
 */
export const planUnbindDriver = (state: ModelState, device: string, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const d = state.devices.get(device);
  if (!outcome.ok || !d || d.driver === null) return;
  const driver = d.driver;
  setDeviceDriver(state, changes, d, null);
  const g = d.group === null ? undefined : state.groups.get(d.group);
  if (!g || isManagedDma(state, driver) || g.owner !== null || g.ownerCnt === 0) return;
  setGroupOwnerCount(state, changes, g, g.ownerCnt - 1);
};

/**
 * Driver unbind, shared: -ENODEV unless bound (to that driver); a vfio driver with open fds blocks (S31);
 * otherwise planUnbindDriver (upstream meaning of owner_cnt; the older models ignore it for kernel drivers).
 */
export const decideUnbindDriver = (state: ModelState, device: string, driver: string | undefined): Transition => {
  const d = state.devices.get(device);
  if (!d || d.driver === null || (driver !== undefined && d.driver !== driver)) return fail('common.driver.no-device');
  if (isVfioDriverName(d.driver) && openFdsOf(state, device).length > 0) {
    return blocks('common.driver.vfio-unregister-blocks', `unbind of ${d.driver} from ${device} waits for the user to close the device`);
  }
  return okPlanned('common.driver.unbound', undefined, (o, changes) => planUnbindDriver(state, device, o, changes));
};

// ---- topology ---------------------------------------------------------------------------------------

const kernelUsers = (state: ModelState, devices: readonly { driver: string | null }[]): number =>
  devices.filter((d) => d.driver !== null && !isManagedDma(state, d.driver)).length;

/**
 * A device is in one group (dev->iommu_group): one seen in group `to` (a hotplug event, or a later sysfs read: a
 * reboot into another grouping, a removal the recording missed) has left `from`, whose lists must not keep it. The
 * old group kept it before session 15 when a snapshot moved it, and its record was then derived from a member it no
 * longer had (its kernel-DMA count, its domain) whenever it was read: a fold that read its records between events, as
 * a snapshot written for a restart or an eviction does, differed from one that did not (helpers hosts6 and trip1).
 */
const leaveOldGroup = (state: ModelState, changes: ModelChanges, name: string, from: number | null, to: number | null): void => {
  const left = from !== null && from !== to ? state.groups.get(from) : undefined;
  if (!left || (!left.devices.includes(name) && !left.attached.includes(name))) return;
  const keep = (n: string) => n !== name;
  changeGroup(state, changes, left, { devices: left.devices.filter(keep), attached: left.attached.filter(keep), subGroups: left.subGroups?.map((s) => s.filter(keep)) ?? null });
};

/** shared, never mutated: the extra owners of every group the model decides itself */
export const NO_OWNERS: readonly Owner[] = Object.freeze([]);
/** shared, never mutated: a new group's attached devices (an attach or detach replaces the list: iommufdCore.ts) */
export const NO_ATTACHED: readonly string[] = Object.freeze([]);

export const emptyGroup = (id: number, devices: readonly string[]): GroupState => ({
  id,
  devices,
  subGroups: null,
  ownerCnt: 0,
  owner: null,
  extraOwners: NO_OWNERS,
  attached: NO_ATTACHED,
  pasids: NO_PASIDS,
  groupFd: null,
  container: null,
});

const sameSubGroups = (a: GroupState['subGroups'], b: GroupState['subGroups']): boolean => {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameList(a[i]!, b[i]!)) return false;
  return true;
};

/**
 * snapshot → topology; on a later snapshot the model keeps its own drivers and ownership, adding what is new.
 * A later snapshot writes only what differs (most are the agent's periodic read of a host where nothing changed):
 * a record it would put equal to the one held stays the same object, so nothing of the host is allocated again
 * and told changed (issue 23: what a fold writes into a host lives until the host's next event).
 */
export const observe = (event: ObservationBody, state: ModelState, changes: ModelChanges): void => {
  switch (event.type) {
    case 'TopologySnapshotTaken': {
      const { capabilities, groups, devices } = event.data;
      // a decision taken before a sysfs read is not applied after it, whether or not the read changed anything
      state.revision += 1;
      // defaults as the schema's, for events that reach the model unparsed (generated benchmarks)
      const managed = capabilities.managedDmaDrivers ?? DEFAULT_MANAGED_DMA_DRIVERS;
      const caps: Capabilities = {
        interruptRemapping: capabilities.interruptRemapping,
        allowUnsafeInterrupts: capabilities.allowUnsafeInterrupts ?? false,
        cacheCoherent: capabilities.cacheCoherent ?? true,
        managedDmaDrivers: sameList(state.caps.managedDmaDrivers, managed) ? state.caps.managedDmaDrivers : managed,
        kernelRelease: capabilities.kernelRelease ?? null,
      };
      if (!sameRecord(state.caps, caps)) setCaps(state, changes, caps);
      const groupOf = new Map<string, number>();
      for (const g of groups) for (const d of g.devices) groupOf.set(d, g.group);
      for (const d of devices) {
        const prev = state.devices.get(d.device);
        const next: DeviceState = {
          name: d.device,
          group: d.group ?? groupOf.get(d.device) ?? null,
          driver: prev ? prev.driver : d.driver,
          bridge: d.headerType !== undefined && d.headerType !== 'normal',
          requireDirect: d.requireDirect ?? false,
          maxPasids: d.maxPasids ?? 0,
          pasidAttach: d.pasidAttach ?? false,
          domain: prev?.domain ?? DEFAULT_DOMAIN,
          ...(d.physfn !== undefined ? { physfn: d.physfn } : {}),
          ...((d.sriovTotalVfs ?? 0) > 0 ? { sriovPf: true } : {}),
          ...(prev?.resetting ? { resetting: true } : {}),
          dirtyTracking: d.hwInfo === undefined ? prev?.dirtyTracking : d.hwInfo.capabilities.includes('dirty-tracking'),
        };
        if (prev === undefined || !sameRecord(prev, next)) putDevice(state, changes, next);
        leaveOldGroup(state, changes, d.device, prev?.group ?? null, next.group);
      }
      for (const g of groups) {
        const prev = state.groups.get(g.group);
        // sysfs `type` reads "unknown" while group->default_domain is NULL (iommu_group_show_type): ops/probeDefer.ts
        const unknown = g.defaultDomainType === 'unknown';
        if (prev) {
          const subGroups = g.subGroups ?? null;
          const devicesChange = sameList(prev.devices, g.devices) ? undefined : g.devices;
          const subGroupsChange = sameSubGroups(prev.subGroups, subGroups) ? undefined : subGroups;
          const mark = unknown ? (prev.noDefaultDomain === true ? undefined : true) : prev.noDefaultDomain ? false : undefined;
          if (devicesChange !== undefined || subGroupsChange !== undefined || mark !== undefined) {
            changeGroup(state, changes, prev, {
              ...(devicesChange !== undefined ? { devices: devicesChange } : {}),
              ...(subGroupsChange !== undefined ? { subGroups: subGroupsChange } : {}),
              ...(mark !== undefined ? { noDefaultDomain: mark } : {}),
            });
          }
          continue;
        }
        // the members as this snapshot shows them (their records are put above)
        const members = g.devices.map((n) => state.devices.get(n)).filter((d): d is DeviceState => d !== undefined);
        putGroup(state, changes, groupWith(emptyGroup(g.group, g.devices), { subGroups: g.subGroups ?? null, ownerCnt: kernelUsers(state, members), ...(unknown ? { noDefaultDomain: true } : {}) }));
      }
      return;
    }
    case 'DeviceAddedToGroup': {
      const g = state.groups.get(event.data.group);
      const prev = state.devices.get(event.data.device);
      // __iommu_probe_device: a device joining a group whose domain is set joins that domain (S27)
      const domain = g && g.devices.length > 0 ? groupDomain(state, g) : DEFAULT_DOMAIN;
      const name = event.data.device;
      leaveOldGroup(state, changes, name, prev?.group ?? null, event.data.group);
      putDevice(
        state,
        changes,
        prev ? deviceWith(prev, { group: event.data.group, domain }) : { name, group: event.data.group, driver: null, bridge: false, requireDirect: false, maxPasids: 0, pasidAttach: false, domain },
      );
      if (!g) putGroup(state, changes, emptyGroup(event.data.group, [name]));
      else changeGroup(state, changes, g, { devices: g.devices.includes(name) ? g.devices : [...g.devices, name] });
      return;
    }
    case 'DeviceRemovedFromGroup': {
      removeDevice(state, changes, event.data.device);
      const g = state.groups.get(event.data.group);
      if (g) {
        const keep = (n: string) => n !== event.data.device;
        changeGroup(state, changes, g, { devices: g.devices.filter(keep), attached: g.attached.filter(keep), subGroups: g.subGroups?.map((s) => s.filter(keep)) ?? null });
      }
      return;
    }
    case 'TraceDeviceResetFence':
      observeResetFence(event, state, changes);
      return;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
};

// ---- the uAPI every variant with that node shares (VFIO cdev, legacy group node, type1 container) ----------

/** the legacy group node's fd, when `handle` is that group's open fd */
export const groupFdOf = (state: ModelState, handle: string, group: number): GroupState | undefined =>
  state.groupFds.get(handle) === group ? state.groups.get(group) : undefined;

/**
 * The device fds that hold the group file (group->container_users beyond the container's own): only a legacy
 * container's. 6.12: vfio_group_use_container takes get_file(group->opened_file) at GET_DEVICE_FD and
 * vfio_group_unuse_container puts it at the fd's close (drivers/vfio/container.c); with an iommufd as the
 * container vfio_df_group_open takes no reference (kernel oracle s20-s22, issue 16). v5.18: GET_DEVICE_FD is a
 * container user and vfio_group_fops_open stays -EBUSY while group->container is set (drivers/vfio/vfio.c).
 */
export const groupFileUsers = (state: ModelState, g: GroupState): number => (g.container?.kind === 'legacy' ? groupPathFdCount(state, g) : 0);

/**
 * The held group file released at its last group-path device fd: the node was closed while device fds held it
 * (`groupFd` still set, no open fd naming it) and `fd`, the last of them, closes (6.12 vfio_group_unuse_container's
 * fput; v5.18 vfio_device_fops_release → vfio_group_try_dissolve_container). `release` is the variant's release of
 * the node and its container, given the group with `groupFd` cleared.
 */
export const releaseHeldGroupAtLastFd = (state: ModelState, fd: DeviceFdState, release: (state: ModelState, g: GroupState, changes: ModelChanges) => void, changes: ModelChanges): void => {
  if (fd.via !== 'group') return;
  const g = groupOfDevice(state, fd.device);
  // `fd` is still open: it is the one user left
  if (!g || g.groupFd === null || state.groupFds.get(g.groupFd) === g.id || groupFileUsers(state, g) !== 1) return;
  changeGroup(state, changes, g, { groupFd: null });
  release(state, g, changes);
};

/** a group member bound to an iommufd through its cdev */
export const hasBoundCdev = (state: ModelState, g: GroupState): boolean => g.devices.some((d) => fdsOfDevice(state, d).some((f) => f.via === 'cdev' && f.ictx !== null));

/** /dev/vfio/devices/vfioN exists while a vfio driver is bound */
export const hasCdevNode = (state: ModelState, device: string): boolean => {
  const driver = state.devices.get(device)?.driver;
  return driver != null && isVfioDriverName(driver);
};

/** open of the cdev: a new fd, no ownership taken */
export const planOpenCdev = (state: ModelState, op: { readonly device: string; readonly deviceFd: string }, changes: ModelChanges): void =>
  putFd(state, changes, openedFd(op.deviceFd, op.device, 'cdev'));
export const openCdev = (state: ModelState, op: { readonly device: string; readonly deviceFd: string }, rule: RuleId): Transition =>
  ok(rule, (changes) => planOpenCdev(state, op, changes));

/** mmap/ioctl on a device fd: gated on `df->access_granted` (a cdev fd until bound; a group-path fd has it from its open) */
export const decideAccess = (state: ModelState, handle: string, beforeBind: RefusalRuleId, granted: RuleId): Transition => {
  const fd = state.fds.get(handle);
  if (!fd) return fail('common.fd.ebadf');
  if (!fd.accessGranted) return fail(beforeBind);
  return ok(granted);
};

/** an attach/detach ioctl's fd: open, from the cdev (else `groupPath`), and bound (else `beforeBind`) */
export const boundCdevFd = (state: ModelState, handle: string, groupPath: RefusalRuleId, beforeBind: RefusalRuleId): Planned<DeviceFdState> => {
  const fd = state.fds.get(handle);
  if (!fd) return refuse('common.fd.ebadf');
  if (fd.via === 'group') return refuse(groupPath);
  if (fd.ictx === null) return refuse(beforeBind);
  return { ok: true, value: fd };
};

/** BIND_IOMMUFD's checks on the fd itself, in the kernel's order: from the cdev, group node closed, not yet bound */
export const bindableCdevFd = (
  state: ModelState,
  fd: DeviceFdState,
  rules: { readonly groupFd: RefusalRuleId; readonly groupNodeOpen: RefusalRuleId; readonly alreadyBound: RefusalRuleId },
): Planned<GroupState | undefined> => {
  if (fd.via === 'group') return refuse(rules.groupFd);
  const g = groupOfDevice(state, fd.device);
  if (g?.groupFd != null) return refuse(rules.groupNodeOpen);
  if (fd.ictx !== null) return refuse(rules.alreadyBound);
  return { ok: true, value: g };
};

/** another fd of the same device is already bound */
export const otherFdBound = (state: ModelState, fd: DeviceFdState): boolean => {
  for (const other of fdsOfDevice(state, fd.device)) if (other.handle !== fd.handle && other.ictx !== null) return true;
  return false;
};

/** /dev/vfio/<group> opened (or recorded opened): the group's node fd */
export const planOpenGroupNode = (state: ModelState, op: { readonly group: number; readonly groupFd: string }, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const g = state.groups.get(op.group);
  if (!outcome.ok || !g) return;
  changeGroup(state, changes, g, { groupFd: op.groupFd });
  setGroupFd(state, changes, op.groupFd, op.group);
};

/** open of /dev/vfio/<group>: a vfio-registered member, not already open, (when the variant has cdevs) no member bound through its cdev */
export const decideOpenGroupNode = (
  state: ModelState,
  op: { readonly group: number; readonly groupFd: string },
  rules: { readonly noVfioDevices: RefusalRuleId; readonly alreadyOpen: RefusalRuleId; readonly cdevBound?: RefusalRuleId; readonly opened: RuleId },
): Transition => {
  const g = state.groups.get(op.group);
  if (!g || !g.devices.some((n) => hasCdevNode(state, n))) return fail(rules.noVfioDevices);
  if (g.groupFd !== null) return fail(rules.alreadyOpen);
  if (rules.cdevBound !== undefined && hasBoundCdev(state, g)) return fail(rules.cdevBound);
  return ok(rules.opened, (changes) => planOpenGroupNode(state, op, OK_OUTCOME, changes));
};

/** the groups set to a container */
const groupsOfContainer = (state: ModelState, container: string): GroupState[] => {
  const out: GroupState[] = [];
  for (const g of state.groups.values()) if (g.container?.handle === container) out.push(g);
  return out;
};

/**
 * VFIO_SET_IOMMU as made (or recorded): the container's backend, whose (type1) domain every group the
 * container owns moves to. A group of the container another owner holds (a followed record) stays put.
 */
export const planSetIommu = (state: ModelState, op: { readonly container: string; readonly iommuType: string }, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const c = state.containers.get(op.container);
  if (!outcome.ok || !c) return;
  changeContainer(state, changes, c, { iommuType: op.iommuType });
  const domain: Domain = { kind: 'container', container: op.container };
  for (const g of groupsOfContainer(state, op.container)) {
    if (g.owner?.kind === 'container' && g.owner.container === op.container) setDomain(state, g.devices, domain, changes);
  }
};

/** VFIO_SET_IOMMU: the type1 backend attaches its domain to every group of the container */
export const decideSetIommu = (
  state: ModelState,
  op: { readonly container: string; readonly iommuType: string },
  rules: { readonly alreadySet: RefusalRuleId; readonly noGroups: RefusalRuleId; readonly unsafeInterrupts?: RefusalRuleId; readonly requireDirect: RefusalRuleId; readonly set: RuleId },
): Transition => {
  const c = state.containers.get(op.container);
  if (!c || !c.open) return fail('common.fd.ebadf');
  if (c.iommuType !== null) return fail(rules.alreadySet);
  const groups = groupsOfContainer(state, op.container);
  if (groups.length === 0) return fail(rules.noGroups);
  if (rules.unsafeInterrupts !== undefined && state.caps.interruptRemapping === false && !state.caps.allowUnsafeInterrupts) return fail(rules.unsafeInterrupts);
  if (groups.some((g) => groupDevices(state, g).some((d) => d.requireDirect))) return fail(rules.requireDirect);
  return okPlanned(rules.set, undefined, (o, changes) => planSetIommu(state, op, o, changes));
};

const COMMON_KINDS = [
  'openIommufd',
  'allocIoas',
  'destroy',
  'openGroup',
  'unbindDriver',
  'openContainer',
  'closeContainer',
  'setIommu',
  'accessDevice',
  'resetDevice',
  'createDmaBuf',
  'groupStatus',
  'getHwInfo',
  'invalidateHwpt',
  'getDirtyBitmap',
  'getPa',
  'changeProcess',
] as const satisfies readonly Operation['kind'][];
/** the calls whose plan every variant shares */
export type CommonOperation = Extract<Operation, { kind: (typeof COMMON_KINDS)[number] }>;
const COMMON: ReadonlySet<Operation['kind']> = new Set(COMMON_KINDS);
export const isCommonOperation = (op: Operation): op is CommonOperation => COMMON.has(op.kind);

/**
 * The plans every variant shares (issue 16: check and plan): calls whose state change does not depend on
 * the protocol. Reads change nothing whatever they returned: access, reset, dma-buf export (the model keeps
 * no dma-buf fds), group status, hw info, invalidation, the dirty bitmap (the model keeps no dirty bits),
 * GET_PA, CHANGE_PROCESS (the model keeps no mm accounting);
 * an access recorded granted on an fd without `accessGranted` is a finding the projection's rule makes, not
 * a state.
 */
export const planCommon = (op: CommonOperation, outcome: PlannedOutcome, state: ModelState, changes: ModelChanges): void => {
  switch (op.kind) {
    case 'openIommufd':
      if (outcome.ok) planOpenIommufd(state, op.ictx, changes);
      return;
    case 'allocIoas':
      return planAllocIoas(state, op.ictx, outcome, changes);
    case 'destroy':
      return planDestroy(state, op, outcome, changes);
    case 'openGroup':
      return planOpenGroupNode(state, op, outcome, changes);
    case 'unbindDriver':
      return planUnbindDriver(state, op.device, outcome, changes);
    case 'openContainer':
      if (outcome.ok) planOpenContainer(state, op.container, changes);
      return;
    case 'closeContainer':
      return planCloseContainer(state, op.container, outcome, changes);
    case 'setIommu':
      return planSetIommu(state, op, outcome, changes);
    case 'accessDevice':
    case 'resetDevice':
    case 'createDmaBuf':
    case 'groupStatus':
    case 'getHwInfo':
    case 'invalidateHwpt':
    case 'getDirtyBitmap':
    case 'getPa':
    case 'changeProcess':
      return;
    default: {
      const unreachable: never = op;
      return unreachable;
    }
  }
};

/** a variant's `plan` for the calls whose plan every variant shares (false for the rest: planned by the variant, or not yet) */
export const planCommonOnly = (op: Operation, outcome: PlannedOutcome, state: ModelState, changes: ModelChanges): boolean => {
  if (!isCommonOperation(op)) return false;
  planCommon(op, outcome, state, changes);
  return true;
};
