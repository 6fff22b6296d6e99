import { describe, expect, it } from 'vitest';
import { DEFAULT_MANAGED_DMA_DRIVERS } from '../../schemas/index.js';
import { diagnose } from './diagnose.js';
import { parseEvidence } from './parseEvidence.js';
import { toImportEvents } from './importEvents.js';

const group7 = (audioDriver: string): string =>
  [
    'IOMMU Group 7:',
    '\t01:00.0 VGA compatible controller [0300]: NVIDIA [10de:1e81]',
    '\t\tKernel driver in use: vfio-pci',
    '\t01:00.1 Audio device [0403]: NVIDIA [10de:10f8]',
    `\t\tKernel driver in use: ${audioDriver}`,
    '',
    'vfio 0000:01:00.0: group 7 is not viable',
  ].join('\n');

describe('diagnose > upstream rule (v5.19+)', () => {
  it('given a member on a kernel DMA-API driver, when diagnosed, then the group is not viable, the member blocks and the fix unbinds it', () => {
    const d = diagnose(parseEvidence(group7('snd_hda_intel')));
    expect(d.verdict).toBe('not-viable');
    const g = d.groups.find((x) => x.group === 7)!;
    expect(g.wanted).toBe(true);
    expect(g.blockers).toEqual(['0000:01:00.1']);
    expect(g.fix).toContain('echo 0000:01:00.1 | sudo tee /sys/bus/pci/drivers/snd_hda_intel/unbind');
    expect(g.fix.some((f) => f.includes('driver_override'))).toBe(true);
    expect(g.fix.some((f) => f.includes('ids=10de:1e81,10de:10f8'))).toBe(true);
  });

  it.each(DEFAULT_MANAGED_DMA_DRIVERS.map((d) => [d]))('given every member on driver_managed_dma %s, when diagnosed, then the group is viable', (driver) => {
    expect(diagnose(parseEvidence(group7(driver)), { rule: 'upstream' }).verdict).toBe('viable');
  });

  it('given a member with no driver bound, when diagnosed, then it does not block (S11)', () => {
    const text = 'IOMMU Group 7:\n\t01:00.0 VGA [0300]: N [10de:1e81]\n\t\tKernel driver in use: vfio-pci\n\t01:00.1 Audio [0403]: N [10de:10f8]\n\t\tKernel modules: snd_hda_intel';
    expect(diagnose(parseEvidence(text)).verdict).toBe('viable');
  });

  it('issue 22: a QEMU "group N is not viable" line alone is direct evidence: not viable, with the command that names the blocker', () => {
    const d = diagnose(parseEvidence('qemu-system-x86_64: -device vfio-pci,host=06:00.0: vfio: error, group 13 is not viable, please ensure ...'));
    expect(d.verdict).toBe('not-viable');
    const g = d.groups.find((x) => x.group === 13)!;
    expect(g.viable).toBe('no');
    expect(g.membership).toBe('partial');
    expect(g.summary).toContain('reported on line 1');
    expect(g.settle).toContain('for d in /sys/kernel/iommu_groups/13/devices/*; do lspci -nnks "${d##*/}"; done');
  });

  it('issue 22: a "not viable" line combines with the listing to name the blocker', () => {
    const text = 'vfio 0000:01:00.0: group 1 is not viable\nIOMMU Group 1:\n\t01:00.0 VGA [0300]: N [10de:1e81]\n\t\tKernel driver in use: vfio-pci\n\t01:00.1 Audio [0403]: N [10de:10f8]\n\t\tKernel driver in use: snd_hda_intel';
    const g = diagnose(parseEvidence(text)).groups.find((x) => x.group === 1)!;
    expect(g.summary).toBe('not viable while 0000:01:00.1 is on snd_hda_intel');
  });

  it('issue 22: a device on a kernel DMA-API driver blocks itself even when the paste never shows its group', () => {
    const text = 'options vfio-pci ids=10de:1e81\n01:00.0 VGA compatible controller [0300]: NVIDIA TU104 [10de:1e81] (rev a1)\n\tKernel driver in use: nvidia\n\tKernel modules: nvidiafb, nouveau, nvidia_drm, nvidia';
    const d = diagnose(parseEvidence(text));
    expect(d.verdict).toBe('not-viable');
    expect(d.devices[0]).toMatchObject({ device: '0000:01:00.0', viable: 'no' });
    expect(d.devices[0]!.reason).toMatch(/^not viable while 0000:01:00.0 is on nvidia/);
    expect(d.next).toContain('for d in /sys/bus/pci/devices/0000:01:00.0/iommu_group/devices/*; do lspci -nnks "${d##*/}"; done');
    expect(d.devices[0]!.fix).toContain('echo "softdep nvidia pre: vfio-pci" | sudo tee -a /etc/modprobe.d/vfio.conf');
  });

  it('issue 22: a "not viable" line that names only the device marks the group the paste lists for that device', () => {
    const text = 'EAL: 0000:44:00.3 VFIO group is not viable! Not all devices in IOMMU group bound to VFIO or unbound\n$ ls /sys/kernel/iommu_groups/30/devices\n0000:44:00.2  0000:44:00.3';
    const d = diagnose(parseEvidence(text));
    expect(d.verdict).toBe('not-viable');
    expect(d.groups.find((g) => g.group === 30)!.viable).toBe('no');
  });

  it('issue 22: an unknown verdict always names a command to run next', () => {
    const d = diagnose(parseEvidence('01:00.0 VGA compatible controller [0300]: NVIDIA [10de:1e81]'));
    expect(d.verdict).toBe('unknown');
    expect(d.next.length).toBeGreaterThan(0);
  });

  it('given a blocker among partially known members, when diagnosed, then it is not viable even though the list is partial', () => {
    const text = '[ 1.0] pci 0000:06:00.1: Adding to iommu group 13\n06:00.1 Audio [0403]: AMD [1002:aaf0]\n\tKernel driver in use: snd_hda_intel';
    const d = diagnose(parseEvidence(text), { group: 13 });
    expect(d.verdict).toBe('not-viable');
  });

  it('given a vfio-pci id registration for a blocker, when diagnosed, then a note says the other driver probed first', () => {
    const text = `${group7('snd_hda_intel')}\n[ 1.8] vfio_pci: add [10de:10f8[ffffffff:ffffffff]] class 0x000000/00000000`;
    const g = diagnose(parseEvidence(text)).groups.find((x) => x.group === 7)!;
    expect(g.notes.some((n) => n.includes('probed it first'))).toBe(true);
  });

  it('given --device, when diagnosed, then its group is the wanted one', () => {
    const text = 'IOMMU Group 3 00:14.0 USB [0c03]: I [8086:a36d]\nIOMMU Group 7 01:00.0 VGA [0300]: N [10de:1e81]';
    const d = diagnose(parseEvidence(text), { device: '01:00.0' });
    expect(d.groups.filter((g) => g.wanted).map((g) => g.group)).toEqual([7]);
  });
});

