/**
 * The per-host kernel the simulator drives. It holds no rules of its own: every call becomes the replay's
 * `Operation`, the upstream decider (projections/kernel/upstream.decider.ts) decides its outcome on this host's
 * model state and that state evolves with the decision, so a simulated history replayed on `upstream` can
 * only match. What is left here is what a recorder adds around a call: the event that carries the outcome,
 * one `attach_device_to_domain` trace per device whose domain the decision moved (when traces are on), the
 * cdev node names, and the topology and hotplug observations.
 */
import { isVfioDriverName } from '../../schemas/index.js';
import type { ErrnoName, EventType, IommuEventInput } from '../../schemas/index.js';
import { decideAndEvolve, observeAndEvolve, VARIANTS, type ModelOutcome, type Observation, type Operation } from '../../replay/index.js';
import type { SimDevice, SimHost } from './topology.js';

type DataOf<T extends EventType> = Extract<IommuEventInput, { type: T }>['data'];
type Source = IommuEventInput['source'];

/** how the model hands events to the host: the host adds the envelope (time, actor, correlation, labels) */
export type Emit = <T extends EventType>(type: T, data: DataOf<T>, options?: { source?: Source; label?: string | undefined }) => void;

export type Outcome<T = Record<never, never>> = ({ ok: true } & T) | { ok: false; errno: ErrnoName };

export interface KernelModelOptions {
  readonly traces: boolean;
  /**
   * the host has no interrupt remapping and its operator set allow_unsafe_interrupts=1 (an operator mistake:
   * the kernel then binds devices without isolated MSI) @defaultValue false
   */
  readonly unsafeInterrupts?: boolean;
}

const upstream = VARIANTS.upstream;

/**
 * A quiet host's kernel (no fd, ctx, container or group fd open) in a few numbers: the devices whose driver or
 * group is not the one they booted with, and the cdev nodes held. With the host's topology (rebuilt from its
 * seed) it is the whole decider state: the decider observes the sysfs read that shows it.
 */
export interface ParkedKernel {
  /** [device index in the topology, driver, group] of each device not as it booted */
  readonly changed: readonly (readonly [number, string | null, number | null])[];
  /** [device index, N of /dev/vfio/devices/vfioN] */
  readonly cdevs: readonly (readonly [number, number])[];
}

/** a device as a topology snapshot lists it, with the driver and group sysfs shows */
const sysfsDevice = (d: SimDevice, driver: string | null, group: number | null): DataOf<'TopologySnapshotTaken'>['devices'][number] => {
  // the optional fields assigned, not spread: this runs for every device of every host built or read again
  const read: { -readonly [K in keyof DataOf<'TopologySnapshotTaken'>['devices'][number]]: DataOf<'TopologySnapshotTaken'>['devices'][number][K] } = {
    device: d.name,
    vendorId: d.vendorId,
    deviceId: d.deviceId,
    classCode: d.classCode,
    driver,
    group,
  };
  if (d.headerType) read.headerType = d.headerType;
  if (d.requireDirect) read.requireDirect = true;
  return read;
};
const hex = (n: bigint) => `0x${n.toString(16).padStart(16, '0')}`;

/**
 * `parked`: go on from a quiet host's record (`park()`); the topology's devices and units must already carry the
 * groups the record lists (`applyParkedGroups`)
 */
