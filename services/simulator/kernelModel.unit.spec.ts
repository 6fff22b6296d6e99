import { describe, expect, it } from 'vitest';
import { createKernelModel, type Emit } from './kernelModel.js';
import type { SimDevice, SimHost } from './topology.js';

// protocol.md §3 topology: group 7 = GPU + HDMI audio, group 12 = NIC, group 15 = RMRR USB controller
const GPU = '0000:01:00.0';
const AUDIO = '0000:01:00.1';
const NIC = '0000:03:00.0';
const USB = '0000:00:14.0';

const device = (name: string, group: number, kernelDriver: string, extra: Partial<SimDevice> = {}): SimDevice => ({
  name,
  group,
  kernelDriver,
  vendorId: '10de',
  deviceId: '2204',
  classCode: '030000',
  role: 'gpu',
  ...extra,
});

const givenHost = () => {
  const host: SimHost = {
    name: 'h1',
    profile: 'gpu',
    iommu: true,
    kernelRelease: '6.8.0',
    devices: [device(GPU, 7, 'nvidia'), device(AUDIO, 7, 'snd_hda_intel', { role: 'gpu-audio' }), device(NIC, 12, 'ice', { role: 'nic-pf' }), device(USB, 15, 'xhci_hcd', { requireDirect: true, role: 'integrated' })],
    groups: [
      { group: 7, devices: [GPU, AUDIO] },
      { group: 12, devices: [NIC] },
      { group: 15, devices: [USB] },
    ],
    units: [],
  };
  const events: { type: string; data: Record<string, unknown>; label?: string | undefined }[] = [];
  const emit: Emit = (type, data, opts) => events.push({ type, data: data as Record<string, unknown>, label: opts?.label });
  const kernel = createKernelModel(host, emit, { traces: true });
  const traces = () => events.filter((e) => e.type === 'TraceAttachDeviceToDomain').map((e) => e.data.device);
  const clear = () => events.splice(0, events.length);
  kernel.snapshot();
  clear();
  return { kernel, events, traces, clear };
};

const toVfio = (kernel: ReturnType<typeof givenHost>['kernel'], ...names: string[]) => {
  for (const n of names) {
    kernel.unbindDriver(n);
    kernel.bindDriver(n, 'vfio-pci');
  }
};