describe('diagnose > legacy rule (pre-v5.19, §1.6)', () => {
  const text = [
    'Linux pve 4.15.18-30-pve #1 SMP PVE 4.15.18-58 x86_64 GNU/Linux',
    'IOMMU Group 9 00:1c.0 PCI bridge [0604]: Intel Root Port [8086:a294]',
    'IOMMU Group 9 02:00.0 USB controller [0c03]: Renesas [1912:0015]',
    '',
    '00:1c.0 PCI bridge [0604]: Intel Root Port [8086:a294]',
    '\tKernel driver in use: shpchp',
    '02:00.0 USB controller [0c03]: Renesas [1912:0015]',
    '\tKernel driver in use: pci-stub',
  ].join('\n');

  it('given a 4.15 kernel, a bridge on a kernel driver and pci-stub, when diagnosed, then the legacy rule finds it viable', () => {
    const d = diagnose(parseEvidence(text));
    expect(d.rule).toBe('legacy');
    expect(d.verdict).toBe('viable');
  });

  it('issue 22: before v5.19 a bridge (class 0604) never blocks, even when its driver is not shown', () => {
    const paste = 'Linux pve 4.15.18-30-pve #1 SMP PVE 4.15.18-58 x86_64 GNU/Linux\nIOMMU Group 9 00:1c.0 PCI bridge [0604]: Intel Root Port [8086:a294]\nIOMMU Group 9 02:00.0 USB controller [0c03]: Renesas [1912:0015]\n\n02:00.0 USB controller [0c03]: Renesas [1912:0015]\n\tKernel driver in use: vfio-pci';
    const d = diagnose(parseEvidence(paste));
    expect(d.rule).toBe('legacy');
    expect(d.verdict).toBe('viable');
  });

  it('given the same paste under the upstream rule, when diagnosed, then the bridge driver blocks', () => {
    const d = diagnose(parseEvidence(text), { rule: 'upstream' });
    expect(d.verdict).toBe('not-viable');
    expect(d.groups[0]!.blockers).toEqual(['0000:00:1c.0']);
  });
});

