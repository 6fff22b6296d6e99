import { describe, expect, it } from 'vitest';
import { initramfsSteps } from './advice.js';
import { diagnose } from './diagnose.js';
import { formatDiagnosis, shortDescription } from './formatDiagnosis.js';
import { parseEvidence } from './parseEvidence.js';

// an RTX card's four functions as lspci -nnk prints them (the shape of the forum fixture)
const rtx = (release?: string): string =>
  [
    ...(release ? [`Linux desk ${release} #1 SMP PREEMPT_DYNAMIC x86_64 GNU/Linux`] : []),
    'vfio 0000:01:00.0: group 1 is not viable',
    'IOMMU Group 1:',
    '\t01:00.0 VGA compatible controller [0300]: NVIDIA Corporation TU104 [GeForce RTX 2080 SUPER] [10de:1e81] (rev a1)',
    '\t\tKernel driver in use: vfio-pci',
    '\t01:00.2 USB controller [0c03]: NVIDIA Corporation TU104 USB 3.1 Host Controller [10de:1ad8] (rev a1)',
    '\t\tKernel driver in use: xhci_hcd',
    '\t\tKernel modules: xhci_pci',
    '\t01:00.3 Serial bus controller [0c80]: NVIDIA Corporation TU104 USB Type-C UCSI Controller [10de:1ad9] (rev a1)',
    '\t\tKernel driver in use: nvidia-gpu',
  ].join('\n');

const fixOf = (text: string): string[] => diagnose(parseEvidence(text)).groups.find((g) => g.group === 1)!.fix;

