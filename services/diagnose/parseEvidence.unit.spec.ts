import { describe, expect, it } from 'vitest';
import { parseEvidence } from './parseEvidence.js';

const members = (text: string, group: number): string[] => [...(parseEvidence(text).groups.get(group)?.members ?? [])].sort();
const driverOf = (text: string, device: string): string | null | undefined => {
  const d = parseEvidence(text).devices.get(device)?.driver;
  return d?.current ? d.name : undefined;
};

describe('parseEvidence > IOMMU group listings', () => {
  it('given headers with tab, space or no indentation and groups sorted as strings, when parsed, then each device lands in its group', () => {
    const text = [
      'IOMMU Group 1:',
      '\t00:01.0 PCI bridge [0604]: Intel Corporation Device [8086:1901] (rev 07)',
      '\t01:00.0 VGA compatible controller [0300]: NVIDIA Corporation TU104 [10de:1e81] (rev a1)',
      'IOMMU Group 10:',
      '    00:1f.0 ISA bridge [0601]: Intel Corporation Device [8086:a305] (rev 10)',
      'IOMMU Group 2:',
      '00:02.0 VGA compatible controller [0300]: Intel Corporation Device [8086:3e92]',
    ].join('\n');
    const facts = parseEvidence(text);
    expect([...facts.groups.keys()].sort((a, b) => a - b)).toEqual([1, 2, 10]);
    expect(members(text, 1)).toEqual(['0000:00:01.0', '0000:01:00.0']);
    expect(members(text, 10)).toEqual(['0000:00:1f.0']);
    expect(members(text, 2)).toEqual(['0000:00:02.0']);
    expect(facts.groups.get(1)!.complete).toBe(true);
    expect(facts.devices.get('0000:01:00.0')).toMatchObject({ vendorId: '10de', deviceId: '1e81', classCode: '0300' });
  });

  it('given one line per device with the group in front, when parsed, then groups and ids are read and drivers stay unknown', () => {
    const text = 'IOMMU Group 13 06:00.0 VGA compatible controller [0300]: AMD Ellesmere [1002:67df] (rev e7)\nIOMMU Group 13 06:00.1 Audio device [0403]: AMD Ellesmere HDMI Audio [1002:aaf0]';
    expect(members(text, 13)).toEqual(['0000:06:00.0', '0000:06:00.1']);
    expect(driverOf(text, '0000:06:00.0')).toBeUndefined();
  });

  it('given the loop variant with lspci -nnks, when a device shows details but no driver line, then it has no driver', () => {
    const text = [
      'IOMMU Group 7:',
      '\t01:00.0 VGA compatible controller [0300]: NVIDIA [10de:1e81]',
      '\t\tKernel driver in use: vfio-pci',
      '\t01:00.1 Audio device [0403]: NVIDIA [10de:10f8]',
      '\t\tSubsystem: NVIDIA Device [10de:12a2]',
      '\t\tKernel modules: snd_hda_intel',
    ].join('\n');
    expect(driverOf(text, '0000:01:00.0')).toBe('vfio-pci');
    expect(driverOf(text, '0000:01:00.1')).toBeNull();
  });

  it('given find output of the group links, when parsed, then membership is read', () => {
    expect(members('/sys/kernel/iommu_groups/3/devices/0000:00:14.0\n/sys/kernel/iommu_groups/3/devices/0000:00:14.2', 3)).toEqual(['0000:00:14.0', '0000:00:14.2']);
  });
});

describe('parseEvidence > lspci', () => {
  it('given lspci -nnk with and without the domain, when parsed, then drivers and modules are read', () => {
    const text = [
      '0000:03:00.0 Ethernet controller [0200]: Intel Corporation 82576 [8086:10c9] (rev 01)',
      '\tKernel driver in use: igb',
      '\tKernel modules: igb',
      '04:00.0 USB controller [0c03]: Renesas uPD720202 [1912:0015] (rev 02) (prog-if 30 [XHCI])',
      '\tKernel driver in use: xhci_hcd',
    ].join('\n');
    const facts = parseEvidence(text);
    expect(driverOf(text, '0000:03:00.0')).toBe('igb');
    expect(facts.devices.get('0000:03:00.0')!.modules).toEqual(['igb']);
    expect(facts.devices.get('0000:04:00.0')!.classCode).toBe('0c0330');
    expect(facts.devices.get('0000:03:00.0')!.group).toBeUndefined();
  });

  it('given spacing mangled by a forum, when parsed, then the driver line is still read', () => {
    const text = '03:00.1 Ethernet controller [0200]: Intel [8086:10c9]\nSubsystem:   Intel [8086:a03c]\nKernel  driver  in  use :  igb\n';
    expect(driverOf(text, '0000:03:00.1')).toBe('igb');
  });

  it('given a driver line cut short, when parsed, then the driver is unknown, not absent', () => {
    const text = '03:00.2 Ethernet controller [0200]: Intel [8086:10c9] (re\nSubsystem: Intel [8086\nKernel driver in\n03:00.3 Ethernet controller [0200]: Intel [8086:10c9]\n\tKernel driver in use: igb';
    expect(driverOf(text, '0000:03:00.2')).toBeUndefined();
    expect(driverOf(text, '0000:03:00.3')).toBe('igb');
  });

  it('given lspci -nn without -k, when parsed, then no driver is inferred', () => {
    const text = '03:00.0 Ethernet controller [0200]: Intel [8086:10c9]\n\tSubsystem: Intel [8086:a03c]';
    expect(driverOf(text, '0000:03:00.0')).toBeUndefined();
  });

  it('given -vvv output, when parsed, then the driver line inside the long block is found', () => {
    const text = [
      '01:00.1 Audio device [0403]: NVIDIA Corporation TU104 HD Audio Controller [10de:10f8] (rev a1)',
      '\tSubsystem: eVga.com. Corp. Device [3842:3081]',
      '\tControl: I/O- Mem+ BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-',
      '\tLatency: 0, Cache Line Size: 64 bytes',
      '\tInterrupt: pin B routed to IRQ 17',
      '\tRegion 0: Memory at de080000 (32-bit, non-prefetchable) [size=16K]',
      '\tCapabilities: [60] Power Management version 3',
      '\t\tFlags: PMEClk- DSI- D1- D2- AuxCurrent=0mA PME(D0-,D1-,D2-,D3hot-,D3cold-)',
      '\tKernel driver in use: snd_hda_intel',
      '\tKernel modules: snd_hda_intel',
    ].join('\n');
    expect(driverOf(text, '0000:01:00.1')).toBe('snd_hda_intel');
  });
});