describe('toImportEvents', () => {
  it('given parsed facts, when turned into events, then they validate and carry source import', () => {
    const { events } = toImportEvents(parseEvidence(group7('snd_hda_intel')), { host: 'forum-paste', startNs: 1_700_000_000_000_000_000n });
    expect(events.map((e) => e.type)).toEqual(['TopologySnapshotTaken', 'DriverBound', 'DriverBound', 'PassthroughErrorReported']);
    expect(events.every((e) => e.source === 'import' && e.host === 'forum-paste')).toBe(true);
    const snap = events[0]!;
    if (snap.type !== 'TopologySnapshotTaken') throw new Error('expected a snapshot first');
    expect(snap.data.groups).toEqual([{ group: 7, devices: ['0000:01:00.0', '0000:01:00.1'] }]);
    expect(snap.labels).toContain('unknown:interruptRemapping');
  });

  it('given devices whose driver was never shown, when turned into events, then they are left out of the snapshot and reported', () => {
    const { events, skipped } = toImportEvents(parseEvidence('IOMMU Group 3 00:14.0 USB [0c03]: I [8086:a36d]'), { startNs: 1n });
    const snap = events[0]!;
    if (snap.type !== 'TopologySnapshotTaken') throw new Error('expected a snapshot');
    expect(snap.data.devices).toEqual([]);
    expect(skipped.join()).toContain('0000:00:14.0');
  });
});