describe('diagnose advice (issue 22)', () => {
  it('issue 22: the fix for group 1 is right line by line: unbind, vfio-pci now, ids appended, softdep by module, initramfs for the distribution', () => {
    expect(fixOf(rtx('6.8.12-4-pve'))).toEqual([
      '# 1. release the kernel drivers that hold group 1 (a driver-less member does not block)',
      'echo 0000:01:00.2 | sudo tee /sys/bus/pci/drivers/xhci_hcd/unbind',
      'echo 0000:01:00.3 | sudo tee /sys/bus/pci/drivers/nvidia-gpu/unbind',
      '# 2. optional: hand them to vfio-pci until the next reboot',
      'sudo modprobe vfio-pci',
      'echo vfio-pci | sudo tee /sys/bus/pci/devices/0000:01:00.2/driver_override',
      'echo 0000:01:00.2 | sudo tee /sys/bus/pci/drivers/vfio-pci/bind',
      'echo vfio-pci | sudo tee /sys/bus/pci/devices/0000:01:00.3/driver_override',
      'echo 0000:01:00.3 | sudo tee /sys/bus/pci/drivers/vfio-pci/bind',
      '# 3. persistent: let vfio-pci claim the ids at boot, before the other drivers',
      '# first look at what is there: an existing "options vfio-pci ids=" line must get these ids added, not a second line (the later one wins)',
      'grep -rs vfio /etc/modprobe.d/',
      'echo "options vfio-pci ids=10de:1e81,10de:1ad8,10de:1ad9" | sudo tee -a /etc/modprobe.d/vfio.conf',
      'echo "softdep xhci_pci pre: vfio-pci" | sudo tee -a /etc/modprobe.d/vfio.conf',
      'echo "softdep i2c_nvidia_gpu pre: vfio-pci" | sudo tee -a /etc/modprobe.d/vfio.conf',
      '# put vfio-pci into the initramfs (Proxmox VE, kernel 6.8.12-4-pve); skip the append when the grep shows it there already:',
      'grep -s vfio /etc/initramfs-tools/modules',
      "printf 'vfio\\nvfio_iommu_type1\\nvfio_pci\\n' | sudo tee -a /etc/initramfs-tools/modules",
      '# rebuild the initramfs so the options apply at boot (Proxmox VE, kernel 6.8.12-4-pve):',
      'sudo update-initramfs -u -k all',
      '# or on the kernel command line instead: vfio-pci.ids=10de:1e81,10de:1ad8,10de:1ad9',
    ]);
  });

  it('issue 22: softdep names the module i2c_nvidia_gpu, never the driver nvidia-gpu (a softdep on a driver name does nothing)', () => {
    const fix = fixOf(rtx());
    expect(fix.filter((f) => f.includes('softdep'))).toEqual([
      'echo "softdep xhci_pci pre: vfio-pci" | sudo tee -a /etc/modprobe.d/vfio.conf',
      'echo "softdep i2c_nvidia_gpu pre: vfio-pci" | sudo tee -a /etc/modprobe.d/vfio.conf',
    ]);
  });

  it("issue 22: no fix line overwrites a user's file: every tee into /etc appends", () => {
    const writes = fixOf(rtx()).filter((f) => / tee (?:-a )?\/etc\//.test(f));
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.every((f) => f.includes('tee -a /etc/'))).toBe(true);
  });

  it('issue 22: a driver whose module is not known gets a line that says how to find it, not a softdep that does nothing', () => {
    const text = 'vfio 0000:02:00.0: group 4 is not viable\nIOMMU Group 4:\n\t02:00.0 Non-Volatile memory controller [0108]: Vendor X [1234:5678]\n\t\tKernel driver in use: oddnvme';
    const fix = diagnose(parseEvidence(text)).groups[0]!.fix;
    expect(fix.some((f) => f.includes('softdep'))).toBe(true);
    expect(fix.filter((f) => f.startsWith('echo "softdep'))).toEqual([]);
    expect(fix).toContain('# the module behind oddnvme is not in the paste: readlink /sys/bus/pci/drivers/oddnvme/module, then add "softdep <module> pre: vfio-pci"');
  });

  it('issue 22: a bridge that blocks is only unbound, never handed to vfio-pci (which refuses bridges)', () => {
    const text = 'vfio 0000:02:00.0: group 9 is not viable\nIOMMU Group 9:\n\t00:1c.0 PCI bridge [0604]: Intel Root Port [8086:a294]\n\t\tKernel driver in use: shpchp\n\t02:00.0 USB controller [0c03]: Renesas [1912:0015]\n\t\tKernel driver in use: vfio-pci';
    const fix = diagnose(parseEvidence(text), { rule: 'upstream' }).groups[0]!.fix;
    expect(fix).toContain('echo 0000:00:1c.0 | sudo tee /sys/bus/pci/drivers/shpchp/unbind');
    const commands = fix.filter((f) => !f.startsWith('#'));
    expect(commands.some((f) => f.includes('0000:00:1c.0') && f.includes('vfio-pci'))).toBe(false);
    expect(commands.some((f) => f.includes('softdep'))).toBe(false);
    expect(fix).toContain('echo "options vfio-pci ids=1912:0015" | sudo tee -a /etc/modprobe.d/vfio.conf');
  });

  it.each([
    ['6.2.10-201.fsync.fc37.x86_64', 'sudo dracut -f --regenerate-all'],
    ['5.15.0-91-generic', 'sudo update-initramfs -u -k all'],
    ['6.6.7-arch1-1', 'sudo mkinitcpio -P'],
  ])('issue 22: the initramfs step names the distribution of kernel %s', (release, command) => {
    expect(initramfsSteps(release)).toContain(command);
  });

  it('issue 22: without a kernel release the initramfs step lists each distribution', () => {
    const steps = initramfsSteps(undefined).join('\n');
    for (const c of ['update-initramfs -u -k all', 'dracut -f', 'mkinitcpio -P']) expect(steps).toContain(c);
  });

  it('issue 22 advice: without a kernel release, every distribution is named beside its initramfs command (Debian/Ubuntu shares Proxmox VE\'s)', () => {
    const steps = initramfsSteps(undefined);
    for (const name of ['Proxmox VE', 'Debian/Ubuntu', 'Fedora/RHEL', 'Arch', 'openSUSE']) expect(steps.some((l) => l.includes(name))).toBe(true);
    expect(steps).toContain('#   Proxmox VE, Debian/Ubuntu: sudo update-initramfs -u -k all');
  });

  it.each([
    ['6.8.12-4-pve', ["grep -s vfio /etc/initramfs-tools/modules", "printf 'vfio\\nvfio_iommu_type1\\nvfio_pci\\n' | sudo tee -a /etc/initramfs-tools/modules"]],
    ['6.2.10-201.fsync.fc37.x86_64', ['grep -rs vfio /etc/dracut.conf.d/', 'echo \'force_drivers+=" vfio vfio_iommu_type1 vfio_pci "\' | sudo tee -a /etc/dracut.conf.d/vfio.conf']],
    ['6.6.7-arch1-1', ['# Arch: add vfio_pci vfio vfio_iommu_type1 to MODULES=(...) in /etc/mkinitcpio.conf, before any GPU driver listed there (edit, keep what is there)']],
  ])('issue 22 advice: vfio-pci is put into the initramfs the way kernel %s\'s distribution does it, before the rebuild', (release, lines) => {
    const steps = initramfsSteps(release);
    for (const line of lines) expect(steps).toContain(line);
    expect(steps.indexOf(lines[lines.length - 1]!)).toBeLessThan(steps.length - 1);
  });

  it.each([['6.6.7-arch1-1'], ['6.2.10-201.fsync.fc37.x86_64'], ['6.8.12-4-pve']])(
    'issue 22 advice: the initramfs header for kernel %s speaks of a grep only when a grep line follows it, and every append into /etc is preceded by one',
    (release) => {
      const steps = initramfsSteps(release);
      const header = steps.find((l) => l.startsWith('# put vfio-pci into the initramfs'))!;
      const greps = steps.filter((l) => l.startsWith('grep '));
      expect(header.includes('grep')).toBe(greps.length > 0);
      const appends = steps.filter((l) => / tee -a \/etc\//.test(l));
      for (const a of appends) expect(steps.slice(0, steps.indexOf(a)).some((l) => l.startsWith('grep '))).toBe(true);
    },
  );

  it('issue 22 advice: a blocker on a storage driver (ahci, nvme) gets a check that no host disk sits behind it before it is unbound', () => {
    const text = 'vfio 0000:01:00.0: group 12 is not viable\nIOMMU Group 12:\n\t01:00.0 USB controller [0c03]: AMD [1022:43d0]\n\t\tKernel driver in use: vfio-pci\n\t01:00.1 SATA controller [0106]: AMD [1022:43c8]\n\t\tKernel driver in use: ahci';
    const fix = diagnose(parseEvidence(text)).groups[0]!.fix;
    const check = fix.indexOf('ls -l /sys/block/ | grep 0000:01:00.1   # a host disk behind 0000:01:00.1 (ahci) would go with it: move it first');
    expect(check).toBeGreaterThanOrEqual(0);
    expect(check).toBeLessThan(fix.indexOf('echo 0000:01:00.1 | sudo tee /sys/bus/pci/drivers/ahci/unbind'));
  });

  it.each([
    ['cannot add vfio group to container, error 22 (invalid argument)', 'cannot add vfio group to container, error 22 (invalid argument)'],
    ['kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0: vfio 0000:01:00.0: group 1 is not viable', 'vfio 0000:01:00.0: group 1 is not viable'],
  ])('issue 22: a reported error line is shortened only by the launcher preamble before "vfio", never cut mid-sentence (%s)', (line, shown) => {
    expect(formatDiagnosis(diagnose(parseEvidence(line)))).toContain(`line 1): ${shown}\n`);
  });

  it('issue 22: device descriptions are never cut before their [vendor:device] ids', () => {
    const out = formatDiagnosis(diagnose(parseEvidence(rtx())));
    expect(out).toContain('[10de:1ad9]');
    expect(out).toContain('[10de:1ad8]');
    const long = `${'Intel Corporation 200 Series/Z370 Chipset Family PCI Express Root Port #5 with a long marketing name '.repeat(2)}[8086:a294] (rev f0)`;
    expect(shortDescription(long)).toContain('[8086:a294] (rev f0)');
    expect(shortDescription(long).length).toBeLessThanOrEqual(110);
  });
});