describe('parseEvidence > ls of sysfs', () => {
  it('given ls -la of two group dirs with wrapped targets, when parsed, then members are complete and wraps are not devices', () => {
    const text = [
      '/sys/kernel/iommu_groups/46/devices:',
      'total 0',
      'drwxr-xr-x 2 root root 0 Jan 18 09:44 .',
      'drwxr-xr-x 3 root root 0 Jan 18 09:44 ..',
      'lrwxrwxrwx 1 root root 0 Jan 18 09:44 0000:06:00.0 ->',
      '../../../../devices/pci0000:00/0000:00:03.1/0000:06:00.0',
      '',
      '/sys/kernel/iommu_groups/47/devices:',
      'lrwxrwxrwx 1 root root 0 Jan 18 09:44 0000:07:00.0 -> ../../../../devices/pci0000:00/0000:00:03.2/',
      '0000:07:00.0',
    ].join('\n');
    const facts = parseEvidence(text);
    expect(members(text, 46)).toEqual(['0000:06:00.0']);
    expect(members(text, 47)).toEqual(['0000:07:00.0']);
    expect(facts.groups.get(46)!.complete).toBe(true);
    expect(facts.devices.has('0000:00:03.1')).toBe(false);
  });

  it('given ls of one group dir (no header) after the prompt, when parsed, then the prompt names the group', () => {
    const text = 'user@host:~$ ls /sys/kernel/iommu_groups/12/devices\n0000:03:00.0  0000:03:00.1';
    expect(members(text, 12)).toEqual(['0000:03:00.0', '0000:03:00.1']);
  });

  it('given driver and iommu_group links of a device, when parsed, then both are read', () => {
    const text = [
      '$ ls -l /sys/bus/pci/devices/0000:01:00.1/',
      'lrwxrwxrwx 1 root root    0 Mar  3 10:12 driver -> ../../../../bus/pci/drivers/snd_hda_intel',
      'lrwxrwxrwx 1 root root    0 Mar  3 10:12 iommu_group -> ../../../../kernel/iommu_groups/7',
    ].join('\n');
    expect(driverOf(text, '0000:01:00.1')).toBe('snd_hda_intel');
    expect(members(text, 7)).toEqual(['0000:01:00.1']);
    expect(parseEvidence(text).groups.get(7)!.complete).toBe(false);
  });
});

describe('parseEvidence > kernel logs', () => {
  it('given dmesg with and without a space after the timestamp, when parsed, then group adds, id registrations and stub claims are read', () => {
    const text = [
      '[    0.917420] pci 0000:06:00.0: Adding to iommu group 13',
      '[    0.917469]pci 0000:06:00.1: Adding to iommu group 13',
      '[    1.803122] vfio_pci: add [1002:67df[ffffffff:ffffffff]] class 0x000000/00000000',
      '[    1.370110]pci-stub: add 1912:0015 sub=FFFFFFFF:FFFFFFFF cls=00000000/00000000',
      'Mar 03 10:12:01 pve kernel: pci-stub 0000:02:00.0: claimed by stub',
    ].join('\n');
    const facts = parseEvidence(text);
    expect(members(text, 13)).toEqual(['0000:06:00.0', '0000:06:00.1']);
    expect(facts.groups.get(13)!.complete).toBe(false);
    expect(facts.idRegistrations.map((r) => `${r.driver} ${r.vendorId}:${r.deviceId}`)).toEqual(['vfio-pci 1002:67df', 'pci-stub 1912:0015']);
    // a log line is a past state: kept as a hint, not as the current driver
    expect(facts.devices.get('0000:02:00.0')!.driver).toMatchObject({ name: 'pci-stub', current: false });
  });

  it('given a Linux version line, when parsed, then the kernel release is known', () => {
    expect(parseEvidence('[    0.000000] Linux version 5.4.0-150-generic (buildd@lcy02) #167-Ubuntu SMP').kernelRelease).toBe('5.4.0-150-generic');
  });
});

