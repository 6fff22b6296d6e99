/**
 * One host's life: a few concurrent episodes (VM launches over iommufd, legacy-API users such as DPDK,
 * driver rebinds, NVMe hot swaps), each a generator that drives the kernel model and yields the time it waits.
 * An operator mistake is only a choice of operations: whether the kernel refuses them, and with which errno,
 * is the upstream decider's answer (kernelModel.ts), and what QEMU reports follows that answer.
 * State is bounded by the host's topology and its concurrency, never by how many events were generated.
 */
import { createEventBuilder, formatErrno, isVfioDriverName } from '../../schemas/index.js';
import type { Actor, ErrnoName, EventExtras, IommuEventInput } from '../../schemas/index.js';
import type { LabelEventRef } from '../../projections/index.js';
import { createLabelRecorder, type OpenLabel } from './groundTruth.js';
import { createKernelModel, type Emit, type KernelModel, type ParkedKernel } from './kernelModel.js';
import type { Rng, RngState } from './prng.js';
import type { PassthroughUnit, SimDevice, SimHost } from './topology.js';

/** an operator's mistake on a VM launch (one per launch, at `mistakeRate`) */
export const VM_MISTAKES = ['audio-left-on-kernel-driver', 'two-vms-sharing-group', 'kernel-driver-bound-too-early', 'access-before-bind'] as const;
/** operator mistakes: operations the kernel decides by its own rules (refused, or allowed by a setting) */
export const OPERATOR_MISTAKES = [
  ...VM_MISTAKES,
  // a host setting: allow_unsafe_interrupts=1 without interrupt remapping (a share `mistakeRate` of the hosts)
  'unsafe-interrupts-allowed',
  // one legacy container's group handed to two tenants' processes (a share `mistakeRate` of legacy launches)
  'tenants-sharing-group',
] as const;
/**
 * Recorder defects (at `defectRate`): the record is incomplete or says what the kernel did not do. The rules
 * about states the upstream kernel prevents (impossibleUpstream) fire only on these.
 */
export const RECORDER_DEFECTS = [
  'event-lost',
  'seq-reused',
  'delivery-reordered',
  'driver-change-unrecorded',
  'access-outcome-tampered',
  'attach-outcome-tampered',
  'bind-outcome-tampered',
  'group-open-outcome-tampered',
] as const;
export const MISTAKES = [...OPERATOR_MISTAKES, ...RECORDER_DEFECTS] as const;
export type Mistake = (typeof MISTAKES)[number];
type VmDefect = Extract<Mistake, 'driver-change-unrecorded' | 'access-outcome-tampered' | 'attach-outcome-tampered'>;

/** the ground-truth label on the events a mistake produced; `truth:fix:` marks the operator's correction */
export const mistakeLabel = (m: Mistake): string => `truth:mistake:${m}`;
const fixLabel = (m: Mistake): string => `truth:fix:${m}`;

export type EpisodeKind = 'vm' | 'legacy' | 'rebind' | 'hotplug';

export interface HostLifeOptions {
  readonly mistakeRate: number;
  /** the fraction of VM launches (and of steps, for sequence defects, scaled) with a recorder defect */
  readonly defectRate: number;
  /** the stream the operator mistakes added later and the recorder defects draw from (the others keep theirs) */
  readonly defects: Rng;
  readonly traces: boolean;
  readonly startNs: bigint;
  /** at most this many episodes at once on a host; 0: none at all (an idle host: the agent's reads only) */
  readonly concurrency: number;
  /** the pauses between a host's episodes are this many times the busiest host's @defaultValue 1 */
  readonly pause?: number;
  /** mean microseconds between the agent's periodic sysfs reads (a topology snapshot); absent: none */
  readonly heartbeatUs?: number;
}

/**
 * A quiet host (no episode in flight, nothing open, no mistake or defect under way) as a record: its PRNGs'
 * positions, seq and clock, its timers, and how its kernel differs from boot. With the seed that rebuilds its
 * topology, `createHostLife(..., parked)` goes on exactly where it stopped: the same events, byte for byte.
 */
export interface ParkedHostLife {
  readonly rng: RngState;
  readonly defects: RngState;
  readonly seq: number;
  readonly nowNs: bigint;
  readonly atUs: number;
  readonly nextPid: number;
  readonly libvirtdPid: number;
  readonly episodes: number;
  readonly unsafe: boolean;
  /** each slot's next time */
  readonly slots: readonly number[];
  /** the agent's next periodic read */
  readonly beatAt: number;
  /** the host's last event (labels start at it) */
  readonly last: LabelEventRef | null;
  /** the last trace event (a reused seq repeats it); kept only when recorder defects are on */
  readonly lastTrace: IommuEventInput | null;
  readonly kernel: ParkedKernel;
}

interface Process {
  readonly actor: Actor;
  /** the process's next file descriptor, as `pid:fd` */
  readonly fd: () => string;
}

interface Context {
  actor: Actor | undefined;
  correlationId: string | undefined;
}

/** an episode yields how long it waits next, in microseconds */
type Episode = Generator<number, void, void>;

