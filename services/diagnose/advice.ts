import type { DeviceFacts, Facts } from './evidence.js';

/**
 * The kernel module behind a driver, for `softdep` and `modprobe` lines (they take module names, not driver
 * names). Only drivers whose module is known: a wrong name in `softdep` does nothing, silently.
 */
const MODULE_OF_DRIVER: Readonly<Record<string, string>> = {
  'nvidia-gpu': 'i2c_nvidia_gpu',
  xhci_hcd: 'xhci_pci',
  'ehci-pci': 'ehci_pci',
  'ohci-pci': 'ohci_pci',
  'uhci_hcd': 'uhci_hcd',
  snd_hda_intel: 'snd_hda_intel',
  nvidia: 'nvidia',
  nouveau: 'nouveau',
  amdgpu: 'amdgpu',
  radeon: 'radeon',
  i915: 'i915',
  ahci: 'ahci',
  nvme: 'nvme',
  igb: 'igb',
  e1000e: 'e1000e',
  r8169: 'r8169',
  ixgbe: 'ixgbe',
  i40e: 'i40e',
  mlx5_core: 'mlx5_core',
  ccp: 'ccp',
  'pci-stub': 'pci_stub',
};

const sameModule = (a: string, b: string): boolean => a.replace(/-/g, '_') === b.replace(/-/g, '_');

/** the module of the device's current driver: the one `lspci -k` listed under "Kernel modules" that matches, else the table */
export const moduleOf = (d: DeviceFacts): string | undefined => {
  const driver = d.driver?.name;
  if (!driver) return undefined;
  const listed = d.modules ?? [];
  const named = listed.find((m) => sameModule(m, driver));
  if (named) return named;
  const known = MODULE_OF_DRIVER[driver];
  if (known) return known;
  // lspci lists the modules that could drive the device; when it lists one, that one is bound
  return listed.length === 1 ? listed[0] : undefined;
};

interface Distribution {
  readonly name: string;
  readonly release: RegExp;
  readonly rebuild: string;
  /** how a parameter reaches the kernel command line at the next boot (`PARAM` stands for it) */
  readonly cmdline: string;
  /** how vfio-pci gets into the initramfs, so that it is there before the drivers it must beat */
  readonly modules: readonly string[];
}

const INITRAMFS_TOOLS_MODULES = [
  'grep -s vfio /etc/initramfs-tools/modules',
  "printf 'vfio\\nvfio_iommu_type1\\nvfio_pci\\n' | sudo tee -a /etc/initramfs-tools/modules",
];
const DRACUT_MODULES = ['grep -rs vfio /etc/dracut.conf.d/', 'echo \'force_drivers+=" vfio vfio_iommu_type1 vfio_pci "\' | sudo tee -a /etc/dracut.conf.d/vfio.conf'];

const GRUB_DEFAULT = 'add PARAM to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub (edit, keep what is there), then';
const DISTRIBUTIONS: readonly Distribution[] = [
  {
    name: 'Proxmox VE',
    release: /-pve$/,
    rebuild: 'sudo update-initramfs -u -k all',
    cmdline: `${GRUB_DEFAULT} sudo update-grub; with systemd-boot (ZFS root) add it to /etc/kernel/cmdline, then sudo proxmox-boot-tool refresh`,
    modules: INITRAMFS_TOOLS_MODULES,
  },
  { name: 'Debian/Ubuntu', release: /-(?:generic|amd64|lowlatency|cloud-amd64)$/, rebuild: 'sudo update-initramfs -u -k all', cmdline: `${GRUB_DEFAULT} sudo update-grub`, modules: INITRAMFS_TOOLS_MODULES },
  { name: 'Fedora/RHEL', release: /\.(?:fc\d+|el\d+(?:_\d+)?)\./, rebuild: 'sudo dracut -f --regenerate-all', cmdline: 'sudo grubby --update-kernel=ALL --args="PARAM"', modules: DRACUT_MODULES },
  {
    name: 'Arch',
    release: /-arch\d|-zen\d|-lts$/,
    rebuild: 'sudo mkinitcpio -P',
    cmdline: `${GRUB_DEFAULT} sudo grub-mkconfig -o /boot/grub/grub.cfg`,
    modules: ['# Arch: add vfio_pci vfio vfio_iommu_type1 to MODULES=(...) in /etc/mkinitcpio.conf, before any GPU driver listed there (edit, keep what is there)'],
  },
  { name: 'openSUSE', release: /-default$/, rebuild: 'sudo dracut -f', cmdline: `${GRUB_DEFAULT} sudo grub2-mkconfig -o /boot/grub2/grub.cfg`, modules: DRACUT_MODULES },
];