describe('parseEvidence > VMM errors', () => {
  it.each([
    ['qemu-system-x86_64: -device vfio-pci,host=06:00.0: vfio: error, group 13 is not viable, please ensure all devices within the iommu_group are bound to their vfio bus driver.', 13, '0000:06:00.0', 'qemu'],
    ['vfio error: 0000:01:00.0: group 1 is not viable', 1, '0000:01:00.0', 'qemu'],
    ['error: internal error: qemu unexpectedly closed the monitor: vfio 0000:06:00.0: group 46 is not viable', 46, '0000:06:00.0', 'libvirt'],
    [
      'Mar 03 10:12:01 host libvirtd[1234]: internal error: qemu unexpectedly closed the monitor: 2021-03-03T10:12:01.000000Z qemu-system-x86_64: -device vfio-pci,host=0000:06:00.0,id=hostdev0: vfio 0000:06:00.0: group 46 is not viable',
      46,
      '0000:06:00.0',
      'libvirt',
    ],
  ])('given %s, when parsed, then group, device and origin are read', (line, group, device, origin) => {
    const [e] = parseEvidence(line).errors;
    expect(e).toMatchObject({ group, device, origin });
  });

  it('given a KubeVirt JSON record with a literal \\n, when parsed, then the error inside is found once', () => {
    const record = JSON.stringify({
      component: 'virt-launcher',
      level: 'error',
      reason: "virError(Code=1, Domain=10, Message='internal error: qemu unexpectedly closed the monitor: vfio 0000:06:00.0: group 46 is not viable\nPlease ensure all devices within the iommu_group are bound to their vfio bus driver.')",
    });
    const facts = parseEvidence(`${record}\n${record}`);
    expect(facts.errors).toHaveLength(1);
    expect(facts.errors[0]).toMatchObject({ origin: 'kubevirt', group: 46, device: '0000:06:00.0' });
  });

  it('given an error quoted in a non-JSON line with literal \\n, when parsed, then it is split', () => {
    const facts = parseEvidence("msg='vfio 0000:06:00.0: group 4 is not viable\\nPlease ensure all devices'");
    expect(facts.errors[0]!.message).not.toContain('Please ensure');
  });
});

describe('parseEvidence > combined pastes', () => {
  it('given a listing then lspci -nnk, when a device is in both, then membership and driver combine', () => {
    const text = 'IOMMU Group 7:\n\t01:00.1 Audio device [0403]: NVIDIA [10de:10f8]\n\n$ lspci -nnk -s 01:00.1\n01:00.1 Audio device [0403]: NVIDIA [10de:10f8]\n\tKernel driver in use: snd_hda_intel';
    const facts = parseEvidence(text);
    expect(facts.devices.get('0000:01:00.1')).toMatchObject({ group: { group: 7 }, driver: { name: 'snd_hda_intel', current: true } });
  });

  it('given two blocks that disagree on a driver, when parsed, then the later wins and the conflict is reported', () => {
    const text = '01:00.1 Audio [0403]: X [10de:10f8]\n\tKernel driver in use: snd_hda_intel\n\n01:00.1 Audio [0403]: X [10de:10f8]\n\tKernel driver in use: vfio-pci';
    const facts = parseEvidence(text);
    expect(driverOf(text, '0000:01:00.1')).toBe('vfio-pci');
    expect(facts.conflicts).toHaveLength(1);
  });

  it('given prose only, when parsed, then nothing is recognised', () => {
    const facts = parseEvidence('my VM does not start, please help\nthanks in advance');
    expect(facts.formats.size + facts.groups.size + facts.errors.length).toBe(0);
  });
});