export const createKernelModel = (host: SimHost, emit: Emit, options: KernelModelOptions, parked?: ParkedKernel) => {
  const state = upstream.initialState();
  /**
   * The host's first sysfs read (at boot, or rebuilt from a parked record) folded into the empty state: no device
   * had a domain to move from, so no trace, and the decider's own `evolve` is the whole step (no reader of the
   * moves, which `observeAndEvolve` collects)
   */
  const foldFirstSnapshot = (data: DataOf<'TopologySnapshotTaken'>): void => {
    if (state.devices.size > 0 || state.groups.size > 0) throw new Error(`simulator: ${host.name}'s first topology snapshot folded into a state that has one`);
    upstream.evolve(state, { type: 'TopologySnapshotTaken', data } as Observation);
  };
  /** /dev/vfio/devices/vfioN: the lowest free minor, taken while a vfio driver is bound */
  const cdevs = new Map<string, string>();
  const usedCdevs = new Set<number>();
  if (parked !== undefined) {
    const drivers = new Map<SimDevice, string | null>(parked.changed.map(([i, driver]) => [host.devices[i]!, driver]));
    // the sysfs read of the host as it is now: drivers and groups (every device is in: nothing is pulled); a hot
    // swap may have moved a device to another group of the same numbers: members as the devices are now
    const members = new Map<number, string[]>();
    for (const d of host.devices) {
      if (d.group === null) continue;
      const list = members.get(d.group);
      if (list === undefined) members.set(d.group, [d.name]);
      else list.push(d.name);
    }
    const data: DataOf<'TopologySnapshotTaken'> = {
      capabilities: capabilities(),
      groups: host.groups.map((g) => ({ group: g.group, devices: members.get(g.group) ?? [], defaultDomainType: 'DMA-FQ' as const })),
      devices: host.devices.map((d) => sysfsDevice(d, drivers.has(d) ? drivers.get(d)! : d.kernelDriver, d.group)),
    };
    foldFirstSnapshot(data);
    for (const [i, n] of parked.cdevs) {
      cdevs.set(host.devices[i]!.name, `vfio${n}`);
      usedCdevs.add(n);
    }
  }

  const traceDomains = (devices: readonly string[]): void => {
    if (!options.traces) return;
    for (const device of devices) emit('TraceAttachDeviceToDomain', { device, line: `IOMMU: device=${device}` }, { source: 'ftrace' });
  };

  /**
   * Ask the decider; the kernel's traces come first, the call's return after. An outcome the simulated
   * operators never meet (a crash, a call that would block) is a simulator bug, not an event.
   */
  const call = <T extends object = Record<never, never>>(operation: Operation): Outcome<T> => {
    const { decision, domainChanges } = decideAndEvolve(upstream, state, operation);
    const outcome: ModelOutcome = decision.outcome;
    if (!outcome.ok && !('errno' in outcome)) throw new Error(`simulator: ${operation.kind} on ${host.name} ${'crash' in outcome ? outcome.crash : outcome.blocks} (${decision.rule})`);
    traceDomains(domainChanges);
    return outcome as unknown as Outcome<T>;
  };

  const observe = (observation: Pick<Observation, 'type' | 'data'>): void => {
    // the decider reads only type and data (kernel.ts observe); the host adds the envelope to what it emits
    traceDomains(observeAndEvolve(upstream, state, observation as Observation));
  };

  /** nothing open: no fd, group fd, ctx or container (closed ones the model still lists hold nothing) */
  const quiet = (): boolean => {
    if (state.fds.size > 0 || state.groupFds.size > 0) return false;
    for (const c of state.ictxs.values()) if (c.open) return false;
    for (const c of state.containers.values()) if (c.open) return false;
    return true;
  };

  const device = (name: string) => {
    const d = state.devices.get(name);
    if (!d) throw new Error(`simulator: unknown device ${name} on ${host.name}`);
    return d;
  };

  return {
    host,
    /** the decider's record of the device (read-only: only decisions change it) */
    device: (name: string): Readonly<{ driver: string | null; group: number | null }> => device(name),
    /** counters for the bounded-state check: nothing here may grow with the number of events */
    size: () => ({
      groups: state.groups.size,
      devices: state.devices.size,
      ictxs: state.ictxs.size,
      containers: state.containers.size,
      cdevs: usedCdevs.size,
      fds: state.fds.size,
      legacyFds: [...state.fds.values()].filter((fd) => fd.via === 'group').length,
      groupFds: state.groupFds.size,
    }),

    quiet,
    /**
     * Nothing open and nothing pulled: the host can wait as a record (`ParkedKernel`); null while anything is
     * open (an fd, a ctx, a container, a group fd) or a device is out of the system
     */
    park(): ParkedKernel | null {
      if (!quiet()) return null;
      const changed: [number, string | null, number | null][] = [];
      const held: [number, number][] = [];
      for (let i = 0; i < host.devices.length; i++) {
        const d = host.devices[i]!;
        const now = state.devices.get(d.name);
        if (now === undefined) return null;
        if (now.driver !== d.kernelDriver || now.group !== d.group) changed.push([i, now.driver, now.group]);
        const cdev = cdevs.get(d.name);
        if (cdev !== undefined) held.push([i, Number(cdev.slice(4))]);
      }
      return { changed, cdevs: held };
    },

    /** the agent's first snapshot: the decider's initial topology, owner_cnt from the boot drivers */
    snapshot(): void {
      const data = sysfsRead((d) => d.kernelDriver);
      emit('TopologySnapshotTaken', data);
      foldFirstSnapshot(data);
      for (const d of host.devices) if (d.kernelDriver !== null && isVfioDriverName(d.kernelDriver)) takeCdev(d.name);
    },

    /**
     * The agent reads sysfs again (after it noticed a lost or repeated record): drivers and membership as the
     * kernel has them now. The decider already holds that state, so it observes nothing.
     */
    resync(): void {
      const groups = [...state.groups.entries()].filter(([, g]) => g.devices.length > 0);
      const data: DataOf<'TopologySnapshotTaken'> = {
        capabilities: capabilities(),
        groups: groups.map(([group, g]) => ({ group, devices: [...g.devices], defaultDomainType: 'DMA-FQ' as const })),
        // a pulled drive is not in sysfs until it comes back
        devices: host.devices.flatMap((d) => {
          const now = state.devices.get(d.name);
          return now === undefined ? [] : [sysfsDevice(d, now.driver, now.group)];
        }),
      };
      emit('TopologySnapshotTaken', data);
    },

    // ---- driver core (§2.2) ----

    bindDriver(name: string, driver: string, label?: string): Outcome {
      const outcome = call({ kind: 'bindDriver', device: name, driver });
      if (!outcome.ok) {
        emit('DriverBindRefused', { device: name, driver, errno: outcome.errno }, { source: 'collector', label });
        return outcome;
      }
      if (isVfioDriverName(driver)) takeCdev(name);
      emit('DriverBound', { device: name, driver }, { source: 'udev', label });
      return outcome;
    },

    unbindDriver(name: string, label?: string): Outcome {
      const driver = device(name).driver;
      const outcome = call({ kind: 'unbindDriver', device: name });
      if (!outcome.ok || driver === null) return outcome;
      const cdev = cdevs.get(name);
      if (cdev !== undefined) usedCdevs.delete(Number(cdev.slice(4)));
      cdevs.delete(name);
      emit('DriverUnbound', { device: name, driver }, { source: 'udev', label });
      return outcome;
    },

    // ---- iommufd (§1.4, §1.5) ----

    /** open(/dev/iommu): refused (-ENOENT) on a release without iommufd; the caller stops there */
    openIommufd(handle: string): Outcome {
      const outcome = call({ kind: 'openIommufd', ictx: handle });
      emit('IommufdOpened', { ictx: handle, outcome });
      return outcome;
    },

    closeIommufd(handle: string): void {
      call({ kind: 'closeIommufd', ictx: handle });
      emit('IommufdClosed', { ictx: handle });
    },

    ioasAlloc(handle: string): number {
      const outcome = call<{ ioasId: number }>({ kind: 'allocIoas', ictx: handle });
      emit('IommufdIoasAllocIssued', { ictx: handle, outcome });
      if (!outcome.ok) throw new Error(`simulator: IOAS_ALLOC on ${handle} failed with ${outcome.errno}`);
      return outcome.ioasId;
    },

    ioasMap(handle: string, ioasId: number, iova: bigint, length: bigint): void {
      const outcome = call({ kind: 'mapIoas', ictx: handle, ioasId, iova, length });
      const at = hex(iova);
      emit('IommufdIoasMapIssued', { ictx: handle, ioasId, iova: at, length: hex(length), outcome: outcome.ok ? { ok: true, iova: at } : outcome });
    },

    destroy(handle: string, objectId: number): Outcome {
      const outcome = call({ kind: 'destroy', ictx: handle, objectId });
      emit('IommufdDestroyIssued', { ictx: handle, objectId, outcome });
      return outcome;
    },

    // ---- VFIO device cdev (§1.1, §1.4) ----

    openDevice(name: string, fd: string): Outcome {
      const outcome = call({ kind: 'openDevice', device: name, deviceFd: fd });
      const cdev = cdevs.get(name);
      emit('VfioDeviceOpened', { device: name, deviceFd: fd, ...(outcome.ok && cdev !== undefined ? { cdev } : {}), outcome });
      return outcome;
    },

    access(name: string, fd: string, access: 'mmap' | 'ioctl', request: string | undefined, label?: string): Outcome {
      const outcome = call({ kind: 'accessDevice', device: name, deviceFd: fd, access });
      emit('VfioDeviceAccessAttempted', { device: name, deviceFd: fd, access, ...(request ? { request } : {}), outcome }, { label });
      return outcome;
    },

    bindIommufd(name: string, fd: string, handle: string, label?: string): Outcome<{ devId: number }> {
      const outcome = call<{ devId: number }>({ kind: 'bindIommufd', device: name, deviceFd: fd, ictx: handle });
      emit('VfioDeviceBindIommufdIssued', { device: name, deviceFd: fd, ictx: handle, outcome }, { label });
      return outcome;
    },

    attach(name: string, fd: string, ptId: number, label?: string): Outcome<{ ptId: number }> {
      const outcome = call<{ ptId: number }>({ kind: 'attachPt', device: name, deviceFd: fd, ptId });
      emit('VfioDeviceAttachPtIssued', { device: name, deviceFd: fd, ptId, outcome }, { label });
      return outcome;
    },

    detach(name: string, fd: string): Outcome {
      const outcome = call({ kind: 'detachPt', device: name, deviceFd: fd });
      emit('VfioDeviceDetachPtIssued', { device: name, deviceFd: fd, outcome });
      return outcome;
    },

    closeDevice(name: string, fd: string): void {
      call({ kind: 'closeDevice', device: name, deviceFd: fd });
      emit('VfioDeviceClosed', { device: name, deviceFd: fd });
    },

    // ---- legacy group API (§1.6) ----

    openContainer(handle: string): void {
      emit('VfioContainerOpened', { container: handle, outcome: call({ kind: 'openContainer', container: handle }) });
    },

    openGroup(group: number, fd: string): Outcome {
      const outcome = call({ kind: 'openGroup', group, groupFd: fd });
      emit('VfioGroupOpened', { group, groupFd: fd, outcome });
      return outcome;
    },

    groupStatus(group: number, fd: string): Outcome<{ viable: boolean; containerSet: boolean }> {
      const outcome = call<{ viable: boolean; containerSet: boolean }>({ kind: 'groupStatus', group, groupFd: fd });
      emit('VfioGroupGetStatusIssued', { group, groupFd: fd, outcome });
      return outcome;
    },

    setContainer(group: number, fd: string, container: string, label?: string): Outcome {
      const outcome = call({ kind: 'setContainer', group, groupFd: fd, container, containerKind: 'legacy' });
      emit('VfioGroupSetContainerIssued', { group, groupFd: fd, container, containerKind: 'legacy', outcome }, { label });
      return outcome;
    },

    setIommu(container: string): Outcome {
      const outcome = call({ kind: 'setIommu', container, iommuType: 'type1v2' });
      emit('VfioContainerSetIommuIssued', { container, iommuType: 'type1v2', outcome });
      return outcome;
    },

    getDeviceFd(group: number, fd: string, name: string, deviceFd: string): Outcome {
      const outcome = call<{ deviceFd: string }>({ kind: 'getDeviceFd', group, groupFd: fd, device: name, newFd: deviceFd });
      emit('VfioGroupGetDeviceFdIssued', { group, groupFd: fd, device: name, outcome });
      return outcome;
    },

    closeGroup(group: number, fd: string): void {
      call({ kind: 'closeGroup', group, groupFd: fd });
      emit('VfioGroupClosed', { group, groupFd: fd });
    },

    closeContainer(handle: string): void {
      call({ kind: 'closeContainer', container: handle });
      emit('VfioContainerClosed', { container: handle });
    },

    // ---- hotplug (§2.1 add/remove_device_to_group) ----

    hotRemove(name: string): void {
      if (device(name).driver !== null) this.unbindDriver(name);
      const group = device(name).group;
      if (group === null) return;
      emit('DeviceRemovedFromGroup', { device: name, group }, { source: 'collector' });
      if (options.traces) emit('TraceRemoveDeviceFromGroup', { group, device: name, line: `IOMMU: groupID=${group} device=${name}` }, { source: 'ftrace' });
      observe({ type: 'DeviceRemovedFromGroup', data: { device: name, group } } as Pick<Observation, 'type' | 'data'>);
    },

    /** re-add a removed device into a new group with the lowest free number (ida), then autoprobe its driver */
    hotAdd(sim: SimDevice): void {
      let group: number | null = null;
      if (host.iommu) {
        group = 0;
        while ((state.groups.get(group)?.devices.length ?? 0) > 0) group += 1;
      }
      sim.group = group;
      if (group !== null) {
        emit('DeviceAddedToGroup', { device: sim.name, group }, { source: 'collector' });
        if (options.traces) {
          emit('TraceAddDeviceToGroup', { group, device: sim.name, line: `IOMMU: groupID=${group} device=${sim.name}` }, { source: 'ftrace' });
          // iommu_probe_device attaches the new group's default domain
          emit('TraceAttachDeviceToDomain', { device: sim.name, line: `IOMMU: device=${sim.name}` }, { source: 'ftrace' });
        }
        observe({ type: 'DeviceAddedToGroup', data: { device: sim.name, group } } as Pick<Observation, 'type' | 'data'>);
      }
      if (sim.kernelDriver !== null) this.bindDriver(sim.name, sim.kernelDriver);
    },
  };

  /** what the agent reads in sysfs at boot, with these drivers bound */
  function sysfsRead(driverOf: (d: SimDevice) => string | null): DataOf<'TopologySnapshotTaken'> {
    return {
      capabilities: capabilities(),
      groups: host.groups.map((g) => ({ group: g.group, devices: [...g.devices], defaultDomainType: 'DMA-FQ' as const })),
      devices: host.devices.map((d) => sysfsDevice(d, driverOf(d), d.group)),
    };
  }

  function capabilities(): DataOf<'TopologySnapshotTaken'>['capabilities'] {
    const unsafe = options.unsafeInterrupts === true;
    return { iommu: host.iommu, interruptRemapping: host.iommu && !unsafe, allowUnsafeInterrupts: unsafe, cacheCoherent: true, kernelRelease: host.kernelRelease };
  }

  function takeCdev(name: string): void {
    let n = 0;
    while (usedCdevs.has(n)) n += 1;
    usedCdevs.add(n);
    cdevs.set(name, `vfio${n}`);
  }
};

export type KernelModel = ReturnType<typeof createKernelModel>;

/** a parked kernel's group changes (a hot swap that came back in another group) applied to its rebuilt topology */
export const applyParkedGroups = (host: SimHost, parked: ParkedKernel): void => {
  for (const [i, , group] of parked.changed) {
    const d = host.devices[i]!;
    if (d.group === group || group === null) continue;
    for (const u of host.units) if (u.devices.includes(d.name)) u.group = group;
    d.group = group;
  }
};