/** the distribution the kernel release names, or every distribution when it names none */
const distributionsFor = (kernelRelease: string | undefined): { known: boolean; list: readonly Distribution[] } => {
  const known = kernelRelease ? DISTRIBUTIONS.find((d) => d.release.test(kernelRelease)) : undefined;
  return known ? { known: true, list: [known] } : { known: false, list: DISTRIBUTIONS };
};

/** the initramfs rebuild the persistent fix depends on: the paste's distribution when its kernel release names one, else each */
export const initramfsSteps = (kernelRelease: string | undefined): string[] => {
  const { known, list } = distributionsFor(kernelRelease);
  if (known) {
    const d = list[0]!;
    return [
      `# put vfio-pci into the initramfs (${d.name}, kernel ${kernelRelease})${d.modules.some((m) => m.startsWith('grep ')) ? '; skip the append when the grep shows it there already' : ''}:`,
      ...d.modules,
      `# rebuild the initramfs so the options apply at boot (${d.name}, kernel ${kernelRelease}):`,
      d.rebuild,
    ];
  }
  // one line per command, naming every distribution that uses it
  const byCommand = (command: (d: Distribution) => string): string[] =>
    [...new Set(list.map(command))].map((c) => `#   ${list.filter((d) => command(d) === c).map((d) => d.name).join(', ')}: ${c}`);
  return [
    '# put vfio-pci into the initramfs; how depends on the distribution:',
    ...byCommand((d) => d.modules.map((m) => m.replace(/^# Arch: /, '')).join('; then ')),
    '# rebuild the initramfs so the options apply at boot; the command depends on the distribution:',
    ...byCommand((d) => d.rebuild),
  ];
};

/**
 * What gives a device an IOMMU group: the IOMMU on in the firmware and (Intel) on the kernel command line, by
 * the paste's distribution when its kernel release names one; then the check that the device got a group.
 */
export const iommuOnSteps = (device: string, kernelRelease: string | undefined): string[] => {
  const { known, list } = distributionsFor(kernelRelease);
  return [
    `# ${device} has no IOMMU group: VFIO takes a device only once the IOMMU covers it`,
    '# 1. in the firmware setup, enable VT-d (Intel) or IOMMU / AMD-Vi (AMD)',
    '# 2. Intel: put intel_iommu=on on the kernel command line (AMD turns its IOMMU on by default: amd_iommu=off must not be there)',
    ...(known
      ? [`#    ${list[0]!.name} (kernel ${kernelRelease}): ${list[0]!.cmdline.replace('PARAM', 'intel_iommu=on')}`]
      : ['#    the step depends on the distribution:', ...list.map((d) => `#    ${d.name}: ${d.cmdline.replace('PARAM', 'intel_iommu=on')}`)]),
    `# 3. after a reboot this must print a group, and dmesg must show "Adding to iommu group" for ${device}:`,
    `readlink /sys/bus/pci/devices/${device}/iommu_group`,
    '# if dmesg shows the IOMMU on (DMAR, AMD-Vi, SMMU) and the device still gets no group, no IOMMU sits in front of its PCIe controller (some ARM boards): no setting gives it one',
  ];
};

const MODPROBE_FILE = '/etc/modprobe.d/vfio.conf';

/** drivers of disk controllers: unbinding one takes the host's disks behind it away */
const STORAGE_DRIVERS = new Set(['ahci', 'nvme', 'ata_piix', 'megaraid_sas', 'mpt3sas', 'smartpqi', 'aacraid', 'isci']);

/**
 * Shell lines that release the blockers and hand the passable members to vfio-pci, now and at boot. Never
 * overwrites a user's file (`tee -a`, after a look at what is there); `softdep` lines use module names.
 */
export const fixFor = (
  where: string,
  blockers: readonly DeviceFacts[],
  members: readonly DeviceFacts[],
  facts: Facts,
  isBridge: (d: DeviceFacts) => boolean | undefined,
): { fix: string[]; notes: string[] } => {
  const fix: string[] = [];
  const notes: string[] = [];
  if (blockers.length === 0) return { fix, notes };
  fix.push(`# 1. release the kernel drivers that hold ${where} (a driver-less member does not block)`);
  for (const b of blockers) {
    if (STORAGE_DRIVERS.has(b.driver!.name!)) fix.push(`ls -l /sys/block/ | grep ${b.device}   # a host disk behind ${b.device} (${b.driver!.name}) would go with it: move it first`);
    fix.push(`echo ${b.device} | sudo tee /sys/bus/pci/drivers/${b.driver!.name}/unbind`);
  }
  fix.push('# 2. optional: hand them to vfio-pci until the next reboot');
  fix.push('sudo modprobe vfio-pci');
  for (const b of blockers) {
    if (isBridge(b) === true) {
      // vfio-pci refuses devices without a normal header: a driver-less bridge no longer blocks
      fix.push(`# ${b.device} is a bridge: vfio-pci does not take bridges; left without a driver it no longer blocks`);
      continue;
    }
    fix.push(`echo vfio-pci | sudo tee /sys/bus/pci/devices/${b.device}/driver_override`);
    fix.push(`echo ${b.device} | sudo tee /sys/bus/pci/drivers/vfio-pci/bind`);
  }
  const passable = members.filter((m) => isBridge(m) !== true);
  const ids = [...new Set(passable.filter((m) => m.vendorId && m.deviceId).map((m) => `${m.vendorId}:${m.deviceId}`))];
  const missingIds = passable.filter((m) => !(m.vendorId && m.deviceId)).map((m) => m.device);
  fix.push('# 3. persistent: let vfio-pci claim the ids at boot, before the other drivers');
  if (ids.length > 0) {
    fix.push(`# first look at what is there: an existing "options vfio-pci ids=" line must get these ids added, not a second line (the later one wins)`);
    fix.push(`grep -rs vfio /etc/modprobe.d/`);
    fix.push(`echo "options vfio-pci ids=${ids.join(',')}" | sudo tee -a ${MODPROBE_FILE}`);
    const modules = new Map<string, string | undefined>();
    for (const b of blockers) {
      if (isBridge(b) === true) fix.push(`# ${b.device} is a bridge that ${b.driver!.name} takes again at boot; vfio-pci cannot claim it first, so unbind it again after each boot`);
      else modules.set(b.driver!.name!, moduleOf(b));
    }
    for (const [driver, module] of modules) {
      if (module) fix.push(`echo "softdep ${module} pre: vfio-pci" | sudo tee -a ${MODPROBE_FILE}`);
      else fix.push(`# the module behind ${driver} is not in the paste: readlink /sys/bus/pci/drivers/${driver}/module, then add "softdep <module> pre: vfio-pci"`);
    }
    fix.push(...initramfsSteps(facts.kernelRelease));
    fix.push(`# or on the kernel command line instead: vfio-pci.ids=${ids.join(',')}`);
    notes.push(`vfio-pci ids= matches every device with those ids, not only ${where}'s`);
  }
  if (missingIds.length > 0) fix.push(`# vendor:device ids of ${missingIds.join(', ')} not shown: lspci -nn -s <device>`);
  for (const b of blockers) {
    const reg = facts.idRegistrations.find((r) => r.vendorId === b.vendorId && r.deviceId === b.deviceId);
    if (reg) {
      const how = reg.source === 'log' ? `registered ${b.vendorId}:${b.deviceId} (line ${reg.evidence.line})` : `is asked to take ${b.vendorId}:${b.deviceId} (line ${reg.evidence.line})`;
      notes.push(`${reg.driver} ${how} but ${b.device} is bound to ${b.driver!.name}: that driver probed it first; load ${reg.driver} earlier (softdep, or vfio-pci in the initramfs)`);
    }
  }
  notes.push(
    `unbinding takes the devices away from the host; if the host needs one of them, it cannot stay on the host while ${where} is passed through (a slot whose group holds only the card avoids this)`,
  );
  return { fix, notes };
};