// shapes collected from real posted reports (services/diagnose/corpus); each test names the shape
describe('parseEvidence > issue 22: shapes people really paste', () => {
  it('issue 22: `### Group N ###` headers and lower-case `IOMMU group N` headers open a group', () => {
    const text = '### Group 3 ###\n00:14.0 USB controller [0c03]: Intel [8086:a36d]\nIOMMU group 1\n\t01:00.0 VGA compatible controller [0300]: NVIDIA [10de:1187] (rev a1)';
    expect(members(text, 3)).toEqual(['0000:00:14.0']);
    expect(members(text, 1)).toEqual(['0000:01:00.0']);
    expect(parseEvidence(text).groups.get(3)!.complete).toBe(true);
  });

  it('issue 22: the one-line `Group: N <BDF> <description> Driver: <driver>` form, with and without ids', () => {
    const text = 'Group: 1 0000:01:00.0 VGA compatible controller [0300]: NVIDIA [10de:1e81] (rev a1) Driver: vfio-pci\nGroup: 1 0000:01:00.1 Audio device: NVIDIA TU104 HD Audio Controller Driver: snd_hda_intel';
    expect(members(text, 1)).toEqual(['0000:01:00.0', '0000:01:00.1']);
    expect(driverOf(text, '0000:01:00.0')).toBe('vfio-pci');
    expect(driverOf(text, '0000:01:00.1')).toBe('snd_hda_intel');
    expect(parseEvidence(text).devices.get('0000:01:00.0')).toMatchObject({ vendorId: '10de', deviceId: '1e81', classCode: '0300' });
  });

  it('issue 22: ls-iommu -grk (`IOMMU Group  12: <BDF> <class> [0c03] <name>` then driver lines) reads class, ids and drivers', () => {
    const text = [
      'IOMMU Group  12: 0000:01:00.0 USB controller [0c03] Advanced Micro Devices, Inc. [AMD] unknown [1022:43d0] (rev 01)',
      '        Subsystem: ASMedia Technology Inc. unknown [1b21:1142]',
      '        Kernel driver in use: xhci_hcd',
      'IOMMU Group  12: 0000:01:00.2 PCI bridge [0604] Advanced Micro Devices, Inc. [AMD] 400 Series Chipset PCIe Bridge [1022:43c6] (rev 01)',
      '        Kernel driver in use: pcieport',
    ].join('\n');
    expect(members(text, 12)).toEqual(['0000:01:00.0', '0000:01:00.2']);
    expect(driverOf(text, '0000:01:00.0')).toBe('xhci_hcd');
    expect(parseEvidence(text).devices.get('0000:01:00.2')).toMatchObject({ classCode: '0604', vendorId: '1022', deviceId: '43c6' });
  });

  it('issue 22: ids-first listings (`Group 15:\\t[10de:21c4] [R] 09:00.0  VGA ...` and indented members) keep ids in the description', () => {
    const text = 'Group 15:\t[10de:21c4] [R] 09:00.0  VGA compatible controller                TU116 [GeForce GTX 1660 SUPER]\n\t\t[10de:1aec]     09:00.2  USB controller                           TU116 USB 3.1 Host Controller';
    expect(members(text, 15)).toEqual(['0000:09:00.0', '0000:09:00.2']);
    const d = parseEvidence(text).devices.get('0000:09:00.2')!;
    expect(d).toMatchObject({ vendorId: '10de', deviceId: '1aec' });
    expect(d.description).toContain('[10de:1aec]');
  });

  it('issue 22: ls-iommu without addresses (`IOMMU Group  15: NVIDIA ... [10de:1b81]`) knows the group, not its members', () => {
    const facts = parseEvidence('IOMMU Group  15: NVIDIA Corporation GP104 [GeForce GTX 1070] [10de:1b81] (rev a1)');
    expect(facts.groups.get(15)).toMatchObject({ complete: false });
    expect(facts.groups.get(15)!.members.size).toBe(0);
  });

  it('issue 22: a group loop that printed `IOMMU Group *` says the IOMMU is off', () => {
    const facts = parseEvidence('IOMMU Group * 00:00.0 Host bridge [0600]: AMD RD9x0/RX980 Host Bridge [1002:5a14] (rev 02)\n00:02.0 PCI bridge [0604]: AMD [1002:5a16]');
    expect(facts.iommuOff).toBeDefined();
    expect(facts.groups.size).toBe(0);
  });

  it('issue 22: `readlink -e /sys/bus/pci/devices/$BDF/iommu_group` after `BDF="..."` puts the device in the printed group', () => {
    expect(members('BDF="0000:3d:00.0"\n\nreadlink -e /sys/bus/pci/devices/$BDF/iommu_group\n/sys/kernel/iommu_groups/40', 40)).toEqual(['0000:3d:00.0']);
    expect(members('$ readlink /sys/bus/pci/devices/0000:01:00.1/iommu_group\n../../../../kernel/iommu_groups/7', 7)).toEqual(['0000:01:00.1']);
  });

  it('issue 22: lspci -v `Flags: ..., IOMMU group 2` and lspci -vv `IOMMU group: 2` give (partial) membership', () => {
    const text = '01:00.0 Ethernet controller: Intel Corporation Ethernet Controller X710 for 10GbE SFP+ (rev 02)\n\tFlags: bus master, fast devsel, latency 0, IRQ 16, IOMMU group 2\n01:00.1 Ethernet controller: Intel X710 (rev 02)\n\tIOMMU group: 2';
    expect(members(text, 2)).toEqual(['0000:01:00.0', '0000:01:00.1']);
    expect(parseEvidence(text).groups.get(2)!.complete).toBe(false);
  });

  it('issue 22: a driver line cut to `Ker` leaves the driver unknown', () => {
    const text = '01:00.0 VGA compatible controller [0300]: NVIDIA TU116 [10de:21c4] (rev a1)\n        Subsystem: ASUSTeK [1043:877f]\n        Ker\n01:00.1 Audio device [0403]: NVIDIA [10de:1aeb]\n\tKernel driver in use: vfio-pci';
    expect(driverOf(text, '0000:01:00.0')).toBeUndefined();
  });

  it('issue 22: old `iommu: Adding device X to group N`, driver log lines, DMAR/AMD-Vi and the kernel command line', () => {
    const text = [
      '[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-6.5.0-45-generic ro intel_iommu=on vfio_pci.ids=10de:1c82,10de:0fb9 pcie_acs_override=downstream,multifunction',
      '[    0.067112] DMAR: IOMMU enabled',
      '[    0.551524] iommu: Adding device 0000:00:01.0 to group 1',
      'Dec 06 09:04:26 208 kernel: vfio-pci 0000:01:00.0: vfio_ecap_init: hiding ecap 0x19@0x900',
    ].join('\n');
    const facts = parseEvidence(text);
    expect(facts.kernelRelease).toBe('6.5.0-45-generic');
    expect(facts.acsOverride).toBeDefined();
    expect(facts.idRegistrations.map((r) => `${r.source} ${r.vendorId}:${r.deviceId}`)).toEqual(['config 10de:1c82', 'config 10de:0fb9']);
    expect(members(text, 1)).toEqual(['0000:00:01.0']);
    expect(facts.devices.get('0000:01:00.0')!.driver).toMatchObject({ name: 'vfio-pci', current: false });
    expect(facts.formats.get('kernel-log')).toBeGreaterThanOrEqual(2);
  });

  it('issue 22: /proc/cmdline and `options vfio-pci ids=` in a modprobe file are read as what the user asked for', () => {
    const facts = parseEvidence('BOOT_IMAGE=(hd3,gpt2)/vmlinuz-6.2.10-201.fsync.fc37.x86_64 root=UUID=x ro intel_iommu=on\noptions vfio-pci ids=10de:21c4');
    expect(facts.kernelRelease).toBe('6.2.10-201.fsync.fc37.x86_64');
    expect(facts.idRegistrations).toEqual([expect.objectContaining({ source: 'config', vendorId: '10de', deviceId: '21c4' })]);
  });

  it.each([
    ['kvm: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/00000000-0000-0000-0000-000000000100,id=hostpci0: vfio 00000000-0000-0000-0000-000000000100: error getting device from group 64: Input/output error', 'group-busy', 64, undefined],
    ['Input/output error Verify all devices in group 29 are bound to vfio-<bus> or pci-stub and not already in use', 'group-busy', 29, undefined],
    ['qemu-system-x86_64: -device vfio-pci,host=00:02.0,bus=port.1: vfio 0000:00:02.0: failed to open /dev/vfio/1: No such file or directory', 'no-vfio-node', 1, '0000:00:02.0'],
    ['qemu-system-x86_64: -device vfio-pci,host=08:00.0,bus=port.1: vfio 0000:08:00.0: no iommu_group found: No such file or directory', 'no-iommu-group', undefined, '0000:08:00.0'],
    ['qemu-system-x86_64: vfio: Cannot reset device 0000:33:00.6, depends on group 16 which is not owned.', 'other', undefined, '0000:33:00.6'],
    ['error="QMP command failed: vfio 0000:01:00.1: group 1 used in multiple address spaces" name=containerd-shim-v2', 'other', 1, '0000:01:00.1'],
    ['Failed to read IOMMU group for 0000:0c:00.0: IOMMU group 24 has devices not bound to vfio-pci:', 'other', 24, '0000:0c:00.0'],
    ['kvm: -device vfio-pci,host=00:02.0,addr=0x02,x-igd-gms=1: PCI: slot 2 function 0 not available for vfio-pci, in use by VGA', 'guest-slot-taken', undefined, '0000:00:02.0'],
    ['vfio group X is not viable, please ensure all devices within the iommu group are bound to their vfio bus driver', 'not-viable', undefined, undefined],
    ['GenericError: vfio 0000:c6:00.0: group 10 is not viable', 'not-viable', 10, '0000:c6:00.0'],
    ['error: internal error: qemu-system-x86_64: -device {"driver":"vfio-pci","host":"0000:09:00.0","id":"hostdev0"}: vfio 0000:09:00.0: group 2 is not viable', 'not-viable', 2, '0000:09:00.0'],
    ['Message=\'internal error: qemu unexpectedly closed the monitor: qemu-system-x86_64: -device {\\"driver\\":\\"vfio-pci\\",\\"host\\":\\"0000:0e:00.0\\",\\"id\\":\\"ua-hostdevice\\",', 'other', undefined, '0000:0e:00.0'],
  ])('issue 22: the error `%s` is read as %s (group %s, device %s)', (line, claim, group, device) => {
    const [e] = parseEvidence(line).errors;
    expect(e).toMatchObject({ claim });
    expect(e!.group).toBe(group);
    expect(e!.device).toBe(device);
  });

  it('issue 22: tools report membership (`is in IOMMU group 15 with: ...`), drivers (`Wrong driver devices`) and bindings', () => {
    const text = [
      'BDF 0000:05:00.0 is in IOMMU group 15 with: 0000:04:00.0 0000:05:00.0',
      "  Wrong driver devices: [('0000:04:00.0', 'pcieport')]",
      'Device 8086:1528 at 0000:05:00.1 bound to vfio-pci',
    ].join('\n');
    const facts = parseEvidence(text);
    expect(members(text, 15)).toEqual(['0000:04:00.0', '0000:05:00.0']);
    expect(facts.groups.get(15)!.complete).toBe(true);
    expect(driverOf(text, '0000:04:00.0')).toBe('pcieport');
    expect(driverOf(text, '0000:05:00.1')).toBe('vfio-pci');
  });

  it('issue 22: a find loop printing `[IOMMU N] <BDF> ...` and the libvirt log header (`kernel: 5.12.15-arch1-1`) are read', () => {
    const text = '2021-07-14 01:56:58.259+0000: starting up libvirt version: 7.5.0, qemu version: 6.0.0, kernel: 5.12.15-arch1-1, hostname: Arch-Dt\n[IOMMU 10] 00:08.3 PCI bridge [0604]: AMD Family 17h-19h Internal PCIe GPP Bridge [1022:14b9] (rev 10)\n[IOMMU 11] 00:14.0 SMBus [0c05]: AMD FCH SMBus Controller [1022:790b] (rev 71)';
    const facts = parseEvidence(text);
    expect(facts.kernelRelease).toBe('5.12.15-arch1-1');
    expect(members(text, 10)).toEqual(['0000:00:08.3']);
    expect(facts.devices.get('0000:00:08.3')!.classCode).toBe('0604');
  });

  it('issue 22: a device line wrapped by a terminal keeps its ids and class, and the next block still reads', () => {
    const text = '01:00.0 VGA compatible controller [0300]: NVIDIA Corporation TU104 [GeForce RTX 2080\n SUPER] [10de:1e81] (rev a1)\n\tKernel driver in use: vfio-pci\n01:00.1 Audio device [0403]: NVIDIA [10de:10f8]\n\tKernel driver in use: snd_hda_intel';
    const facts = parseEvidence(text);
    expect(facts.devices.get('0000:01:00.0')).toMatchObject({ vendorId: '10de', deviceId: '1e81', classCode: '0300' });
    expect(driverOf(text, '0000:01:00.0')).toBe('vfio-pci');
    expect(driverOf(text, '0000:01:00.1')).toBe('snd_hda_intel');
  });

  it.each([
    ['kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0: vfio 0000:01:00.0: group 1 is not viable', 'qemu'],
    ["Warning  SyncFailed  7s  virt-handler  server error. command SyncVMI failed: \"LibvirtError(Code=1, Domain=10, Message='internal error: qemu unexpectedly closed the monitor: vfio 0000:01:00.0: group 1 is not viable", 'kubevirt'],
  ])('issue 22: the origin of `%s` is %s', (line, origin) => {
    expect(parseEvidence(line).errors[0]!.origin).toBe(origin);
  });

  it('issue 22: DPDK EAL "VFIO group is not viable" (in a JSON log) and dpdk-devbind --status drivers are read', () => {
    const text = [
      '{"level":"error","logger":"DPDK","msg":"EAL: 0000:44:00.3 VFIO group is not viable! Not all devices in IOMMU group bound to VFIO or unbound"}',
      "0000:44:00.3 'Ethernet Controller X710 for 10 Gigabit SFP+ 104e' drv=vfio-pci unused=i40e",
      "0000:44:00.0 'Ethernet Controller X710 for 10GBASE-T 15ff' if=enp68s0f0 drv=i40e unused=vfio-pci *Active*",
      "0000:44:00.1 'Ethernet Controller X710 for 10GBASE-T 15ff' unused=i40e,vfio-pci",
    ].join('\n');
    const facts = parseEvidence(text);
    expect(facts.errors[0]).toMatchObject({ claim: 'not-viable', device: '0000:44:00.3' });
    expect(driverOf(text, '0000:44:00.3')).toBe('vfio-pci');
    expect(driverOf(text, '0000:44:00.0')).toBe('i40e');
    expect(driverOf(text, '0000:44:00.1')).toBeNull();
  });

  it('issue 22: lspci -vmm records (Slot, Class, Vendor, Device, Driver, IOMMUGroup) give ids, class, driver and partial membership', () => {
    const text = 'Slot:   00:01.3\nClass:  PCI bridge [0604]\nVendor: Advanced Micro Devices, Inc. [AMD] [1022]\nDevice: Raven/Raven2 PCIe GPP Bridge [6:0] [15d3]\nDriver: pcieport\nIOMMUGroup:     1\n\nSlot:   00:01.0\nClass:  Host bridge [0600]\nIOMMUGroup:     0';
    const facts = parseEvidence(text);
    expect(facts.devices.get('0000:00:01.3')).toMatchObject({ classCode: '0604', vendorId: '1022', deviceId: '15d3' });
    expect(driverOf(text, '0000:00:01.3')).toBe('pcieport');
    expect(members(text, 1)).toEqual(['0000:00:01.3']);
    expect(facts.groups.get(1)!.complete).toBe(false);
    expect(driverOf(text, '0000:00:01.0')).toBeUndefined();
  });

  it('issue 22: lspci -tv gives each device its bus from the tree, and bridges (entries that open a bus) their class', () => {
    const text = [
      '-[0000:00]-+-00.0  Intel Corporation 8th Gen Core Processor Host Bridge/DRAM Registers',
      '           +-01.0-[01]--+-00.0  NVIDIA Corporation TU104 [GeForce RTX 2080 SUPER] [10de:1e81]',
      '           |            +-00.1  NVIDIA Corporation TU104 HD Audio Controller',
      '           |            \\-00.3  NVIDIA Corporation TU104 USB Type-C UCSI Controller',
      '           \\-1f.6  Intel Corporation Ethernet Connection (7) I219-V',
    ].join('\n');
    const facts = parseEvidence(text);
    expect([...facts.devices.keys()].sort()).toEqual(['0000:00:00.0', '0000:00:01.0', '0000:00:1f.6', '0000:01:00.0', '0000:01:00.1', '0000:01:00.3']);
    expect(facts.devices.get('0000:00:01.0')!.classCode).toBe('0604');
    expect(facts.devices.get('0000:01:00.0')).toMatchObject({ vendorId: '10de', deviceId: '1e81' });
  });

  it('issue 22: virsh nodedev-dumpxml gives the driver, ids, class and the whole iommuGroup', () => {
    const text = [
      '<device>',
      '  <name>pci_0000_01_00_0</name>',
      '  <parent>pci_0000_00_01_0</parent>',
      '  <driver>',
      '    <name>snd_hda_intel</name>',
      '  </driver>',
      "  <capability type='pci'>",
      '    <class>0x040300</class>',
      "    <product id='0x10f8'>TU104 HD Audio Controller</product>",
      "    <vendor id='0x10de'>NVIDIA Corporation</vendor>",
      "    <iommuGroup number='1'>",
      "      <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>",
      "      <address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>",
      '    </iommuGroup>',
      '  </capability>',
      '</device>',
    ].join('\n').replace('pci_0000_01_00_0', 'pci_0000_01_00_1');
    const facts = parseEvidence(text);
    expect(members(text, 1)).toEqual(['0000:01:00.0', '0000:01:00.1']);
    expect(facts.groups.get(1)!.complete).toBe(true);
    expect(driverOf(text, '0000:01:00.1')).toBe('snd_hda_intel');
    expect(facts.devices.get('0000:01:00.1')).toMatchObject({ vendorId: '10de', deviceId: '10f8', classCode: '040300' });
  });
});

