import { createEventBuilder, type EventBuilder, type IommuEvent } from '../../schemas/index.js';

/**
 * A large, realistic, deterministic history for benchmarks and property tests: several hosts, each with
 * singleton NIC groups and two-function GPU+audio groups, cycling through the ownership lifecycle
 * (open, bind, IOAS alloc, attach, map, detach, close; the audio function rebinding to vfio-pci and
 * back; an occasional refused bind while the group is not viable). Events interleave across hosts the
 * way a store's global order would. Events are built unvalidated (`builder.raw`) for speed: the shapes
 * are the catalogue's own.
 */
export interface HistoryOptions {
  readonly events: number;
  /** @defaultValue 8 */
  readonly hosts?: number;
  /** singleton groups per host @defaultValue 16 */
  readonly nicGroups?: number;
  /** GPU+audio groups per host @defaultValue 4 */
  readonly gpuGroups?: number;
  /**
   * finish every started cycle (so the history ends with every group released and can be replayed
   * again after a renumbering of seq); the result is then a little longer than `events` @defaultValue false
   */
  readonly finishCycles?: boolean;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

export const generateHistory = (options: HistoryOptions): IommuEvent[] => [...historyEvents(options)];

/**
 * {@link generateHistory} one event at a time (the same events, in the same order): a history too large to
 * hold (1e7 events) can be written as it is made.
 */
export function* historyEvents(options: HistoryOptions): Generator<IommuEvent> {
  const hostCount = options.hosts ?? 8;
  const nics = options.nicGroups ?? 16;
  const gpus = options.gpuGroups ?? 4;
  const first: IommuEvent[] = [];

  interface HostGen {
    b: EventBuilder;
    cycle: number;
    pending: (() => unknown)[];
  }
  const hosts: HostGen[] = [];
  for (let i = 0; i < hostCount; i++) {
    const b = createEventBuilder({ host: `node-${String(i).padStart(3, '0')}`, stepNs: 250_000n });
    const devices = [];
    const groups = [];
    for (let n = 0; n < nics; n++) {
      const dev = `0000:${hex2(0x10 + n)}:00.0`;
      devices.push({ device: dev, vendorId: '8086', deviceId: '1521', classCode: '020000', driver: 'vfio-pci', group: 100 + n });
      groups.push({ group: 100 + n, devices: [dev] });
    }
    for (let n = 0; n < gpus; n++) {
      const gpu = `0000:${hex2(0x80 + n)}:00.0`;
      const audio = `0000:${hex2(0x80 + n)}:00.1`;
      devices.push({ device: gpu, vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'vfio-pci', group: 200 + n });
      devices.push({ device: audio, vendorId: '10de', deviceId: '10f8', classCode: '040300', driver: 'snd_hda_intel', group: 200 + n });
      groups.push({ group: 200 + n, devices: [gpu, audio] });
    }
    first.push(b.raw('TopologySnapshotTaken', { capabilities: { iommu: true, interruptRemapping: true }, groups, devices }) as IommuEvent);
    hosts.push({ b, cycle: 0, pending: [] });
  }

  const nicCycle = (h: HostGen): void => {
    const c = h.cycle++;
    const b = h.b;
    const n = c % nics;
    const dev = `0000:${hex2(0x10 + n)}:00.0`;
    const pid = 1000 + (c % 5000);
    const fd = `${pid}:7`;
    const ictx = `${pid}:3`;
    const actor = { actor: { pid, comm: 'qemu-kvm', vm: `vm-${c % 97}`, tenant: `t-${c % 13}` } };
    h.pending.push(
      () => b.raw('IommufdOpened', { ictx, outcome: { ok: true } }, actor),
      () => b.raw('VfioDeviceOpened', { device: dev, deviceFd: fd, outcome: { ok: true } }, actor),
      () => b.raw('VfioDeviceBindIommufdIssued', { device: dev, deviceFd: fd, ictx, outcome: { ok: true, devId: 1 } }, actor),
      () => b.raw('TraceAttachDeviceToDomain', { device: dev }),
      () => b.raw('IommufdIoasAllocIssued', { ictx, outcome: { ok: true, ioasId: 2 } }),
      () => b.raw('VfioDeviceAttachPtIssued', { device: dev, deviceFd: fd, ptId: 2, outcome: { ok: true, ptId: 3 } }),
      () => b.raw('TraceAttachDeviceToDomain', { device: dev }),
      () => b.raw('IommufdIoasMapIssued', { ictx, ioasId: 2, iova: '0x100000', length: '0x200000', outcome: { ok: true, iova: '0x100000' } }),
      () => b.raw('IommufdIoasMapIssued', { ictx, ioasId: 2, iova: '0x400000', length: '0x200000', outcome: { ok: true, iova: '0x400000' } }),
      () => b.raw('IommufdIoasUnmapIssued', { ictx, ioasId: 2, iova: '0x400000', length: '0x200000', outcome: { ok: true, length: '0x200000' } }),
      () => b.raw('IommufdClosed', { ictx }),
      () => b.raw('VfioDeviceDetachPtIssued', { device: dev, deviceFd: fd, outcome: { ok: true } }),
      () => b.raw('VfioDeviceClosed', { device: dev, deviceFd: fd }),
      () => b.raw('TraceAttachDeviceToDomain', { device: dev }),
    );
  };

  const gpuCycle = (h: HostGen): void => {
    const c = h.cycle++;
    const b = h.b;
    const n = c % gpus;
    const gpu = `0000:${hex2(0x80 + n)}:00.0`;
    const audio = `0000:${hex2(0x80 + n)}:00.1`;
    const pid = 7000 + (c % 5000);
    const ictx = `${pid}:3`;
    const gfd = `${pid}:8`;
    const afd = `${pid}:9`;
    const actor = { actor: { pid, comm: 'qemu-kvm', vm: `vm-g${c % 31}`, tenant: `t-${c % 13}` } };
    h.pending.push(
      () => b.raw('IommufdOpened', { ictx, outcome: { ok: true } }, actor),
      () => b.raw('VfioDeviceOpened', { device: gpu, deviceFd: gfd, outcome: { ok: true } }, actor),
      // not viable yet: the audio function is on snd_hda_intel
      () => b.raw('VfioDeviceBindIommufdIssued', { device: gpu, deviceFd: gfd, ictx, outcome: { ok: false, errno: 'EPERM' } }, actor),
      () => b.raw('DriverUnbound', { device: audio }),
      () => b.raw('DriverBound', { device: audio, driver: 'vfio-pci' }),
      () => b.raw('VfioDeviceBindIommufdIssued', { device: gpu, deviceFd: gfd, ictx, outcome: { ok: true, devId: 1 } }, actor),
      () => b.raw('VfioDeviceOpened', { device: audio, deviceFd: afd, outcome: { ok: true } }, actor),
      () => b.raw('VfioDeviceBindIommufdIssued', { device: audio, deviceFd: afd, ictx, outcome: { ok: true, devId: 2 } }, actor),
      () => b.raw('IommufdIoasAllocIssued', { ictx, outcome: { ok: true, ioasId: 3 } }),
      () => b.raw('VfioDeviceAttachPtIssued', { device: gpu, deviceFd: gfd, ptId: 3, outcome: { ok: true, ptId: 4 } }),
      () => b.raw('VfioDeviceAttachPtIssued', { device: audio, deviceFd: afd, ptId: 3, outcome: { ok: true, ptId: 4 } }),
      () => b.raw('VfioDeviceDetachPtIssued', { device: gpu, deviceFd: gfd, outcome: { ok: true } }),
      () => b.raw('VfioDeviceDetachPtIssued', { device: audio, deviceFd: afd, outcome: { ok: true } }),
      () => b.raw('VfioDeviceClosed', { device: gpu, deviceFd: gfd }),
      () => b.raw('VfioDeviceClosed', { device: audio, deviceFd: afd }),
      () => b.raw('IommufdClosed', { ictx }),
      () => b.raw('DriverUnbound', { device: audio }),
      () => b.raw('DriverBound', { device: audio, driver: 'snd_hda_intel' }),
    );
  };

  // each host's topology first, then round-robin over hosts, one event at a time, refilling a host's queue
  // with its next cycle
  yield* first;
  let made = first.length;
  let turn = 0;
  while (made < options.events) {
    const h = hosts[turn++ % hostCount]!;
    if (h.pending.length === 0) {
      if (h.cycle % 5 === 4) gpuCycle(h);
      else nicCycle(h);
      h.pending.reverse();
    }
    made++;
    yield h.pending.pop()!() as IommuEvent;
  }
  if (options.finishCycles) for (const h of hosts) while (h.pending.length > 0) yield h.pending.pop()!() as IommuEvent;
}