describe('diagnose > issue 22: settled cases that came out unknown', () => {
  it('issue 22: a device QEMU reports without an IOMMU group is not viable (VFIO refuses it), with the steps that turn the IOMMU on', () => {
    const d = diagnose(parseEvidence('qemu-system-x86_64: -device vfio-pci,host=08:00.0: vfio 0000:08:00.0: no iommu_group found: No such file or directory'));
    expect(d.verdict).toBe('not-viable');
    expect(d.devices[0]).toMatchObject({ device: '0000:08:00.0', viable: 'no' });
    expect(d.devices[0]!.reason).toMatch(/^not viable: 0000:08:00.0 has no IOMMU group \(line 1\)/);
    expect(d.devices[0]!.fix.join('\n')).toContain('intel_iommu=on');
    expect(d.next).toContain('dmesg | grep -i -e DMAR -e AMD-Vi -e iommu');
  });

  it('issue 22: an unnamed "device is not in an iommu group" kernel line and vfio-pci refusing a device with -22 make that device not viable', () => {
    const text = '[   26.871646] device is not in an iommu group\n[   26.895721] vfio-pci 0001:01:00.0: probe with driver vfio-pci failed with error -22';
    const d = diagnose(parseEvidence(text));
    expect(d.verdict).toBe('not-viable');
    expect(d.devices[0]).toMatchObject({ device: '0001:01:00.0', viable: 'no' });
    expect(d.devices[0]!.reason).toContain('vfio-pci refused it with -EINVAL on line 2');
  });

  it('issue 22: vfio-pci refusing a device with -22 alone stays unknown and names the three causes and the commands that tell them apart', () => {
    const d = diagnose(parseEvidence('[ 3.1] vfio-pci 0000:05:00.0: probe with driver vfio-pci failed with error -22'));
    expect(d.verdict).toBe('unknown');
    expect(d.devices[0]!.reason).toMatch(/no IOMMU group.*bridge.*denylist/);
    expect(d.next).toEqual(expect.arrayContaining(['readlink /sys/bus/pci/devices/0000:05:00.0/iommu_group', 'lspci -nn -s 0000:05:00.0']));
  });

  it('issue 22: a guest-slot conflict says it is not a viability problem and how to free the slot', () => {
    const d = diagnose(parseEvidence('kvm: -device vfio-pci,host=00:02.0,addr=0x02,x-igd-gms=1: PCI: slot 2 function 0 not available for vfio-pci, in use by VGA'));
    expect(d.verdict).toBe('unknown');
    const notes = d.devices[0]!.notes.join('\n');
    expect(notes).toContain('not a viability problem');
    expect(notes).toContain('vga: none');
  });

  it('issue 22: a group holding two endpoint devices says they pass together or the host keeps both', () => {
    const text = '01:00.0 Ethernet controller: Intel Corporation X710 (rev 02)\n\tFlags: bus master, IOMMU group 2\n01:00.1 Ethernet controller: Intel Corporation X710 (rev 02)\n\tFlags: bus master, IOMMU group 2';
    const g = diagnose(parseEvidence(text)).groups.find((x) => x.group === 2)!;
    expect(g.notes.some((n) => n.startsWith('group 2 holds 2 endpoint devices (0000:01:00.0, 0000:01:00.1): they are passed through together'))).toBe(true);
  });

  it('issue 22: bridges in the group are named as staying on the host, only the endpoints are passed', () => {
    const text = 'IOMMU Group 44:\n\t40:03.0 Host bridge [0600]: AMD Dummy Host Bridge [1022:1482]\n\t40:03.1 PCI bridge [0604]: AMD GPP Bridge [1022:1483]\n\t41:00.0 3D controller [0302]: NVIDIA GA100 [10de:20b5] (rev a1)';
    const g = diagnose(parseEvidence(text)).groups.find((x) => x.group === 44)!;
    expect(g.notes.some((n) => n.startsWith('0000:40:03.0, 0000:40:03.1 are bridges (class 06): keep them out of the VM'))).toBe(true);
  });
});