describe('parseEvidence > issue 22: settled cases the parser missed', () => {
  it.each([
    ['[   26.895721] vfio-pci 0001:01:00.0: probe with driver vfio-pci failed with error -22', '0001:01:00.0'],
    ['[    3.101] vfio-pci: probe of 0000:01:00.0 failed with error -22', '0000:01:00.0'],
  ])('issue 22: vfio-pci refusing a device with -22 (%s) is read as its own claim, naming the device', (line, device) => {
    const [e] = parseEvidence(line).errors;
    expect(e).toMatchObject({ claim: 'vfio-probe-einval', device, origin: 'kernel' });
  });

  it('issue 22: QEMU "slot N function F not available for vfio-pci, in use by X" is a guest-slot claim, not a generic error', () => {
    const [e] = parseEvidence('kvm: -device vfio-pci,host=00:02.0,addr=0x02: PCI: slot 2 function 0 not available for vfio-pci, in use by VGA').errors;
    expect(e).toMatchObject({ claim: 'guest-slot-taken', device: '0000:00:02.0' });
  });
});

describe('parseEvidence > issue 22: a listing of every IOMMU group', () => {
  const listing = (entries: readonly string[]): string =>
    ['$ lspci', '0001:01:00.0 Ethernet controller: Intel Corporation I350 Gigabit Network Connection (rev 01)', '', '$ sudo find /sys/kernel/iommu_groups/ -type l', ...entries].join('\n');

  it('issue 22: `find /sys/kernel/iommu_groups/` that lists only platform devices says no PCI device has a group', () => {
    const facts = parseEvidence(listing(['/sys/kernel/iommu_groups/1/devices/107c580000.hvs', '/sys/kernel/iommu_groups/0/devices/1000800000.codec']));
    expect(facts.noPciGroups).toEqual({ kind: 'ls-sysfs', line: 4 });
  });

  it('issue 22: a listing of every group that holds a PCI device says nothing about the PCI devices it leaves out (it may be cut)', () => {
    const facts = parseEvidence(listing(['/sys/kernel/iommu_groups/1/devices/107c580000.hvs', '/sys/kernel/iommu_groups/7/devices/0000:00:02.0']));
    expect(facts.noPciGroups).toBeUndefined();
  });
});