interface Slot {
  /** microseconds since the fleet's start */
  at: number;
  episode: Episode | null;
  /** frees the groups and devices the episode holds */
  release: (() => void) | null;
  readonly ctx: Context;
}

/** QEMU's report of a refused BIND_IOMMUFD, with the errno the kernel returned (strerror) */
const STRERROR: Partial<Record<ErrnoName, string>> = {
  EPERM: 'Operation not permitted',
  EBUSY: 'Device or resource busy',
  EINVAL: 'Invalid argument',
  ENODEV: 'No such device',
  ENOENT: 'No such file or directory',
};
const strerror = (errno: ErrnoName): string => STRERROR[errno] ?? formatErrno(errno);
const bindError = (device: string, errno: ErrnoName): string => `vfio ${device}: error binding device to iommufd: ${strerror(errno)}`;
/** QEMU's report of a refused open of the device's cdev (a release without the VFIO cdev) */
const cdevOpenError = (device: string, errno: ErrnoName): string => `vfio ${device}: Could not open the VFIO device cdev: ${strerror(errno)}`;

/** per step, the chance of a sequence defect is defectRate times this */
const SEQUENCE_DEFECT_PER_STEP = 0.02;

const refOf = (event: IommuEventInput): LabelEventRef => ({ eventId: (event as { id: string }).id, seq: (event as { seq: number }).seq });
const addLabel = (event: IommuEventInput, label: string): void => {
  const e = event as { labels?: string[] };
  e.labels = [...(e.labels ?? []), label];
};
/** another valid UUID for a repeated record: its last 16 bits flipped */
const otherId = (id: string): string => `${id.slice(0, -4)}${((parseInt(id.slice(-4), 16) ^ 0xa5a5) & 0xffff).toString(16).padStart(4, '0')}`;

const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'tyrell'];
const ms = (n: number) => n * 1000;
const s = (n: number) => n * 1_000_000;