describe('diagnose > issue 22: no PCI device in any group', () => {
  it('issue 22: with --device, a PCI device left out of a listing of every group that holds no PCI device is not viable (no IOMMU group)', () => {
    const text = '$ sudo find /sys/kernel/iommu_groups/ -type l\n/sys/kernel/iommu_groups/1/devices/107c580000.hvs\n/sys/kernel/iommu_groups/0/devices/1000800000.codec';
    const d = diagnose(parseEvidence(text), { device: '0001:01:00.0' });
    expect(d.verdict).toBe('not-viable');
    expect(d.devices[0]!.reason).toMatch(/^not viable: 0001:01:00.0 has no IOMMU group \(line 1: /);
  });
});

describe('diagnose > issue 22: no PCI device in any group, none asked about', () => {
  it('issue 22: without --device, every endpoint the paste shows is not viable when no PCI device is in any group', () => {
    const text = '$ lspci\n0001:00:00.0 PCI bridge: Broadcom BCM2712 PCIe Bridge (rev 30)\n0001:01:00.0 Ethernet controller: Intel Corporation I350 (rev 01)\n\n$ sudo find /sys/kernel/iommu_groups/ -type l\n/sys/kernel/iommu_groups/1/devices/107c580000.hvs';
    const d = diagnose(parseEvidence(text));
    expect(d.verdict).toBe('not-viable');
    expect(d.devices.map((v) => [v.device, v.viable])).toEqual([['0001:01:00.0', 'no']]);
  });
});

describe('diagnose > issue 22: firmware 1:1 mappings (RMRR)', () => {
  it('issue 22: a device the kernel refuses for its firmware 1:1 mapping is named as the reason VFIO cannot take it, not as a viability problem', () => {
    const text = [
      "vfio 0000:04:00.1: failed to setup container for group 37: Failed to set group container: Operation not permitted')",
      'Jan 09 10:03:12.035211 hp-129 kernel: vfio-pci 0000:04:00.1: DMAR: Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your platform vendor.',
    ].join('\n');
    const d = diagnose(parseEvidence(text));
    expect(d.verdict).toBe('unknown');
    const words = [...d.notes, ...d.groups.flatMap((g) => g.notes)].join('\n');
    expect(words).toContain('0000:04:00.1 has a firmware-required 1:1 mapping (an RMRR)');
    expect(words).toContain('not a viability problem');
    expect(words).toContain('line 1: VFIO refused to put group 37 in a container (-EPERM)');
  });

  it('issue 22: the RMRR line pasted without its device still explains a refused container (-EINVAL)', () => {
    const d = diagnose(parseEvidence('cannot add vfio group to container, error 22 (invalid argument)\nFirmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping. Contact your platform vendor.'));
    expect(d.verdict).toBe('unknown');
    expect(d.notes.join('\n')).toContain('line 2: a device (the line does not name it) has a firmware-required 1:1 mapping (an RMRR)');
    expect(d.notes.join('\n')).toContain('line 1: VFIO refused to put the group in a container (-EINVAL)');
    expect(d.next.join('\n')).toContain("dmesg | grep -i -e '1:1 IOMMU mapping' -e RMRR");
  });

  it('issue 22: a refused container alone names the causes its errno has and the command that tells them apart', () => {
    const d = diagnose(parseEvidence('cannot add vfio group to container, error 22 (invalid argument)'));
    expect(d.verdict).toBe('unknown');
    expect(d.notes.join('\n')).toMatch(/\(-EINVAL\), a step that comes after the VMM checked the group.s viability; a member whose firmware requires a 1:1 mapping \(RMRR\)/);
    expect(d.next.join('\n')).toContain("dmesg | grep -i -e '1:1 IOMMU mapping' -e RMRR");
  });
});

describe('diagnose > issue 22: /dev/vfio/N that exists but would not open', () => {
  it('issue 22: "failed to open /dev/vfio/1: Device or resource busy" says the group is in use, never that the node is missing', () => {
    const d = diagnose(parseEvidence('vfio 0000:01:00.0: failed to open /dev/vfio/1: Device or resource busy'));
    const notes = d.groups.flatMap((g) => g.notes).join('\n');
    expect(notes).not.toContain('does not exist');
    expect(notes).toContain('in use by another VM or process');
  });

  it('issue 22: "failed to open /dev/vfio/72: Operation not permitted" names permissions, the devices cgroup or the security module, not viability', () => {
    const d = diagnose(parseEvidence('Error: QMP command failed: vfio 0000:03:10.4: failed to open /dev/vfio/72: Operation not permitted: OCI runtime permission denied error'));
    const notes = d.groups.flatMap((g) => g.notes).join('\n');
    expect(notes).not.toContain('does not exist');
    expect(notes).toContain('/dev/vfio/72 exists but the VMM may not open it (-EPERM)');
  });
});

describe('diagnose > issue 22: readlink over a glob of devices', () => {
  it('issue 22: group links printed without device names ask for the form that names them', () => {
    const d = diagnose(parseEvidence('$ readlink /sys/bus/pci/devices/*/iommu_group\n../../../kernel/iommu_groups/0\n../../../../kernel/iommu_groups/1'));
    expect(d.verdict).toBe('unknown');
    expect(d.notes.join('\n')).toContain('line 2: readlink over a glob prints each device');
    expect(d.next).toContain('ls -l /sys/bus/pci/devices/*/iommu_group');
  });
});