describe('parseEvidence > issue 22: mediated devices', () => {
  it('issue 22: mdev group lines (`iommu: Adding device <uuid> to group 0`, `vfio_mdev <uuid>: MDEV: group_id = 0`) count as kernel-log lines, so the CLI does not call the paste unreadable', () => {
    const facts = parseEvidence('  578.101534] iommu: Adding device b323e53e-782f-41bb-a7b8-3538d76fc73a to group 0\n[  578.101538] vfio_mdev b323e53e-782f-41bb-a7b8-3538d76fc73a: MDEV: group_id = 0');
    expect(facts.formats.get('kernel-log')).toBe(2);
    expect(facts.devices.size).toBe(0);
  });
});

describe('parseEvidence > issue 22: firmware 1:1 mappings and refused containers', () => {
  it.each([
    ['[  812.1] vfio-pci 0000:04:00.1: Firmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping. Contact your platform vendor.', '0000:04:00.1'],
    ['Jan 09 10:03:12.035211 hp-129-tink-system kernel: vfio-pci 0000:04:00.1: DMAR: Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your platform vendor.', '0000:04:00.1'],
  ])('issue 22: the kernel refusing a device for its firmware 1:1 (RMRR) mapping names the device (%s)', (line, device) => {
    expect([...parseEvidence(line).requireDirect.keys()]).toEqual([device]);
  });

  it('issue 22: the same line pasted without its device prefix is still read, as a device the paste does not name', () => {
    const facts = parseEvidence('Firmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping. Contact your platform vendor.');
    expect(facts.requireDirect.size).toBe(0);
    expect(facts.requireDirectUnnamed).toEqual({ kind: 'kernel-log', line: 1 });
  });

  it.each([
    ["Message='internal error: qemu unexpectedly closed the monitor: 2025-01-09T09:49:31.949124Z qemu-system-x86_64: -device {\\\"driver\\\":\\\"vfio-pci\\\",\\\"host\\\":\\\"0000:04:00.1\\\",\\\"id\\\":\\\"ua-hostdevice-hp-129\\\"}: vfio 0000:04:00.1: failed to setup container for group 37: Failed to set group container: Operation not permitted')\"", 37, '0000:04:00.1', 'EPERM'],
    ['cannot add vfio group to container, error 22 (invalid argument)', undefined, undefined, 'EINVAL'],
    ['qemu-system-x86_64: -device vfio-pci,host=0000:02:00.0: vfio 0000:02:00.0: failed to setup container for group 11: Failed to set iommu for container: Input/output error', 11, '0000:02:00.0', 'EIO'],
  ])('issue 22: VFIO refusing to put a group in a container is its own claim, with its errno (%s)', (line, group, device, errno) => {
    const [e] = parseEvidence(line).errors;
    expect(e).toMatchObject({ claim: 'container-refused', errno, ...(group !== undefined ? { group } : {}), ...(device ? { device } : {}) });
  });

  it('issue 22: journalctl -o short-precise lines (fractional seconds) are kernel log lines', () => {
    const facts = parseEvidence('Jan 09 10:03:12.035211 host kernel: snd_hda_intel 0000:01:00.1: enabling device (0000 -> 0002)');
    expect(facts.devices.get('0000:01:00.1')?.driver).toMatchObject({ name: 'snd_hda_intel', current: false });
  });

  it('issue 22: `ls -l /sys/bus/pci/devices/*/iommu_group` (the glob form) puts each device in its group', () => {
    const text = [
      '$ ls -l /sys/bus/pci/devices/*/iommu_group',
      'lrwxrwxrwx 1 root root 0 Mar  3 10:12 /sys/bus/pci/devices/0000:00:01.0/iommu_group -> ../../../kernel/iommu_groups/1',
      'lrwxrwxrwx 1 root root 0 Mar  3 10:12 /sys/bus/pci/devices/0000:01:00.0/iommu_group -> ../../../../kernel/iommu_groups/1',
      'lrwxrwxrwx 1 root root 0 Mar  3 10:12 /sys/bus/pci/devices/0000:01:00.1/iommu_group -> ../../../../kernel/iommu_groups/1',
    ].join('\n');
    expect(members(text, 1)).toEqual(['0000:00:01.0', '0000:01:00.0', '0000:01:00.1']);
  });
});

