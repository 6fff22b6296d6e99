/**
 * The per-host kernel the simulator drives: group ownership, domains, iommufd objects and VFIO fds, following
 * the upstream rules of protocol.md §1 (iommu.c claim/release, iommufd attach/replace/detach, the legacy group
 * API), so every recorded outcome is what Linux would return for that call. Each call emits its event (with
 * the outcome) and, when enabled, one `attach_device_to_domain` trace per group device on every domain switch.
 */
import { DEFAULT_MANAGED_DMA_DRIVERS } from '../../schemas/index.js';
import type { ErrnoName, EventType, IommuEventInput } from '../../schemas/index.js';
import type { SimDevice, SimHost } from './topology.js';

type DataOf<T extends EventType> = Extract<IommuEventInput, { type: T }>['data'];
type Source = IommuEventInput['source'];

/** how the model hands events to the host: the host adds the envelope (time, actor, correlation, labels) */
export type Emit = <T extends EventType>(type: T, data: DataOf<T>, options?: { source?: Source; label?: string | undefined }) => void;

export type Outcome<T = Record<never, never>> = ({ ok: true } & T) | { ok: false; errno: ErrnoName };

type Domain = 'default' | 'blocking' | 'container' | number;

interface GroupState {
  readonly group: number;
  readonly devices: string[];
  /** an ictx handle (iommufd) or a container handle (legacy); null when not user-owned */
  owner: string | null;
  ownerCnt: number;
  domain: Domain;
  /** devices on the group's hwpt (igroup->device_list) */
  readonly attached: Set<string>;
  legacyFd: string | null;
  container: string | null;
}

interface DeviceState {
  readonly sim: SimDevice;
  driver: string | null;
  cdev: string | null;
  readonly openFds: Set<string>;
  /** the fd that did BIND_IOMMUFD, and into which ictx */
  boundFd: string | null;
  ictx: string | null;
}

interface HwptState {
  readonly id: number;
  readonly ioas: number;
  groups: number;
}

interface IctxState {
  nextId: number;
  readonly ioas: Set<number>;
  /** auto-domain hwpts by IOAS: one per IOAS on a single-IOMMU host */
  readonly autoHwpt: Map<number, HwptState>;
  readonly hwpts: Map<number, HwptState>;
}

interface ContainerState {
  iommuSet: boolean;
  readonly groups: Set<number>;
}

const MANAGED = new Set(DEFAULT_MANAGED_DMA_DRIVERS);
const isVfio = (driver: string | null): boolean => driver !== null && driver.startsWith('vfio');

export interface KernelModelOptions {
  readonly traces: boolean;
}