describe('simulator kernel model (protocol.md §1)', () => {
  it('S11: given the audio function on its kernel driver, when the GPU binds, then -EPERM; after the audio unbinds, the bind moves both functions to blocking', () => {
    const { kernel, traces, clear } = givenHost();
    toVfio(kernel, GPU);
    kernel.openIommufd('10:3');
    kernel.openDevice(GPU, '10:4');
    expect(kernel.bindIommufd(GPU, '10:4', '10:3')).toEqual({ ok: false, errno: 'EPERM' });
    kernel.unbindDriver(AUDIO);
    clear();
    expect(kernel.bindIommufd(GPU, '10:4', '10:3')).toMatchObject({ ok: true });
    expect(traces()).toEqual([GPU, AUDIO]);
  });

  it('S13: given the group owned through the GPU, when the audio binds to the same iommufd then no domain change; to another iommufd then -EPERM', () => {
    const { kernel, traces, clear } = givenHost();
    toVfio(kernel, GPU, AUDIO);
    kernel.openIommufd('10:3');
    kernel.openIommufd('20:3');
    kernel.openDevice(GPU, '10:4');
    kernel.bindIommufd(GPU, '10:4', '10:3');
    kernel.openDevice(AUDIO, '20:4');
    expect(kernel.bindIommufd(AUDIO, '20:4', '20:3')).toEqual({ ok: false, errno: 'EPERM' });
    kernel.openDevice(AUDIO, '10:5');
    clear();
    expect(kernel.bindIommufd(AUDIO, '10:5', '10:3')).toMatchObject({ ok: true });
    expect(traces()).toEqual([]);
  });

  it('S15/S17: given the GPU on an IOAS, when the audio attaches to another IOAS then -EINVAL; same IOAS joins; a non-last detach changes nothing, the last one blocks', () => {
    const { kernel, traces, clear } = givenHost();
    toVfio(kernel, GPU, AUDIO);
    kernel.openIommufd('10:3');
    kernel.openDevice(GPU, '10:4');
    kernel.openDevice(AUDIO, '10:5');
    kernel.bindIommufd(GPU, '10:4', '10:3');
    kernel.bindIommufd(AUDIO, '10:5', '10:3');
    const ioas = kernel.ioasAlloc('10:3');
    const other = kernel.ioasAlloc('10:3');
    const attached = kernel.attach(GPU, '10:4', ioas);
    expect(attached.ok).toBe(true);
    expect(kernel.attach(AUDIO, '10:5', other)).toEqual({ ok: false, errno: 'EINVAL' });
    clear();
    expect(kernel.attach(AUDIO, '10:5', ioas)).toEqual(attached);
    kernel.detach(GPU, '10:4');
    expect(traces()).toEqual([]);
    kernel.detach(AUDIO, '10:5');
    expect(traces()).toEqual([GPU, AUDIO]);
  });

  it('S7: given an attached device, when it attaches to a new IOAS then the group moves to a new hwpt and the old IOAS can be destroyed', () => {
    const { kernel, traces, clear } = givenHost();
    toVfio(kernel, NIC);
    kernel.openIommufd('10:3');
    kernel.openDevice(NIC, '10:4');
    kernel.bindIommufd(NIC, '10:4', '10:3');
    const a = kernel.ioasAlloc('10:3');
    const first = kernel.attach(NIC, '10:4', a);
    const b = kernel.ioasAlloc('10:3');
    expect(kernel.destroy('10:3', a)).toEqual({ ok: false, errno: 'EBUSY' });
    clear();
    const second = kernel.attach(NIC, '10:4', b);
    expect(second.ok && first.ok && second.ptId !== first.ptId).toBe(true);
    expect(traces()).toEqual([NIC]);
    expect(kernel.destroy('10:3', a)).toEqual({ ok: true });
  });

  it('given a user-owned group, when a kernel driver binds into it then -EBUSY (DriverBindRefused); after the last close it binds', () => {
    const { kernel, events } = givenHost();
    toVfio(kernel, GPU);
    kernel.unbindDriver(AUDIO);
    kernel.openIommufd('10:3');
    kernel.openDevice(GPU, '10:4');
    kernel.bindIommufd(GPU, '10:4', '10:3');
    expect(kernel.bindDriver(AUDIO, 'snd_hda_intel', 'x')).toEqual({ ok: false, errno: 'EBUSY' });
    expect(events.at(-1)).toMatchObject({ type: 'DriverBindRefused', data: { errno: 'EBUSY' }, label: 'x' });
    kernel.closeDevice(GPU, '10:4');
    expect(kernel.bindDriver(AUDIO, 'snd_hda_intel')).toEqual({ ok: true });
  });

  it('given an open but unbound device fd, when it is mmapped then -EINVAL; after BIND it is granted', () => {
    const { kernel } = givenHost();
    toVfio(kernel, NIC);
    kernel.openIommufd('10:3');
    kernel.openDevice(NIC, '10:4');
    expect(kernel.access(NIC, '10:4', 'mmap', undefined)).toEqual({ ok: false, errno: 'EINVAL' });
    kernel.bindIommufd(NIC, '10:4', '10:3');
    expect(kernel.access(NIC, '10:4', 'mmap', undefined)).toEqual({ ok: true });
  });

  it('S33: given a require_direct device, when it binds then -EINVAL', () => {
    const { kernel } = givenHost();
    toVfio(kernel, USB);
    kernel.openIommufd('10:3');
    kernel.openDevice(USB, '10:4');
    expect(kernel.bindIommufd(USB, '10:4', '10:3')).toEqual({ ok: false, errno: 'EINVAL' });
  });

  it('S23/S25 legacy: a second group open is -EBUSY; SET_CONTAINER with a kernel driver in the group is -EPERM; a viable group gets the container domain', () => {
    const { kernel, traces, clear } = givenHost();
    toVfio(kernel, GPU);
    kernel.openContainer('30:3');
    expect(kernel.openGroup(7, '30:4')).toEqual({ ok: true });
    expect(kernel.openGroup(7, '31:4')).toEqual({ ok: false, errno: 'EBUSY' });
    expect(kernel.groupStatus(7, '30:4')).toEqual({ ok: true, viable: false, containerSet: false });
    expect(kernel.setContainer(7, '30:4', '30:3')).toEqual({ ok: false, errno: 'EPERM' });
    kernel.unbindDriver(AUDIO);
    clear();
    expect(kernel.setContainer(7, '30:4', '30:3')).toEqual({ ok: true });
    expect(kernel.setIommu('30:3')).toEqual({ ok: true });
    expect(traces()).toEqual([GPU, AUDIO, GPU, AUDIO]);
    expect(kernel.getDeviceFd(7, '30:4', GPU, '30:5')).toEqual({ ok: true, deviceFd: '30:5' });
    expect(kernel.access(GPU, '30:5', 'ioctl', 'VFIO_DEVICE_GET_INFO')).toEqual({ ok: true });
  });

  it('onemodel: given an IOAS destroyed, when another is allocated then it takes the lowest free id (xa_alloc), the id the upstream decider gives', () => {
    const { kernel } = givenHost();
    kernel.openIommufd('10:3');
    const first = kernel.ioasAlloc('10:3');
    expect(kernel.destroy('10:3', first)).toEqual({ ok: true });
    expect(kernel.ioasAlloc('10:3')).toBe(first);
  });

  it('onemodel: given a vfio variant driver (mlx5-vfio-pci), when the device is opened then its cdev exists: which drivers are vfio is the kernel model\'s rule', () => {
    const { kernel, events } = givenHost();
    kernel.unbindDriver(NIC);
    expect(kernel.bindDriver(NIC, 'mlx5-vfio-pci')).toEqual({ ok: true });
    expect(kernel.openDevice(NIC, '10:4')).toEqual({ ok: true });
    expect(events.at(-1)).toMatchObject({ type: 'VfioDeviceOpened', data: { cdev: 'vfio0' } });
  });

  it('model #4: closing a legacy group on its container\'s domain traces two domain switches per device (type1 detach to blocking, then the release of DMA ownership to the default domain)', () => {
    const { kernel, traces, clear } = givenHost();
    toVfio(kernel, GPU, AUDIO);
    kernel.openContainer('c');
    kernel.openGroup(7, 'g');
    expect(kernel.setContainer(7, 'g', 'c')).toEqual({ ok: true });
    expect(kernel.setIommu('c')).toEqual({ ok: true });
    clear();
    kernel.closeGroup(7, 'g');
    expect(traces()).toEqual([GPU, AUDIO, GPU, AUDIO]);
    expect(kernel.device(GPU).driver).toBe('vfio-pci');
  });

  it('model #4: closing a legacy group whose container never set an IOMMU backend traces one switch per device (blocking to default)', () => {
    const { kernel, traces, clear } = givenHost();
    toVfio(kernel, GPU, AUDIO);
    kernel.openContainer('c');
    kernel.openGroup(7, 'g');
    kernel.setContainer(7, 'g', 'c');
    clear();
    kernel.closeGroup(7, 'g');
    expect(traces()).toEqual([GPU, AUDIO]);
  });
});