describe('parseEvidence > issue 22: why /dev/vfio/N would not open', () => {
  it.each([
    ['qemu-system-x86_64: -device vfio-pci,host=00:02.0: vfio 0000:00:02.0: failed to open /dev/vfio/1: No such file or directory', 'no-vfio-node', undefined],
    ["qemu-system-x86_64: -device {\\\"driver\\\":\\\"vfio-pci\\\",\\\"host\\\":\\\"0000:01:00.0\\\"}: vfio 0000:01:00.0: failed to open /dev/vfio/1: Device or resource busy')", 'group-busy', 'EBUSY'],
    ['Error: QMP command failed: vfio 0000:03:10.4: failed to open /dev/vfio/72: Operation not permitted: OCI runtime permission denied error', 'vfio-node-denied', 'EPERM'],
  ])('issue 22: "failed to open /dev/vfio/N" is read by its errno, not always as a missing node (%s)', (line, claim, errno) => {
    const [e] = parseEvidence(line).errors;
    expect(e).toMatchObject({ claim, ...(errno ? { errno } : {}) });
  });
});

describe('parseEvidence > issue 22: readlink over a glob of devices', () => {
  it('issue 22: `readlink /sys/bus/pci/devices/*/iommu_group` prints groups without device names: the groups are read, no member is guessed', () => {
    const text = ['$ readlink /sys/bus/pci/devices/*/iommu_group', '../../../kernel/iommu_groups/0', '../../../kernel/iommu_groups/1', '../../../../kernel/iommu_groups/1'].join('\n');
    const facts = parseEvidence(text);
    expect([...facts.groups.keys()]).toEqual([0, 1]);
    expect([...facts.groups.values()].every((g) => g.members.size === 0 && !g.complete)).toBe(true);
    expect(facts.unattributedGroupLinks).toEqual({ kind: 'ls-sysfs', line: 2 });
  });
});