/** `parked`: go on from a quiet host's record (the rng and the defects stream resumed from its positions) */
export const createHostLife = (sim: SimHost, rng: Rng, options: HostLifeOptions, parked?: ParkedHostLife) => {
  const builder = createEventBuilder({
    host: sim.name,
    startNs: parked?.nowNs ?? options.startNs,
    stepNs: 1000n,
    source: 'collector',
    ...(parked ? { firstSeq: parked.seq } : {}),
  });
  const out: IommuEventInput[] = [];
  let ctx: Context = { actor: undefined, correlationId: undefined };
  let atUs = parked?.atUs ?? 0;
  let episodes = parked?.episodes ?? 0;
  let nextPid = parked?.nextPid ?? rng.int(1200, 30000);
  const pause = options.pause ?? 1;
  const busyGroups = new Set<number>();
  const busyDevices = new Set<string>();
  /** running VMs by group (their QEMU process), for the mistakes aimed at a group another VM owns */
  const vmByGroup = new Map<number, Process>();
  /** the ground truth: a label per injected mistake (groundTruth.ts) */
  const truth = createLabelRecorder(sim.name, parked?.last ?? null);
  const defects = options.defects;
  /** allow_unsafe_interrupts=1 on a host without interrupt remapping (an operator mistake of the host's set-up) */
  const unsafeHost = parked?.unsafe ?? (options.mistakeRate > 0 && sim.iommu && defects.chance(options.mistakeRate));

  // --- recorder defects: what the collector lost, repeated, reordered or what a record was tampered into ---
  /** the last event handed out in seq order (labels start and end there) */
  let lastEmitted: IommuEventInput | null = null;
  let lastTrace: IommuEventInput | null = parked?.lastTrace ?? null;
  /** records the collector never sees (`type|device`, once each): no seq is taken */
  const unrecorded = new Set<string>();
  /** one pending sequence defect at a time: the next trace event is lost, or held back behind the next event */
  let seqDefect: 'event-lost' | 'delivery-reordered' | null = null;
  let heldBack: IommuEventInput | null = null;
  /** a label that starts at the next event handed out (the one after a lost record) */
  let startNext: Mistake | null = null;
  /**
   * a driver change is going unrecorded (from its dropped udev records to the resync after the VM): no other
   * resync may heal the record meanwhile, so no sequence defect starts and no second one overlaps
   */
  let unseenInFlight = false;
  /** labels the agent's resync snapshot ends; the resync comes at the host's next step */
  const untilResync: OpenLabel[] = [];
  let resyncDue = false;
  /** labels that end when a device fd closes */
  const fdLabels = new Map<string, OpenLabel[]>();

  // events of one step share its time: convert it to ns once per step, not once per event
  let lastAtUs = -1;
  let lastAtNs = 0n;
  const emit: Emit = (type, data, opts) => {
    if (atUs !== lastAtUs) {
      lastAtUs = atUs;
      lastAtNs = options.startNs + BigInt(Math.floor(atUs)) * 1000n;
    }
    const source = opts?.source ?? 'collector';
    const extras: { -readonly [K in keyof EventExtras]: EventExtras[K] } = {};
    // the builder's clock moves on by 1 µs per event; jump only forward
    if (lastAtNs > builder.nowNs) extras.atNs = lastAtNs;
    // uevents carry no process; traces and ioctls do
    if (ctx.actor && source !== 'udev') extras.actor = ctx.actor;
    if (ctx.correlationId) extras.correlationId = ctx.correlationId;
    if (opts?.label) extras.labels = [opts.label];
    if (unrecorded.size > 0) {
      const device = (data as { device?: string }).device;
      if (device !== undefined && unrecorded.delete(`${type}|${device}`)) return;
    }
    const event = builder.raw(type, data as never, extras);
    if (source !== 'collector') (event as { source: string }).source = source;
    if (source === 'ftrace' && seqDefect === 'event-lost') {
      // lost after the collector took its seq: a hole before the next event, until the agent reads sysfs again
      seqDefect = null;
      startNext = 'event-lost';
      resyncDue = true;
      return;
    }
    if (source === 'ftrace' && seqDefect === 'delivery-reordered' && heldBack === null) {
      heldBack = event;
      return;
    }
    out.push(event);
    truth.saw(event);
    lastEmitted = event;
    if (source === 'ftrace') lastTrace = event;
    if (startNext !== null) {
      addLabel(event, mistakeLabel(startNext));
      untilResync.push(truth.start(startNext, null, null));
      startNext = null;
    }
    if (heldBack !== null) {
      // the held-back trace arrives after the later event: its seq fills the gap the later one opened
      const late = heldBack;
      heldBack = null;
      seqDefect = null;
      addLabel(event, mistakeLabel('delivery-reordered'));
      out.push(late);
      truth.record('delivery-reordered', refOf(event), refOf(late));
    }
  };
  /** labels the last event handed out with mistake `m` and starts its label there */
  const startHere = (m: Mistake, group: number | null, device: string | null): OpenLabel => {
    if (lastEmitted !== null) addLabel(lastEmitted, mistakeLabel(m));
    return truth.start(m, group, device);
  };
  /** a label that ends when device fd `fd` closes */
  const untilClose = (fd: string, label: OpenLabel): void => {
    const list = fdLabels.get(fd);
    if (list) list.push(label);
    else fdLabels.set(fd, [label]);
  };
  /** tampering: the last record's outcome rewritten (the kernel's answer was another) */
  const tamperLast = (outcome: Record<string, unknown>): void => {
    (lastEmitted as unknown as { data: { outcome: unknown } }).data.outcome = outcome;
  };
  const kernel: KernelModel = createKernelModel(sim, emit, { traces: options.traces, unsafeInterrupts: unsafeHost }, parked?.kernel);

  /** a device fd bound to an iommufd (as recorded): on an unsafe host, an exposure until the fd closes */
  const noteBound = (name: string, fd: string): void => {
    if (unsafeHost) untilClose(fd, startHere('unsafe-interrupts-allowed', kernel.device(name).group, name));
  };
  const bindIommufd = (name: string, fd: string, ictx: string, label?: string) => {
    const r = kernel.bindIommufd(name, fd, ictx, label);
    if (r.ok) noteBound(name, fd);
    return r;
  };
  const closeDevice = (name: string, fd: string): void => {
    kernel.closeDevice(name, fd);
    for (const l of fdLabels.get(fd) ?? []) l.end();
    fdLabels.delete(fd);
  };

  const processOf = (pid: number, comm: string, extra: Pick<Actor, 'vm' | 'tenant'> = {}): Process => {
    let fd = 3;
    return { actor: { pid, comm, ...extra } as Actor, fd: () => `${pid}:${fd++}` };
  };
  const spawnProcess = (comm: string, extra: Pick<Actor, 'vm' | 'tenant'> = {}): Process => {
    const pid = nextPid;
    nextPid = nextPid >= 4_000_000 ? 1200 : nextPid + rng.int(1, 40);
    return processOf(pid, comm, extra);
  };
  const libvirtdPid = parked?.libvirtdPid ?? nextPid;
  const libvirtd = parked ? processOf(libvirtdPid, 'libvirtd') : spawnProcess('libvirtd');
  const as = (actor: Actor | undefined) => {
    ctx.actor = actor;
  };

  /** on a kernel DMA driver (not vfio, not driver-less): moving it to vfio-pci takes an unbind and a bind */
  const onKernelDriver = (name: string): boolean => {
    const driver = kernel.device(name).driver;
    return driver !== null && !isVfioDriverName(driver);
  };
  const freeUnits = () => sim.units.filter((u) => !busyGroups.has(u.group));
  const byName = new Map(sim.devices.map((d) => [d.name, d]));
  const deviceOf = (name: string): SimDevice => byName.get(name)!;
  // every NVMe but the first (the host's root disk) can be pulled
  const nvmes = sim.devices.filter((d) => d.role === 'nvme').slice(1);

  /** libvirt's nodedev-detach: unbind the kernel driver, bind vfio-pci; `unbound` runs right after the unbind */
  function* toVfio(name: string, label?: string, unbound?: () => void): Episode {
    const d = kernel.device(name);
    if (d.driver === 'vfio-pci') return;
    if (d.driver !== null) {
      kernel.unbindDriver(name, label);
      unbound?.();
    }
    yield ms(rng.int(5, 60));
    kernel.bindDriver(name, 'vfio-pci', label);
    yield ms(rng.int(1, 20));
  }

  /** nodedev-reattach: vfio-pci off, the kernel driver back; `refused` runs right after a refused probe */
  function* toKernel(name: string, label?: string, refused?: () => void): Episode {
    const d = kernel.device(name);
    const driver = deviceOf(name).kernelDriver;
    if (driver === null || d.driver === driver) return;
    if (d.driver !== null) kernel.unbindDriver(name, label);
    yield ms(rng.int(5, 60));
    if (!kernel.bindDriver(name, driver, label).ok) refused?.();
    yield ms(rng.int(5, 200));
  }

  function* vmEpisode(units: PassthroughUnit[], mistake: Mistake | null): Episode {
    const vm = `vm-${sim.name}-${episodes}`;
    const tenant = rng.pick(TENANTS);
    const operator = mistake ? spawnProcess('bash').actor : libvirtd.actor;
    const opened = units.flatMap((u) => u.devices);
    const spares = units.flatMap((u) => u.spares);
    const audio = mistake === 'audio-left-on-kernel-driver' ? opened.find((n) => deviceOf(n).role === 'gpu-audio') : undefined;
    // a driver change the collector never sees: the device stays on its kernel driver in the record
    const unseen = mistake === 'driver-change-unrecorded' ? [...opened, ...spares].find(onKernelDriver) : undefined;
    if (unseen !== undefined) {
      unseenInFlight = true;
      for (const type of ['DriverUnbound', 'DriverBound']) unrecorded.add(`${type}|${unseen}`);
    }
    /** the agent's periodic sysfs read shows the driver the kernel has: the unrecorded change is healed */
    const healUnseen = (): void => {
      if (unseen === undefined) return;
      unrecorded.clear();
      resync();
      unseenInFlight = false;
    };
    const unseenGroup = unseen === undefined ? null : kernel.device(unseen).group;
    let unseenLabel: OpenLabel | undefined;
    as(operator);
    for (const name of [...opened, ...spares]) if (name !== audio) yield* toVfio(name);
    const bindLabel = audio ? mistakeLabel('audio-left-on-kernel-driver') : undefined;
    let notViable: OpenLabel | undefined;

    for (let attempt = 0; ; attempt++) {
      const qemu = spawnProcess('qemu-system-x86', { vm, tenant });
      as(qemu.actor);
      const ictx = qemu.fd();
      const iommufd = kernel.openIommufd(ictx);
      if (!iommufd.ok) {
        // no /dev/iommu on this release (before 6.2): the kernel's answer decides what follows. The iommufd
        // launch stops before it touches a device, and the VMM runs the VM on the legacy container API instead
        healUnseen();
        for (const u of units) yield* legacyEpisode(u, false, { vm, tenant });
        return;
      }
      yield ms(rng.int(1, 5));
      const fds = new Map<string, string>();
      let refused: { name: string; errno: ErrnoName; call: 'open' | 'bind' } | undefined;
      for (const name of opened) {
        const fd = qemu.fd();
        const open = kernel.openDevice(name, fd);
        if (!open.ok) {
          // no cdev node (a release without the VFIO cdev): nothing was opened, nothing to bind
          refused = { name, errno: open.errno, call: 'open' };
          break;
        }
        fds.set(name, fd);
        let early: OpenLabel | undefined;
        if ((mistake === 'access-before-bind' || mistake === 'access-outcome-tampered') && fds.size === 1 && !kernel.access(name, fd, 'mmap', undefined).ok) {
          // refused -EINVAL; the tampered record says it succeeded
          if (mistake === 'access-outcome-tampered') tamperLast({ ok: true });
          early = startHere(mistake, kernel.device(name).group, name);
        }
        const r = bindIommufd(name, fd, ictx, attempt === 0 ? bindLabel : undefined);
        early?.end();
        if (!r.ok) {
          refused = { name, errno: r.errno, call: 'bind' };
          // the refusal the audio function's kernel driver causes: labelled until the operator's fix
          if (audio !== undefined && attempt === 0 && r.errno === 'EPERM') notViable = truth.start('audio-left-on-kernel-driver', kernel.device(name).group, name);
          break;
        }
        // the first claim of the group the unseen device is in: the record shows a kernel driver inside it
        if (unseen !== undefined && unseenLabel === undefined && kernel.device(name).group === unseenGroup) unseenLabel = startHere('driver-change-unrecorded', unseenGroup, unseen);
        kernel.access(name, fd, 'ioctl', 'VFIO_DEVICE_GET_INFO');
        yield rng.int(50, 2000);
      }
      if (refused !== undefined) {
        const group = kernel.device(refused.name).group ?? undefined;
        emit(
          'PassthroughErrorReported',
          {
            origin: 'qemu',
            device: refused.name,
            ...(group === undefined ? {} : { group }),
            message: refused.call === 'bind' ? bindError(refused.name, refused.errno) : cdevOpenError(refused.name, refused.errno),
          },
          { label: attempt === 0 && refused.call === 'bind' ? bindLabel : undefined },
        );
        for (const [name, fd] of fds) closeDevice(name, fd);
        healUnseen();
        kernel.closeIommufd(ictx);
        // the audio function's fix helps only a refused bind; a refused open is the release's answer
        if (audio === undefined || attempt > 0 || refused.call === 'open') {
          notViable?.end();
          return;
        }
        // the operator reads the error and moves the audio function too, then starts the VM again
        yield s(rng.int(20, 600));
        as(operator);
        yield* toVfio(audio, fixLabel('audio-left-on-kernel-driver'), () => notViable?.end());
        continue;
      }
      for (const u of units) vmByGroup.set(u.group, qemu);
      let ioas = kernel.ioasAlloc(ictx);
      kernel.ioasMap(ictx, ioas, 0n, 0xc0000000n);
      kernel.ioasMap(ictx, ioas, 0x100000000n, BigInt(rng.int(1, 60)) * 0x40000000n);
      // tampered: the second function of a shared group is recorded on a page table of its own (the kernel
      // put it on its group's: one page table per group)
      const splitUnit = mistake === 'attach-outcome-tampered' ? units.find((u) => u.devices.length >= 2) : undefined;
      let split: OpenLabel | undefined;
      for (const [name, fd] of fds) {
        const r = kernel.attach(name, fd, ioas);
        if (r.ok && name === splitUnit?.devices[1]) {
          tamperLast({ ok: true, ptId: r.ptId + 1000 });
          split = startHere('attach-outcome-tampered', splitUnit.group, null);
        }
        yield rng.int(20, 500);
      }
      // running: sometimes the VMM moves to a new address space (replace, no blocking window: S7)
      yield s(rng.exp(1200));
      if (rng.chance(0.15)) {
        const next = kernel.ioasAlloc(ictx);
        kernel.ioasMap(ictx, next, 0n, 0xc0000000n);
        for (const [name, fd] of fds) kernel.attach(name, fd, next);
        // every member on the new page table again
        split?.end();
        kernel.destroy(ictx, ioas);
        ioas = next;
        yield s(rng.exp(600));
      }
      // shutdown; the too-early mistake binds a spare's kernel driver back while QEMU still owns the group
      const early = mistake === 'kernel-driver-bound-too-early' ? spares.find((n) => deviceOf(n).kernelDriver !== null) : undefined;
      let tooEarly: OpenLabel | undefined;
      if (early !== undefined) {
        as(operator);
        const group = kernel.device(early).group;
        yield* toKernel(early, mistakeLabel('kernel-driver-bound-too-early'), () => (tooEarly = truth.start('kernel-driver-bound-too-early', group, early)));
        as(qemu.actor);
      }
      for (const [name, fd] of fds) kernel.detach(name, fd);
      split?.end();
      kernel.destroy(ictx, ioas);
      for (const [name, fd] of fds) closeDevice(name, fd);
      // the last close released the group: the refused probe's label ends there
      tooEarly?.end();
      unseenLabel?.end();
      healUnseen();
      kernel.closeIommufd(ictx);
      for (const u of units) vmByGroup.delete(u.group);
      yield ms(rng.int(50, 3000));
      as(operator);
      if (early !== undefined) yield* toKernel(early, fixLabel('kernel-driver-bound-too-early'));
      // dedicated passthrough hosts leave vfio-pci bound; others give the devices back to the host
      if (rng.chance(0.5)) for (const name of [...opened, ...spares]) yield* toKernel(name);
      return;
    }
  }

  /**
   * A VM is pointed at a spare function of a group another VM owns: the decider refuses the BIND (-EPERM,
   * §1.4 step 10). Tampered: the owner's own QEMU binds the spare to a second iommufd, refused the same way,
   * and the record says it was bound (two owners of one group).
   */
  function* conflictEpisode(spare: string, owner: Process, tampered: boolean): Episode {
    const mistake: Mistake = tampered ? 'bind-outcome-tampered' : 'two-vms-sharing-group';
    // no yield between open and close: the owning VM's episode must not unbind the spare under our fd
    const qemu = tampered ? owner : spawnProcess('qemu-system-x86', { vm: `vm-${sim.name}-${episodes}`, tenant: rng.pick(TENANTS) });
    as(qemu.actor);
    const ictx = qemu.fd();
    const fd = qemu.fd();
    if (!kernel.openIommufd(ictx).ok) return;
    if (!kernel.openDevice(spare, fd).ok) {
      kernel.closeIommufd(ictx);
      return;
    }
    const r = kernel.bindIommufd(spare, fd, ictx, tampered ? undefined : mistakeLabel(mistake));
    const group = kernel.device(spare).group!;
    if (tampered) {
      if (!r.ok) {
        tamperLast({ ok: true, devId: 1 });
        untilClose(fd, startHere(mistake, group, null));
        noteBound(spare, fd);
      }
    } else {
      const label = !r.ok && r.errno === 'EPERM' ? truth.start(mistake, group, spare) : undefined;
      if (label) untilClose(fd, label);
      if (!r.ok) {
        emit(
          'PassthroughErrorReported',
          { origin: 'qemu', device: spare, group, message: `${bindError(spare, r.errno)} (group ${group} in use by ${owner.actor.vm ?? 'another VM'})` },
          { label: mistakeLabel(mistake) },
        );
      }
    }
    closeDevice(spare, fd);
    kernel.closeIommufd(ictx);
    // QEMU exits
    yield ms(rng.int(1, 10));
  }

  /**
   * A tool opens /dev/vfio/N of a group a VM holds through its cdev: refused (-EBUSY, §1.6), and the tampered
   * record says it was opened (the legacy node and a cdev bind at once); then it closes it.
   */
  function* groupOpenEpisode(group: number): Episode {
    const tool = spawnProcess('dpdk-testpmd');
    as(tool.actor);
    const fd = tool.fd();
    if (!kernel.openGroup(group, fd).ok) {
      tamperLast({ ok: true });
      const label = startHere('group-open-outcome-tampered', group, null);
      // the kernel holds no such fd: the close is the record's too
      emit('VfioGroupClosed', { group, groupFd: fd });
      label.end();
    }
    yield ms(rng.int(1, 10));
  }

  /**
   * DPDK (or an older QEMU) on the legacy container API (§1.6); `vm`: a VM whose iommufd launch found no
   * /dev/iommu, run by its QEMU on this API instead
   */
  function* legacyEpisode(unit: PassthroughUnit, shared: boolean, vm?: { readonly vm: string; readonly tenant: string }): Episode {
    const comm = vm !== undefined ? 'qemu-system-x86' : rng.chance(0.6) ? 'dpdk-testpmd' : 'qemu-kvm';
    const tenancy = vm ?? (rng.chance(0.5) ? { tenant: rng.pick(TENANTS) } : {});
    // the mistake: the group fd is handed to a second tenant's process, which takes the second function
    const tenants = shared ? [defects.pick(TENANTS)] : [];
    if (shared) tenants.push(defects.pick(TENANTS.filter((t) => t !== tenants[0])));
    const app = spawnProcess(comm, shared ? { tenant: tenants[0]! } : tenancy);
    const other = shared ? spawnProcess('qemu-kvm', { tenant: tenants[1]! }) : undefined;
    as(libvirtd.actor);
    for (const name of [...unit.devices, ...unit.spares]) yield* toVfio(name);
    as(app.actor);
    const container = app.fd();
    kernel.openContainer(container);
    const groupFd = app.fd();
    if (!kernel.openGroup(unit.group, groupFd).ok) return kernel.closeContainer(container);
    kernel.groupStatus(unit.group, groupFd);
    if (kernel.setContainer(unit.group, groupFd, container).ok) {
      kernel.setIommu(container);
      const fds: [string, string][] = [];
      let mixed: OpenLabel | undefined;
      for (const [i, name] of unit.devices.entries()) {
        const user = i > 0 && other !== undefined ? other : app;
        as(user.actor);
        const fd = user.fd();
        if (kernel.getDeviceFd(unit.group, groupFd, name, fd).ok) {
          fds.push([name, fd]);
          if (user === other && fds.length > 1 && mixed === undefined) mixed = startHere('tenants-sharing-group', unit.group, null);
          kernel.access(name, fd, 'ioctl', 'VFIO_DEVICE_GET_INFO');
        }
      }
      as(app.actor);
      yield s(rng.exp(900));
      for (const [name, fd] of fds) {
        closeDevice(name, fd);
        // one tenant left with access
        mixed?.end();
      }
    }
    kernel.closeGroup(unit.group, groupFd);
    kernel.closeContainer(container);
    yield ms(rng.int(10, 2000));
    as(libvirtd.actor);
    if (rng.chance(0.5)) for (const name of [...unit.devices, ...unit.spares]) yield* toKernel(name);
  }

  /** a driver reload on a device nobody passes through */
  function* rebindEpisode(name: string): Episode {
    as(spawnProcess(rng.pick(['modprobe', 'bash', 'systemd-udevd'])).actor);
    const driver = kernel.device(name).driver!;
    kernel.unbindDriver(name);
    yield ms(rng.int(10, 3000));
    kernel.bindDriver(name, driver);
  }

  /** an NVMe drive pulled and reinserted: it comes back in the lowest free group */
  function* hotplugEpisode(name: string, unit: PassthroughUnit | undefined): Episode {
    as(undefined);
    const d = deviceOf(name);
    kernel.hotRemove(name);
    yield s(rng.int(5, 120));
    kernel.hotAdd(d);
    if (unit !== undefined && d.group !== null) unit.group = d.group;
  }

  const slots: Slot[] = Array.from({ length: options.concurrency === 0 ? 0 : Math.max(1, options.concurrency) }, (_, i) => ({
    // the busiest hosts start at once; a calmer host's first episode waits like its others
    at: parked?.slots[i] ?? (i === 0 && pause === 1 ? 0 : rng.exp(s(30) * pause)),
    episode: null,
    release: null,
    ctx: { actor: undefined, correlationId: undefined },
  }));

  /** pick the next episode for a free slot; null when there is nothing to do right now */
  const startEpisode = (slot: Slot): Episode | null => {
    const free = freeUnits();
    const isFree = (d: SimDevice) => !busyDevices.has(d.name) && (d.group === null || !busyGroups.has(d.group));
    const kind = rng.weighted<EpisodeKind | null>([
      ['vm', free.length > 0 ? 60 : 0],
      ['legacy', free.length > 0 ? 10 : 0],
      ['rebind', 20],
      ['hotplug', nvmes.length > 0 ? 4 : 0],
      [null, 6],
    ]);
    // the candidate lists are built only for the kind drawn: this runs on every idle slot
    const kernelDevices = kind === 'rebind' ? sim.devices.filter((d) => d.kernelDriver !== null && isFree(d) && kernel.device(d.name).driver === d.kernelDriver) : [];
    const swappable = kind === 'hotplug' ? nvmes.filter(isFree) : [];
    if ((kind === 'rebind' && kernelDevices.length === 0) || (kind === 'hotplug' && swappable.length === 0)) return null;
    if (kind === null) return null;
    episodes += 1;
    slot.ctx.correlationId = `${sim.name}/${kind}-${episodes}`;
    slot.ctx.actor = undefined;
    const hold = (groups: number[], names: string[], episode: Episode): Episode => {
      for (const g of groups) busyGroups.add(g);
      for (const n of names) busyDevices.add(n);
      slot.release = () => {
        for (const g of groups) busyGroups.delete(g);
        for (const n of names) busyDevices.delete(n);
      };
      return episode;
    };
    switch (kind) {
      case 'vm': {
        const first = rng.pick(free);
        const units = first.kind === 'vf' ? free.filter((u) => u.kind === 'vf').slice(0, rng.int(1, 4)) : [first];
        let mistake: Mistake | null = null;
        if (options.defectRate > 0 && defects.chance(options.defectRate)) {
          const applicable: (VmDefect | 'bind-outcome-tampered' | 'group-open-outcome-tampered')[] = ['access-outcome-tampered'];
          const quiet = !unseenInFlight && !resyncDue && seqDefect === null && startNext === null;
          if (quiet && units.some((u) => [...u.devices, ...u.spares].some(onKernelDriver))) applicable.push('driver-change-unrecorded');
          if (units.some((u) => u.devices.length >= 2)) applicable.push('attach-outcome-tampered');
          const owned = sim.units.filter((u) => vmByGroup.has(u.group));
          const spareOf = (u: PassthroughUnit) => u.spares.find((n) => kernel.device(n).driver === 'vfio-pci' && !busyDevices.has(n));
          const conflicts = owned.filter((u) => spareOf(u) !== undefined);
          if (conflicts.length > 0) applicable.push('bind-outcome-tampered');
          if (owned.length > 0) applicable.push('group-open-outcome-tampered');
          const defect = defects.pick(applicable);
          if (defect === 'bind-outcome-tampered') {
            const target = defects.pick(conflicts);
            const spare = spareOf(target)!;
            return hold([], [spare], conflictEpisode(spare, vmByGroup.get(target.group)!, true));
          }
          if (defect === 'group-open-outcome-tampered') return hold([], [], groupOpenEpisode(defects.pick(owned).group));
          mistake = defect;
        } else if (rng.chance(options.mistakeRate)) {
          const applicable: Mistake[] = ['access-before-bind'];
          if (units.some((u) => u.devices.some((n) => deviceOf(n).role === 'gpu-audio' && kernel.device(n).driver !== 'vfio-pci'))) applicable.push('audio-left-on-kernel-driver');
          if (units.some((u) => u.spares.some((n) => deviceOf(n).kernelDriver !== null))) applicable.push('kernel-driver-bound-too-early');
          const conflicts = sim.units.filter((u) => vmByGroup.has(u.group) && u.spares.some((n) => kernel.device(n).driver === 'vfio-pci' && !busyDevices.has(n)));
          if (conflicts.length > 0) applicable.push('two-vms-sharing-group');
          mistake = rng.pick(applicable);
          if (mistake === 'two-vms-sharing-group') {
            const target = rng.pick(conflicts);
            const spare = target.spares.find((n) => kernel.device(n).driver === 'vfio-pci' && !busyDevices.has(n))!;
            slot.ctx.correlationId = `${sim.name}/vm-${episodes}`;
            return hold([], [spare], conflictEpisode(spare, vmByGroup.get(target.group)!, false));
          }
        }
        return hold(units.map((u) => u.group), [], vmEpisode(units, mistake));
      }
      case 'legacy': {
        const unit = rng.pick(free);
        const shared = options.mistakeRate > 0 && unit.devices.length >= 2 && defects.chance(options.mistakeRate);
        return hold([unit.group], [], legacyEpisode(unit, shared));
      }
      case 'rebind': {
        const d = rng.pick(kernelDevices);
        return hold(d.group === null ? [] : [d.group], [d.name], rebindEpisode(d.name));
      }
      case 'hotplug': {
        const d = rng.pick(swappable);
        const unit = sim.units.find((u) => u.devices.includes(d.name));
        return hold(d.group === null ? [] : [d.group], [d.name], hotplugEpisode(d.name, unit));
      }
      default: {
        const never: never = kind;
        throw new Error(`unknown episode ${String(never)}`);
      }
    }
  };

  /** the agent's next periodic sysfs read (never without `heartbeatUs`) */
  let beatAt = parked?.beatAt ?? (options.heartbeatUs ? rng.exp(options.heartbeatUs) : Infinity);
  let snapshotTaken = parked !== undefined;
  let nextAtUs = 0;
  const advance = (): void => {
    if (!snapshotTaken) {
      snapshotTaken = true;
      snapshot();
      return;
    }
    if (resyncDue && heldBack === null) {
      resync();
      return;
    }
    if (options.defectRate > 0 && options.traces && seqDefect === null && startNext === null && !resyncDue && !unseenInFlight && defects.chance(options.defectRate * SEQUENCE_DEFECT_PER_STEP)) {
      const kind = defects.pick(['event-lost', 'seq-reused', 'delivery-reordered'] as const);
      if (kind !== 'seq-reused') seqDefect = kind;
      else if (lastTrace !== null) {
        // the collector sends a new record under a seq it already used
        const repeat = { ...lastTrace, id: otherId((lastTrace as { id: string }).id), labels: [mistakeLabel(kind)] } as IommuEventInput;
        out.push(repeat);
        untilResync.push(truth.startAt(kind, null, null, refOf(repeat)));
        resyncDue = true;
      }
    }
    let slot = slots[0];
    for (const candidate of slots) if (candidate.at < slot!.at) slot = candidate;
    if (slot === undefined || beatAt <= slot.at) {
      // the agent's periodic read (it waits while an unrecorded driver change must stay unseen)
      atUs = beatAt;
      if (!unseenInFlight) resync();
      beatAt += rng.exp(options.heartbeatUs!);
      return;
    }
    atUs = slot.at;
    ctx = slot.ctx;
    if (slot.episode === null) {
      slot.episode = startEpisode(slot);
      if (slot.episode === null) {
        slot.at += rng.exp(s(60) * pause);
        return;
      }
    }
    const r = slot.episode.next();
    if (r.done) {
      slot.episode = null;
      slot.release?.();
      slot.release = null;
      slot.at += rng.exp(s(90) * pause);
    } else slot.at += Math.max(1, r.value);
  };
  const agent = (): Context => ({ actor: { pid: 1, comm: 'iommutrail-agent' }, correlationId: undefined });
  const snapshot = (): void => {
    ctx = agent();
    kernel.snapshot();
  };
  /** the agent reads sysfs again: the lost or repeated record's labels end there */
  function resync(): void {
    const saved = ctx;
    ctx = agent();
    kernel.resync();
    ctx = saved;
    resyncDue = false;
    for (const l of untilResync.splice(0)) l.end();
  }

  const quiet = (): boolean =>
    snapshotTaken &&
    out.length === 0 &&
    slots.every((slot) => slot.episode === null) &&
    !resyncDue &&
    seqDefect === null &&
    heldBack === null &&
    startNext === null &&
    !unseenInFlight &&
    truth.size() === 0 &&
    fdLabels.size === 0 &&
    untilResync.length === 0 &&
    unrecorded.size === 0 &&
    vmByGroup.size === 0 &&
    kernel.quiet();

  return {
    name: sim.name,
    /** microseconds of the next thing this host does (kept by step: the fleet's heap asks on every compare) */
    nextAt: (): number => nextAtUs,
    /** advance one step; the events it produced are in drain() */
    step(): void {
      advance();
      nextAtUs = beatAt;
      for (const slot of slots) if (slot.at < nextAtUs) nextAtUs = slot.at;
    },
    /** the host as a record while it is quiet (`ParkedHostLife`), else null: it has something in flight */
    /** nothing in flight: `park()` would give a record (cheap: asked after every step) */
    quiet: (): boolean => quiet(),
    park(): ParkedHostLife | null {
      const parkedKernel = quiet() ? kernel.park() : null;
      if (parkedKernel === null) return null;
      return {
        rng: rng.state(),
        defects: defects.state(),
        seq: builder.nextSeq,
        nowNs: builder.nowNs,
        atUs,
        nextPid,
        libvirtdPid,
        episodes,
        unsafe: unsafeHost,
        slots: slots.map((slot) => slot.at),
        beatAt,
        last: truth.last(),
        lastTrace: options.defectRate > 0 ? lastTrace : null,
        kernel: parkedKernel,
      };
    },
    drain(): IommuEventInput[] {
      return out.splice(0, out.length);
    },
    /** the ground-truth labels finished since the last call (their events were all drained already or in this step) */
    drainLabels: () => truth.drain(),
    /** labels of mistakes still under way (until null) */
    pendingLabels: () => truth.pending(),
    /** sizes of the host's state, for the bounded-memory check */
    stateSize: () => ({ ...kernel.size(), openLabels: truth.size(), fdLabels: fdLabels.size, busyGroups: busyGroups.size, busyDevices: busyDevices.size, vms: vmByGroup.size, buffered: out.length }),
  };
};

export type HostLife = ReturnType<typeof createHostLife>;