export const createKernelModel = (host: SimHost, emit: Emit, options: KernelModelOptions) => {
  const groups = new Map<number, GroupState>();
  const devices = new Map<string, DeviceState>();
  const ictxs = new Map<string, IctxState>();
  const containers = new Map<string, ContainerState>();
  const usedCdevs = new Set<number>();
  /** device fds from VFIO_GROUP_GET_DEVICE_FD: access is granted at open on the legacy path */
  const legacyFds = new Set<string>();

  const addGroup = (group: number, members: string[]): GroupState => {
    const g: GroupState = { group, devices: members, owner: null, ownerCnt: 0, domain: 'default', attached: new Set(), legacyFd: null, container: null };
    groups.set(group, g);
    return g;
  };
  for (const sg of host.groups) addGroup(sg.group, [...sg.devices]);
  for (const d of host.devices) {
    devices.set(d.name, { sim: d, driver: d.kernelDriver, cdev: null, openFds: new Set(), boundFd: null, ictx: null });
    const g = d.group === null ? undefined : groups.get(d.group);
    // boot: each kernel DMA-API driver holds owner_cnt (iommu_device_use_default_domain)
    if (g && d.kernelDriver !== null && !MANAGED.has(d.kernelDriver)) g.ownerCnt += 1;
  }

  const dev = (name: string): DeviceState => {
    const d = devices.get(name);
    if (!d) throw new Error(`simulator: unknown device ${name} on ${host.name}`);
    return d;
  };
  const groupOf = (d: DeviceState): GroupState | undefined => (d.sim.group === null ? undefined : groups.get(d.sim.group));

  /** a domain switch is group-wide: one trace per group device (§1.0 __iommu_group_set_domain_internal) */
  const domainSwitch = (g: GroupState, domain: Domain): void => {
    g.domain = domain;
    if (!options.traces) return;
    for (const name of g.devices) emit('TraceAttachDeviceToDomain', { device: name, line: `IOMMU: device=${name}` }, { source: 'ftrace' });
  };

  const lowestFreeCdev = (): number => {
    let n = 0;
    while (usedCdevs.has(n)) n += 1;
    usedCdevs.add(n);
    return n;
  };

  const releaseHwpt = (ictx: IctxState, hwptId: number): void => {
    const h = ictx.hwpts.get(hwptId);
    if (!h) return;
    h.groups -= 1;
    // auto hwpts are freed with their last attachment (iommufd_hw_pagetable_put)
    if (h.groups <= 0) {
      ictx.hwpts.delete(hwptId);
      if (ictx.autoHwpt.get(h.ioas) === h) ictx.autoHwpt.delete(h.ioas);
    }
  };

  const ictxOf = (handle: string): IctxState => {
    const s = ictxs.get(handle);
    if (!s) throw new Error(`simulator: unknown iommufd ${handle}`);
    return s;
  };

  /** last detach from the hwpt → blocking (iommufd_hw_pagetable_detach → __iommu_group_set_core_domain) */
  const detachInternal = (d: DeviceState, g: GroupState): void => {
    if (!g.attached.delete(d.sim.name)) return;
    if (g.attached.size === 0 && typeof g.domain === 'number') {
      const hwpt = g.domain;
      domainSwitch(g, 'blocking');
      releaseHwpt(ictxOf(d.ictx!), hwpt);
    }
  };

  return {
    host,
    device: (name: string): Readonly<{ driver: string | null; group: number | null; cdev: string | null; bound: boolean }> => {
      const d = dev(name);
      return { driver: d.driver, group: d.sim.group, cdev: d.cdev, bound: d.boundFd !== null };
    },
    groupOwned: (group: number): boolean => (groups.get(group)?.owner ?? null) !== null,
    /** counters for the bounded-state check: nothing here may grow with the number of events */
    size: () => ({ groups: groups.size, devices: devices.size, ictxs: ictxs.size, containers: containers.size, cdevs: usedCdevs.size, legacyFds: legacyFds.size }),

    // ---- driver core (§2.2) ----

    bindDriver(name: string, driver: string, label?: string): Outcome {
      const d = dev(name);
      const g = groupOf(d);
      // __driver_probe_device: already bound → -EBUSY
      if (d.driver !== null) {
        emit('DriverBindRefused', { device: name, driver, errno: 'EBUSY' }, { source: 'collector', label });
        return { ok: false, errno: 'EBUSY' };
      }
      if (!MANAGED.has(driver) && g) {
        // pci_dma_configure → iommu_device_use_default_domain: refused in a user-owned group (§1.2)
        if (g.owner !== null || g.domain !== 'default') {
          emit('DriverBindRefused', { device: name, driver, errno: 'EBUSY' }, { source: 'collector', label });
          return { ok: false, errno: 'EBUSY' };
        }
        g.ownerCnt += 1;
      }
      d.driver = driver;
      if (isVfio(driver) && g) d.cdev = `vfio${lowestFreeCdev()}`;
      emit('DriverBound', { device: name, driver }, { source: 'udev', label });
      return { ok: true };
    },

    unbindDriver(name: string, label?: string): Outcome {
      const d = dev(name);
      if (d.driver === null) return { ok: false, errno: 'ENODEV' };
      // S31: vfio-pci unbind blocks while a user holds the device; the simulated operators never do it
      if (d.openFds.size > 0) throw new Error(`simulator: unbind of ${name} while its fd is open would block`);
      const g = groupOf(d);
      const driver = d.driver;
      if (g && !MANAGED.has(driver)) g.ownerCnt -= 1;
      if (d.cdev !== null) usedCdevs.delete(Number(d.cdev.slice(4)));
      d.cdev = null;
      d.driver = null;
      emit('DriverUnbound', { device: name, driver }, { source: 'udev', label });
      return { ok: true };
    },

    // ---- iommufd (§1.4, §1.5) ----

    openIommufd(handle: string): void {
      ictxs.set(handle, { nextId: 1, ioas: new Set(), autoHwpt: new Map(), hwpts: new Map() });
      emit('IommufdOpened', { ictx: handle, outcome: { ok: true } });
    },

    closeIommufd(handle: string): void {
      // bound devices keep the ctx alive (S9); the simulator closes it after its devices, so forget it
      ictxs.delete(handle);
      emit('IommufdClosed', { ictx: handle });
    },

    ioasAlloc(handle: string): number {
      const s = ictxOf(handle);
      const id = s.nextId++;
      s.ioas.add(id);
      emit('IommufdIoasAllocIssued', { ictx: handle, outcome: { ok: true, ioasId: id } });
      return id;
    },

    ioasMap(handle: string, ioasId: number, iova: bigint, length: bigint): void {
      const hex = (n: bigint) => `0x${n.toString(16).padStart(16, '0')}`;
      const ok = ictxOf(handle).ioas.has(ioasId);
      emit('IommufdIoasMapIssued', {
        ictx: handle,
        ioasId,
        iova: hex(iova),
        length: hex(length),
        outcome: ok ? { ok: true, iova: hex(iova) } : { ok: false, errno: 'ENOENT' },
      });
    },

    destroy(handle: string, objectId: number): Outcome {
      const s = ictxOf(handle);
      let outcome: Outcome;
      if (s.ioas.has(objectId)) {
        const referenced = [...s.hwpts.values()].some((h) => h.ioas === objectId);
        if (referenced) outcome = { ok: false, errno: 'EBUSY' };
        else {
          s.ioas.delete(objectId);
          outcome = { ok: true };
        }
      } else outcome = { ok: false, errno: 'ENOENT' };
      emit('IommufdDestroyIssued', { ictx: handle, objectId, outcome });
      return outcome;
    },

    // ---- VFIO device cdev (§1.1, §1.4) ----

    openDevice(name: string, fd: string): Outcome {
      const d = dev(name);
      // the /dev/vfio/devices node exists only while a vfio driver is bound
      if (!isVfio(d.driver) || d.cdev === null) {
        emit('VfioDeviceOpened', { device: name, deviceFd: fd, outcome: { ok: false, errno: 'ENOENT' } });
        return { ok: false, errno: 'ENOENT' };
      }
      d.openFds.add(fd);
      emit('VfioDeviceOpened', { device: name, deviceFd: fd, cdev: d.cdev, outcome: { ok: true } });
      return { ok: true };
    },

    access(name: string, fd: string, access: 'mmap' | 'ioctl', request: string | undefined, label?: string): Outcome {
      const d = dev(name);
      // df->access_granted: only after BIND_IOMMUFD (cdev) or for legacy-group fds
      const granted = d.boundFd === fd || legacyFds.has(fd);
      const outcome: Outcome = granted ? { ok: true } : { ok: false, errno: 'EINVAL' };
      emit('VfioDeviceAccessAttempted', { device: name, deviceFd: fd, access, ...(request ? { request } : {}), outcome }, { label });
      return outcome;
    },

    bindIommufd(name: string, fd: string, handle: string, label?: string): Outcome<{ devId: number }> {
      const d = dev(name);
      const g = groupOf(d);
      const fail = (errno: ErrnoName): Outcome<{ devId: number }> => {
        emit('VfioDeviceBindIommufdIssued', { device: name, deviceFd: fd, ictx: handle, outcome: { ok: false, errno } }, { label });
        return { ok: false, errno };
      };
      // §1.4 in evaluation order
      if (g?.legacyFd) return fail('EBUSY');
      if (d.boundFd !== null) return fail('EINVAL');
      if (!g) return fail('ENODEV');
      if (g.ownerCnt > 0 && g.owner !== handle) return fail('EPERM');
      if (g.owner === handle) g.ownerCnt += 1;
      else {
        if (g.domain !== 'default') return fail('EBUSY');
        if (g.devices.some((m) => dev(m).sim.requireDirect)) return fail('EINVAL');
        g.owner = handle;
        g.ownerCnt = 1;
        domainSwitch(g, 'blocking');
      }
      d.boundFd = fd;
      d.ictx = handle;
      const devId = ictxOf(handle).nextId++;
      emit('VfioDeviceBindIommufdIssued', { device: name, deviceFd: fd, ictx: handle, outcome: { ok: true, devId } }, { label });
      return { ok: true, devId };
    },

    attach(name: string, fd: string, ioasId: number, label?: string): Outcome<{ ptId: number }> {
      const d = dev(name);
      const g = groupOf(d);
      const done = (outcome: Outcome<{ ptId: number }>) => {
        emit('VfioDeviceAttachPtIssued', { device: name, deviceFd: fd, ptId: ioasId, outcome }, { label });
        return outcome;
      };
      if (d.boundFd !== fd || !g || d.ictx === null) return done({ ok: false, errno: 'EINVAL' });
      const s = ictxOf(d.ictx);
      if (!s.ioas.has(ioasId)) return done({ ok: false, errno: 'ENOENT' });
      const existing = s.autoHwpt.get(ioasId);
      const target = (): HwptState => {
        if (existing) return existing;
        const h: HwptState = { id: s.nextId++, ioas: ioasId, groups: 0 };
        s.autoHwpt.set(ioasId, h);
        s.hwpts.set(h.id, h);
        return h;
      };
      if (g.attached.has(name)) {
        // replace: the whole group moves, no blocking window (S7)
        if (existing && existing.id === g.domain) return done({ ok: true, ptId: existing.id });
        const old = g.domain as number;
        const h = target();
        h.groups += 1;
        domainSwitch(g, h.id);
        releaseHwpt(s, old);
        return done({ ok: true, ptId: h.id });
      }
      if (typeof g.domain === 'number') {
        // a sibling joins the group's hwpt, or fails: one hwpt per group (S15, S19)
        if (existing && existing.id === g.domain) {
          g.attached.add(name);
          return done({ ok: true, ptId: existing.id });
        }
        return done({ ok: false, errno: 'EINVAL' });
      }
      const h = target();
      h.groups += 1;
      g.attached.add(name);
      domainSwitch(g, h.id);
      return done({ ok: true, ptId: h.id });
    },

    detach(name: string, fd: string): Outcome {
      const d = dev(name);
      const g = groupOf(d);
      if (d.boundFd !== fd || !g) {
        emit('VfioDeviceDetachPtIssued', { device: name, deviceFd: fd, outcome: { ok: false, errno: 'EINVAL' } });
        return { ok: false, errno: 'EINVAL' };
      }
      // always 0, even when not attached; the emit comes first, the trace burst after
      emit('VfioDeviceDetachPtIssued', { device: name, deviceFd: fd, outcome: { ok: true } });
      detachInternal(d, g);
      return { ok: true };
    },

    closeDevice(name: string, fd: string): void {
      const d = dev(name);
      const g = groupOf(d);
      emit('VfioDeviceClosed', { device: name, deviceFd: fd });
      d.openFds.delete(fd);
      legacyFds.delete(fd);
      if (d.boundFd !== fd || !g) return;
      // vfio_iommufd_physical_unbind: detach if attached, then release the DMA ownership
      detachInternal(d, g);
      d.boundFd = null;
      d.ictx = null;
      g.ownerCnt -= 1;
      if (g.ownerCnt === 0) {
        g.owner = null;
        domainSwitch(g, 'default');
      }
    },

    // ---- legacy group API (§1.6) ----

    openContainer(handle: string): void {
      containers.set(handle, { iommuSet: false, groups: new Set() });
      emit('VfioContainerOpened', { container: handle, outcome: { ok: true } });
    },

    openGroup(group: number, fd: string): Outcome {
      const g = groups.get(group);
      let outcome: Outcome = { ok: true };
      if (!g) outcome = { ok: false, errno: 'ENOENT' };
      else if (g.legacyFd !== null || g.devices.some((m) => dev(m).boundFd !== null)) outcome = { ok: false, errno: 'EBUSY' };
      else g.legacyFd = fd;
      emit('VfioGroupOpened', { group, groupFd: fd, outcome });
      return outcome;
    },

    groupStatus(group: number, fd: string): { viable: boolean; containerSet: boolean } {
      const g = groups.get(group)!;
      const status = g.container !== null ? { viable: true, containerSet: true } : { viable: g.ownerCnt === 0, containerSet: false };
      emit('VfioGroupGetStatusIssued', { group, groupFd: fd, outcome: { ok: true, ...status } });
      return status;
    },

    setContainer(group: number, fd: string, container: string, label?: string): Outcome {
      const g = groups.get(group)!;
      const c = containers.get(container)!;
      let outcome: Outcome = { ok: true };
      if (g.container !== null) outcome = { ok: false, errno: 'EINVAL' };
      // iommu_group_claim_dma_owner: any owner_cnt → -EPERM
      else if (g.ownerCnt > 0) outcome = { ok: false, errno: 'EPERM' };
      else if (g.domain !== 'default') outcome = { ok: false, errno: 'EBUSY' };
      else if (g.devices.some((m) => dev(m).sim.requireDirect)) outcome = { ok: false, errno: 'EINVAL' };
      emit('VfioGroupSetContainerIssued', { group, groupFd: fd, container, containerKind: 'legacy', outcome }, { label });
      if (outcome.ok) {
        g.container = container;
        g.owner = container;
        g.ownerCnt = 1;
        c.groups.add(group);
        domainSwitch(g, 'blocking');
        if (c.iommuSet) domainSwitch(g, 'container');
      }
      return outcome;
    },

    setIommu(container: string): Outcome {
      const c = containers.get(container)!;
      const outcome: Outcome = c.groups.size === 0 || c.iommuSet ? { ok: false, errno: 'EINVAL' } : { ok: true };
      emit('VfioContainerSetIommuIssued', { container, iommuType: 'type1v2', outcome });
      if (outcome.ok) {
        c.iommuSet = true;
        for (const group of c.groups) domainSwitch(groups.get(group)!, 'container');
      }
      return outcome;
    },

    getDeviceFd(group: number, fd: string, name: string, deviceFd: string): Outcome {
      const g = groups.get(group)!;
      const d = dev(name);
      let outcome: Outcome<{ deviceFd: string }>;
      if (g.container === null || !containers.get(g.container)?.iommuSet) outcome = { ok: false, errno: 'EINVAL' };
      else if (!isVfio(d.driver) || d.sim.group !== group) outcome = { ok: false, errno: 'ENODEV' };
      else outcome = { ok: true, deviceFd };
      emit('VfioGroupGetDeviceFdIssued', { group, groupFd: fd, device: name, outcome });
      if (outcome.ok) {
        d.openFds.add(deviceFd);
        legacyFds.add(deviceFd);
      }
      return outcome.ok ? { ok: true } : outcome;
    },

    closeGroup(group: number, fd: string): void {
      const g = groups.get(group)!;
      emit('VfioGroupClosed', { group, groupFd: fd });
      g.legacyFd = null;
      if (g.container === null) return;
      containers.get(g.container)?.groups.delete(group);
      // vfio_group_detach_container: back to blocking, then release → default
      if (g.domain === 'container') domainSwitch(g, 'blocking');
      g.container = null;
      g.owner = null;
      g.ownerCnt = 0;
      domainSwitch(g, 'default');
    },

    closeContainer(handle: string): void {
      containers.delete(handle);
      emit('VfioContainerClosed', { container: handle });
    },

    // ---- hotplug (§2.1 add/remove_device_to_group) ----

    hotRemove(name: string): void {
      const d = dev(name);
      if (d.driver !== null) this.unbindDriver(name);
      const g = groupOf(d);
      if (g) {
        emit('DeviceRemovedFromGroup', { device: name, group: g.group }, { source: 'collector' });
        if (options.traces) emit('TraceRemoveDeviceFromGroup', { group: g.group, device: name, line: `IOMMU: groupID=${g.group} device=${name}` }, { source: 'ftrace' });
        g.devices.splice(g.devices.indexOf(name), 1);
        if (g.devices.length === 0) groups.delete(g.group);
      }
      devices.delete(name);
    },

    /** re-add a removed device into a new group with the lowest free number (ida), then autoprobe its driver */
    hotAdd(sim: SimDevice): void {
      let group: number | null = null;
      if (host.iommu) {
        group = 0;
        while (groups.has(group)) group += 1;
        addGroup(group, [sim.name]);
      }
      sim.group = group;
      devices.set(sim.name, { sim, driver: null, cdev: null, openFds: new Set(), boundFd: null, ictx: null });
      if (group !== null) {
        emit('DeviceAddedToGroup', { device: sim.name, group }, { source: 'collector' });
        if (options.traces) {
          emit('TraceAddDeviceToGroup', { group, device: sim.name, line: `IOMMU: groupID=${group} device=${sim.name}` }, { source: 'ftrace' });
          emit('TraceAttachDeviceToDomain', { device: sim.name, line: `IOMMU: device=${sim.name}` }, { source: 'ftrace' });
        }
      }
      if (sim.kernelDriver !== null) this.bindDriver(sim.name, sim.kernelDriver);
    },
  };
};

export type KernelModel = ReturnType<typeof createKernelModel>;
