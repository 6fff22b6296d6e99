import { normalizePciAddress } from '../../schemas/index.js';
import { emptyFacts, type DeviceFacts, type ErrorClaim, type ErrorOrigin, type Evidence, type EvidenceKind, type Facts } from './evidence.js';
import { toPasteLines, type PasteLine } from './pasteLines.js';

// a PCI address with or without the domain, as lspci (with or without -D) and sysfs print it
const BDF = String.raw`(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]`;

const IDS = String.raw`\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\]`;

const RE = {
  // `IOMMU Group 1:`, `IOMMU group 7`, `Group 3`, `### Group 3 ###`
  groupHeader: /^\s*(?:#+\s*)?(?:IOMMU\s+)?group\s*:?\s*(\d+)\s*:?\s*(?:#+\s*)?$/i,
  // `IOMMU Group 13 06:00.0 VGA ...`, `Group: 13 06:00.0 ... Driver: vfio-pci`, `Group 15:\t[10de:21c4] [R] 09:00.0  VGA ...`
  groupDeviceLine: new RegExp(String.raw`^\s*(?:IOMMU\s+)?group\s*:?\s*(\d+)\s*:?\s*(?:${IDS}\s*(?:\[R\]\s*)?)?(${BDF})(?:\s+(.*))?$`, 'i'),
  // a find loop's `[IOMMU 10] 00:08.3 PCI bridge [0604]: ...`
  iommuBracketLine: new RegExp(String.raw`^\s*\[IOMMU\s+(?:group\s+)?(\d+)\]\s+(${BDF})(?:\s+(.*))?$`, 'i'),
  // libvirt's domain log: `starting up libvirt version: 7.5.0, qemu version: 6.0.0, kernel: 5.12.15-arch1-1, hostname: ...`
  libvirtKernel: /starting up libvirt version:.*?\bkernel:\s*(\d+\.\d+[^\s,]*)/,
  // the members after the first in the `Group 15:\t[ids] [R] BDF` listing: `\t\t[10de:1aeb]     09:00.1  Audio device ...`
  idsFirstLine: new RegExp(String.raw`^\s*${IDS}\s+(?:\[R\]\s+)?(${BDF})\s+(.*)$`),
  // ls-iommu without addresses: the group exists, its members stay unknown
  groupNoAddress: /^\s*IOMMU\s+Group\s+(\d+)\s*:\s*\S/i,
  // the shell loop over /sys/kernel/iommu_groups/* printed the glob itself: there are no groups
  groupGlob: /^\s*IOMMU\s+Group\s+\*/i,
  trailingDriver: /\s+Driver:\s*(\(?[A-Za-z0-9_.:+-]*\)?)\s*$/i,
  groupPath: new RegExp(String.raw`/sys/kernel/iommu_groups/(\d+)/devices/(${BDF})\b`),
  // a platform (non-PCI) member: `/sys/kernel/iommu_groups/1/devices/107c580000.hvs`
  groupPathOther: /\/sys\/kernel\/iommu_groups\/(\d+)\/devices\/\S+/,
  // a command over every group: `find /sys/kernel/iommu_groups/ -type l`, `for d in $(find /sys/kernel/iommu_groups/*/devices/*)`
  everyGroupArg: /\/sys\/kernel\/iommu_groups(?:\/?(?:\s|$|\)|"|')|\/\*)/,
  deviceLine: new RegExp(String.raw`^\s*(${BDF})(?:\s+(.*))?$`),
  bareBdfs: new RegExp(String.raw`^\s*(?:${BDF}\s*)+$`),
  anyBdf: new RegExp(BDF, 'g'),
  driverInUse: /Kernel\s*driver\s*in\s*use\s*:\s*([A-Za-z0-9_.:+-]+)/i,
  modules: /Kernel\s*modules\s*:\s*(.+)$/i,
  classAndIds: /^([^[\]]*?)\s*\[([0-9a-fA-F]{4})\](?:\s*:|\s)/,
  ids: new RegExp(IDS, 'g'),
  progIf: /\(prog-if\s+([0-9a-fA-F]{2})\b/i,
  // lspci -v `Flags: bus master, fast devsel, latency 0, IRQ 16, IOMMU group 2`; lspci -vv `IOMMU group: 2`
  // the wrapped end of a device line: `SUPER] [10de:1e81] (rev a1)` (no `Name:` prefix, ids present)
  wrappedTail: /^\s*(?![A-Za-z][\w ]*:\s)[^:]*\[[0-9a-fA-F]{4}:[0-9a-fA-F]{4}\][^:]*$/,
  lspciIommuGroup: /\bIOMMU group:?\s*(\d+)\b/i,
  lsDirHeader: /^\s*(\/sys\/\S+?)\/?:\s*$/,
  lsGroupDir: /^\/sys\/kernel\/iommu_groups\/(\d+)\/devices$/,
  sysDeviceDir: new RegExp(String.raw`^/sys/bus/pci/devices/(${BDF})$`),
  prompt: /^\s*(?:\[[^\]]*\][$#]\s*|\S*[$#>%]\s+|[$#]\s*)?(?:sudo\s+)?(ls|readlink|find|lspci|dmesg|journalctl|uname|cat|for|tree|virsh)\b(.*)$/,
  promptGroupArg: /\/sys\/kernel\/iommu_groups\/(\d+)\/devices\b/,
  promptDeviceArg: new RegExp(String.raw`/sys/bus/pci/devices/(${BDF}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)/?`),
  shellVar: new RegExp(String.raw`^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=["']?(${BDF})["']?\s*$`),
  readlinkGroup: /^\s*(?:\.\.\/)*(?:\/sys\/)?kernel\/iommu_groups\/(\d+)\s*$/,
  symlink: /(\S+)\s+->\s*(\S*)\s*$/,
  lsTotal: /^\s*total\s+\d+\s*$/,
  lsDotEntry: /\s\.{1,2}$/,
  // kernel log prefixes: dmesg, dmesg -T, journalctl, syslog with ISO time
  logPrefix: [
    /^\s*<\d>\s*/,
    /^\s*\[\s*\d+\.\d+\]\s?/,
    /^\s*\[[A-Z][a-z]{2} [A-Z][a-z]{2}\s+\d+ [\d:]+ \d{4}\]\s?/,
    // syslog and journalctl (`-o short`, and `-o short-precise` with fractional seconds)
    /^\s*[A-Z][a-z]{2}\s+\d+\s+\d\d:\d\d:\d\d(?:\.\d+)?\s+\S+\s+kernel:\s*/,
    /^\s*\d{4}-\d\d-\d\d[T ]\S+\s+\S+\s+kernel:\s*/,
  ],
  addToGroup: new RegExp(String.raw`(${BDF}):\s*Adding to iommu group (\d+)`, 'i'),
  // before v5.8: `iommu: Adding device 0000:01:00.0 to group 1`
  addDeviceToGroup: new RegExp(String.raw`iommu:\s*Adding device (${BDF}) to group (\d+)`, 'i'),
  // a mediated device (a UUID, not a PCI address) joining its own group: `iommu: Adding device <uuid> to group 0`,
  // `vfio_mdev <uuid>: MDEV: group_id = 0`; it says the IOMMU layer is up, nothing about a PCI group
  mdevGroup: /(?:iommu:\s*Adding device [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} to group \d+|vfio_mdev [0-9a-f-]{36}: MDEV: group_id = \d+)/i,
  removeFromGroup: new RegExp(String.raw`(${BDF}):\s*Removing from iommu group (\d+)`, 'i'),
  // a driver's own log line about a device: `vfio-pci 0000:01:00.0: ...`, `snd_hda_intel 0000:01:00.1: ...`
  driverLogLine: new RegExp(String.raw`^([a-z][\w-]*)\s+(${BDF}):\s`),
  vfioAdd: /vfio[_-]pci:\s*add\s*\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})/i,
  stubAdd: /pci-stub:\s*add\s+([0-9a-fA-F]{4}):([0-9a-fA-F]{4})/i,
  stubClaimed: new RegExp(String.raw`pci-stub\s+(${BDF}):\s*claimed by stub`, 'i'),
  // the kernel refusing a device whose firmware requires a 1:1 mapping (RMRR): the iommu core since v6.x (-EINVAL),
  // intel-iommu before (-EPERM); posters often paste the message without its `vfio-pci 0000:04:00.1:` prefix
  requireDirect: new RegExp(
    String.raw`(?:(${BDF}):\s*(?:DMAR:\s*)?)?(?:Firmware has requested this device have a 1:1 IOMMU mapping|Device is ineligible for IOMMU domain attach due to platform RMRR requirement)`,
    'i',
  ),
  linuxVersion: /Linux version (\d+\.\d+[^\s]*)/,
  unameA: /^\s*Linux\s+\S+\s+(\d+\.\d+\.\d+\S*)\s+#/,
  release: /^\s*(\d+\.\d+\.\d+[-\w.+~]*)\s*$/,
  bootImage: /BOOT_IMAGE=\S*?vmlinuz-(\d+\.\d+[^\s]*)/,
  cmdlineIds: /\bvfio[-_]pci\.ids=([0-9a-fA-F:,]+)/,
  modprobeIds: /^\s*options\s+vfio[-_]pci\b.*\bids=([0-9a-fA-F:,]+)/,
  acsOverride: /\bpcie_acs_override=\S+/,
  notViable: /group\s+(\d+)\s+is\s+not\s+viable/i,
  notViableNoNumber: /group\s+(?:\S+\s+)?is\s+not\s+viable/i,
  // DPDK EAL: `0000:44:00.3 VFIO group is not viable! Not all devices in IOMMU group bound to VFIO or unbound`
  ealNotViable: new RegExp(String.raw`(${BDF}):?\s+VFIO group is not viable`, 'i'),
  // dpdk-devbind.py --status: `0000:44:00.0 'Ethernet Controller X710 ...' if=enp68s0f0 drv=i40e unused=vfio-pci *Active*`
  devbind: new RegExp(String.raw`^\s*(${BDF})\s+'[^']*'\s+(?:if=\S+\s+)?(?:drv=(\S+)\s+)?unused=`),
  // lspci -vmm records: `Slot:\t00:01.3`, then `Class:`, `Vendor:`, `Device:`, `Driver:`, `IOMMUGroup:`
  vmmSlot: new RegExp(String.raw`^\s*Slot:\s+(${BDF})\s*$`),
  vmmField: /^\s*(Class|Vendor|Device|SVendor|SDevice|Driver|Module|IOMMUGroup|Rev|ProgIf|PhySlot|NUMANode):\s*(.*)$/,
  notViableDevice: new RegExp(String.raw`(${BDF})\s*:\s*group\s+\d+\s+is\s+not\s+viable`, 'i'),
  groupBusy: /(?:error getting device from group|Verify all devices in group)\s+(\d+)/i,
  // `failed to open /dev/vfio/1: No such file or directory` (or `Device or resource busy`, `Operation not permitted`)
  noVfioNode: /failed to open \/dev\/vfio\/(\d+)(?::\s*([A-Za-z/ ]*[A-Za-z]))?/i,
  noIommuGroup: /no iommu_group found|device is not in an iommu group/i,
  // `vfio-pci 0000:01:00.0: probe with driver vfio-pci failed with error -22`, before v5.x `vfio-pci: probe of 0000:01:00.0 failed with error -22`
  probeEinval: new RegExp(String.raw`probe with driver vfio[-_]pci failed with error -22\b|vfio[-_]pci: probe of (${BDF}) failed with error -22\b`, 'i'),
  // VFIO_GROUP_SET_CONTAINER refused: QEMU `failed to setup container for group 37: Failed to set group container:
  // Operation not permitted` (or `Failed to set iommu for container: ...`), DPDK `cannot add vfio group to container,
  // error 22 (invalid argument)`, tools `VFIO_GROUP_SET_CONTAINER: invalid argument`
  containerRefused:
    /failed to setup container for group (\d+):\s*Failed to set (?:group container|iommu for container):\s*([A-Za-z/ ]*[A-Za-z])|cannot add vfio group to container, error (\d+)(?:\s*\(([^)]*)\))?|VFIO_GROUP_SET_CONTAINER:\s*([A-Za-z ]*[A-Za-z])/i,
  // QEMU's do_pci_register_device: `PCI: slot 2 function 0 not available for vfio-pci, in use by VGA`
  guestSlotTaken: /slot \d+ function \d+ not available for vfio-pci, in use by/i,
  resetDepends: new RegExp(String.raw`Cannot reset device (${BDF}), depends on group (\d+) which is not owned`, 'i'),
  addressSpaces: new RegExp(String.raw`(${BDF}):\s*group (\d+) used in multiple address spaces`, 'i'),
  toolGroupCheck: new RegExp(String.raw`for (${BDF}):\s*IOMMU group (\d+) has devices not bound`, 'i'),
  otherVfio: /not available for vfio-pci|probe with driver vfio-pci failed|vfio[ :].*(?:error|failed)/i,
  vfioDevice: new RegExp(String.raw`vfio(?:[-_]pci)?(?: error:)?\s+(${BDF})\s*:`, 'i'),
  hostArg: new RegExp(String.raw`host[\\"']*[=:]\s*[\\"']*(${BDF})`, 'i'),
  // a tool's own report of membership and drivers (PCILeech generators, vfio bind scripts)
  inGroup: new RegExp(String.raw`(${BDF}) is in IOMMU group (\d+)(?: with:\s*((?:${BDF}\s*)+))?`, 'i'),
  wrongDriver: new RegExp(String.raw`\('(${BDF})',\s*'([^']+)'\)`, 'g'),
  boundTo: new RegExp(String.raw`Device \S+ at (${BDF}) bound to (\S+)`),
  // lspci -tv: `-[0000:00]-+-01.0-[01]--+-00.0  NVIDIA ...`, `           |            \-00.3  NVIDIA ...`
  treeStart: /^\s*(?:-\[[0-9a-fA-F]{4}:[0-9a-fA-F]{2}\]-|[|+\\ ]*[+\\]-[0-9a-fA-F]{2}\.[0-7])/,
  treeToken: /(-\[(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2})(?:-[0-9a-fA-F]{2})?\]-*)|([+\\]-)([0-9a-fA-F]{2}\.[0-7])(?:-\[([0-9a-fA-F]{2})(?:-[0-9a-fA-F]{2})?\]-*)?/g,
  // virsh nodedev-dumpxml
  xmlName: /<name>([^<]+)<\/name>/,
  xmlDriverOpen: /<driver>/,
  xmlGroup: /<iommuGroup number=['"](\d+)['"]/,
  xmlGroupClose: /<\/iommuGroup>/,
  xmlAddress: /<address domain=['"]0x([0-9a-fA-F]+)['"] bus=['"]0x([0-9a-fA-F]+)['"] slot=['"]0x([0-9a-fA-F]+)['"] function=['"]0x([0-7])['"]/,
  xmlId: /<(vendor|product) id=['"]0x([0-9a-fA-F]{4})['"]/,
  xmlClass: /<class>0x([0-9a-fA-F]{6})<\/class>/,
};

const KERNEL_NOT_DRIVERS = new Set(['pci', 'pci_bus', 'iommu', 'dmar', 'amd-vi', 'vgaarb', 'platform', 'acpi']);

type Section =
  | { readonly kind: 'none' }
  | { readonly kind: 'group'; readonly group: number }
  | { readonly kind: 'groupLines' }
  | { readonly kind: 'lspci' }
  | { readonly kind: 'lsGroup'; readonly group: number }
  | { readonly kind: 'sysDevice'; readonly device: string };

/** an lspci device block: used at the end to tell "no driver" from "driver never shown" */
interface Block {
  readonly device: string;
  readonly run: number;
  readonly line: number;
  hasDetails: boolean;
  hasDriverLine: boolean;
  driverLineCut: boolean;
}

const norm = (raw: string): string | undefined => normalizePciAddress(raw);

// a "Kernel driver in use" line cut short by a forum or terminal (`Ker`, `Kernel driver in`): the driver is unknown, not absent
const isCutDriverLine = (text: string): boolean => {
  const s = text.trim().toLowerCase().replace(/\s+/g, ' ').replace(/\s*:$/, '');
  return s.length >= 3 && 'kernel driver in use'.startsWith(s);
};

// the errno a VMM or tool prints, by number or by strerror text
const ERRNO: Readonly<Record<string, string>> = {
  '1': 'EPERM',
  'operation not permitted': 'EPERM',
  '5': 'EIO',
  'input/output error': 'EIO',
  '16': 'EBUSY',
  'device or resource busy': 'EBUSY',
  '13': 'EACCES',
  'permission denied': 'EACCES',
  '22': 'EINVAL',
  'invalid argument': 'EINVAL',
};
const errnoOf = (raw: string): string | undefined => ERRNO[raw.trim().toLowerCase()];

const stripLogPrefix = (text: string): string | undefined => {
  for (const re of RE.logPrefix) {
    const m = re.exec(text);
    if (m) return text.slice(m[0].length);
  }
  return undefined;
};

const originOf = (context: string): ErrorOrigin => {
  if (/virt-launcher|virt-handler|SyncVMI|kubevirt|virError|"component"/i.test(context)) return 'kubevirt';
  if (/libvirt|virsh|internal error|unexpectedly closed the monitor|Failed to start domain|process exited while connecting/i.test(context)) return 'libvirt';
  // Proxmox runs QEMU as `kvm`
  if (/qemu|^\s*kvm:|vfio: error|vfio error:|vfio \S+: group/im.test(context)) return 'qemu';
  return 'other';
};

/**
 * Reads a paste of mixed command output (IOMMU group listings, lspci, ls of sysfs, kernel logs, VMM
 * errors) into facts, combining the blocks. Pure: no I/O, same text → same facts.
 */
export const parseEvidence = (text: string): Facts => {
  const lines = toPasteLines(text);
  const facts = emptyFacts(lines.length === 0 ? 0 : lines[lines.length - 1]!.line);
  let section: Section = { kind: 'none' };
  let current: string | undefined;
  let lspciRun = 0;
  const runsWithDriverLines = new Set<number>();
  const blocks: Block[] = [];
  let block: Block | undefined;
  let lastWasSymlink = false;
  let lastTarget = '';
  let expectRelease = false;
  let expectReadlink: string | undefined;
  // after `readlink /sys/bus/pci/devices/*/iommu_group`: group links that name no device
  let readlinkGlob = false;
  let lastLineGroup: number | undefined;
  // the output of a command over every group: how many PCI and other members it printed
  let everyGroup: { line: number; pci: number; other: number } | undefined;
  const closeEveryGroup = (): void => {
    if (everyGroup && everyGroup.pci === 0 && everyGroup.other > 0) facts.noPciGroups ??= { kind: 'ls-sysfs', line: everyGroup.line };
    everyGroup = undefined;
  };
  const shellVars = new Map<string, string>();
  const seenErrors = new Set<string>();

  const count = (kind: EvidenceKind): void => {
    facts.formats.set(kind, (facts.formats.get(kind) ?? 0) + 1);
  };
  const device = (name: string): DeviceFacts => {
    let d = facts.devices.get(name);
    if (!d) {
      d = { device: name };
      facts.devices.set(name, d);
    }
    return d;
  };
  const addMember = (group: number, name: string, evidence: Evidence, complete: boolean): void => {
    let g = facts.groups.get(group);
    if (!g) {
      g = { group, members: new Set(), complete: false, evidence: [] };
      facts.groups.set(group, g);
    }
    g.members.add(name);
    if (complete) g.complete = true;
    if (!g.evidence.some((e) => e.kind === evidence.kind)) g.evidence.push(evidence);
    const d = device(name);
    if (d.group && d.group.group !== group) {
      facts.conflicts.push(
        `${name} appears in group ${d.group.group} (line ${d.group.evidence.line}) and in group ${group} (line ${evidence.line}); the later one is used`,
      );
      facts.groups.get(d.group.group)?.members.delete(name);
    }
    d.group = { group, evidence };
  };
  const setDriver = (name: string, driver: string | null, current: boolean, evidence: Evidence): void => {
    const d = device(name);
    const prev = d.driver;
    // a past state (kernel log) never overrides what a command showed as current
    if (prev && prev.current && !current) return;
    if (prev && prev.current && current && prev.name !== driver) {
      facts.conflicts.push(
        `${name} shows driver ${prev.name ?? '(none)'} on line ${prev.evidence.line} and ${driver ?? '(none)'} on line ${evidence.line}; the later one is used`,
      );
    }
    d.driver = { name: driver, current, evidence };
  };
  const describeDevice = (name: string, description: string | undefined, given?: readonly [string, string]): void => {
    const pair = given ? `${given[0].toLowerCase()}:${given[1].toLowerCase()}` : undefined;
    if (!description && !pair) return;
    const d = device(name);
    const text = `${description?.trim() ?? ''}${pair ? ` [${pair}]` : ''}`.trim();
    d.description = text;
    description = text;
    const cls = RE.classAndIds.exec(description);
    if (cls) d.classCode = cls[2]!.toLowerCase();
    const progIf = RE.progIf.exec(description);
    if (progIf && d.classCode?.length === 4) d.classCode += progIf[1]!.toLowerCase();
    const ids = [...description.matchAll(RE.ids)].pop();
    if (ids) {
      d.vendorId = ids[1]!.toLowerCase();
      d.deviceId = ids[2]!.toLowerCase();
    }
  };
  const startBlock = (name: string, line: number): void => {
    block = { device: name, run: lspciRun, line, hasDetails: false, hasDriverLine: false, driverLineCut: false };
    blocks.push(block);
    current = name;
  };

  const detailLine = (l: PasteLine, kind: EvidenceKind): boolean => {
    if (!current) return false;
    const d0 = facts.devices.get(current);
    if (block && !block.hasDetails && d0 && !d0.vendorId && RE.wrappedTail.test(l.text)) {
      // a terminal or forum wrapped the device line: the rest of the description, with the ids
      describeDevice(current, `${d0.description ?? ''} ${l.text.trim()}`);
      block.hasDetails = false;
      return true;
    }
    const drv = RE.driverInUse.exec(l.text);
    if (drv) {
      setDriver(current, drv[1]!, true, { kind, line: l.line });
      runsWithDriverLines.add(lspciRun);
      if (block) block.hasDriverLine = true;
      count(kind);
      return true;
    }
    if (isCutDriverLine(l.text)) {
      if (block) block.driverLineCut = true;
      return true;
    }
    const mods = RE.modules.exec(l.text);
    if (mods) {
      device(current).modules = mods[1]!.split(/[,\s]+/).filter((m) => m !== '');
      runsWithDriverLines.add(lspciRun);
      if (block) block.hasDetails = true;
      return true;
    }
    const grp = RE.lspciIommuGroup.exec(l.text);
    if (grp) {
      addMember(Number(grp[1]), current, { kind, line: l.line }, false);
      count(kind);
    }
    // any other line of a device block (Subsystem, Flags, Memory at..., Capabilities), indented or not:
    // forums often strip the indentation
    if (block) block.hasDetails = true;
    return true;
  };

  const kernelLog = (l: PasteLine): boolean => {
    const body = stripLogPrefix(l.text) ?? l.text;
    const ev: Evidence = { kind: 'kernel-log', line: l.line };
    const version = RE.linuxVersion.exec(body) ?? RE.unameA.exec(body);
    if (version) {
      facts.kernelRelease = version[1]!;
      count('kernel-log');
      return true;
    }
    if (commandLine(l)) return true;
    const add = RE.addToGroup.exec(body) ?? RE.addDeviceToGroup.exec(body);
    if (add) {
      const name = norm(add[1]!);
      if (name) addMember(Number(add[2]), name, ev, false);
      count('kernel-log');
      return true;
    }
    if (RE.mdevGroup.test(body)) {
      count('kernel-log');
      return true;
    }
    const remove = RE.removeFromGroup.exec(body);
    if (remove) {
      const name = norm(remove[1]!);
      const g = facts.groups.get(Number(remove[2]));
      if (name && g) g.members.delete(name);
      if (name && facts.devices.get(name)?.group?.group === Number(remove[2])) delete device(name).group;
      count('kernel-log');
      return true;
    }
    const vfio = RE.vfioAdd.exec(body);
    if (vfio) {
      facts.idRegistrations.push({ driver: 'vfio-pci', source: 'log', vendorId: vfio[1]!.toLowerCase(), deviceId: vfio[2]!.toLowerCase(), evidence: ev });
      count('kernel-log');
      return true;
    }
    const stub = RE.stubAdd.exec(body);
    if (stub) {
      facts.idRegistrations.push({ driver: 'pci-stub', source: 'log', vendorId: stub[1]!.toLowerCase(), deviceId: stub[2]!.toLowerCase(), evidence: ev });
      count('kernel-log');
      return true;
    }
    const claimed = RE.stubClaimed.exec(body);
    if (claimed) {
      const name = norm(claimed[1]!);
      if (name) setDriver(name, 'pci-stub', false, ev);
      count('kernel-log');
      return true;
    }
    const direct = RE.requireDirect.exec(body);
    if (direct) {
      const name = direct[1] ? norm(direct[1]) : undefined;
      if (name) facts.requireDirect.set(name, ev);
      else facts.requireDirectUnnamed ??= ev;
      count('kernel-log');
      return true;
    }
    // a driver logging about a device was bound to it then: a hint, never the current state
    const byDriver = stripLogPrefix(l.text) !== undefined ? RE.driverLogLine.exec(body) : null;
    if (byDriver && !KERNEL_NOT_DRIVERS.has(byDriver[1]!.toLowerCase())) {
      const name = norm(byDriver[2]!);
      if (name) setDriver(name, byDriver[1]!.replace(/_/g, '-') === 'vfio-pci' ? 'vfio-pci' : byDriver[1]!, false, ev);
      count('kernel-log');
      return true;
    }
    if (stripLogPrefix(l.text) !== undefined && /\b(?:DMAR|AMD-Vi|iommu)\b/i.test(body)) {
      count('kernel-log');
      return true;
    }
    return false;
  };

  /** the kernel command line (dmesg `Command line:`, /proc/cmdline) and modprobe options: release, vfio-pci ids, ACS override */
  const commandLine = (l: PasteLine): boolean => {
    const ev: Evidence = { kind: 'kernel-cmdline', line: l.line };
    const modprobe = RE.modprobeIds.exec(l.text);
    const boot = RE.bootImage.exec(l.text);
    if (!modprobe && !boot && !/\b(?:Kernel )?command line:/i.test(l.text)) return false;
    if (boot && !facts.kernelRelease) facts.kernelRelease = boot[1]!;
    const ids = (modprobe ?? RE.cmdlineIds.exec(l.text))?.[1];
    for (const pair of ids?.split(',') ?? []) {
      const [vendorId, deviceId] = pair.toLowerCase().split(':');
      if (vendorId && deviceId && !facts.idRegistrations.some((r) => r.source === 'config' && r.vendorId === vendorId && r.deviceId === deviceId)) {
        facts.idRegistrations.push({ driver: 'vfio-pci', source: 'config', vendorId, deviceId, evidence: ev });
      }
    }
    if (RE.acsOverride.test(l.text)) facts.acsOverride ??= ev;
    count('kernel-cmdline');
    return true;
  };

  const deviceIn = (l: PasteLine): string | undefined => {
    const m = RE.notViableDevice.exec(l.text) ?? RE.ealNotViable.exec(l.text) ?? RE.vfioDevice.exec(l.text) ?? RE.hostArg.exec(l.text) ?? RE.hostArg.exec(l.physical);
    return m ? norm(m[1]!) : undefined;
  };

  /** one error fact per (origin, claim, group, device): libvirt, virt-manager and KubeVirt repeat the same QEMU error */
  const vmmError = (l: PasteLine, index: number): boolean => {
    let claim: ErrorClaim;
    let errno: string | undefined;
    let group: number | undefined;
    let name: string | undefined;
    let m: RegExpExecArray | null;
    if ((m = RE.notViable.exec(l.text))) {
      claim = 'not-viable';
      group = Number(m[1]);
    } else if (RE.notViableNoNumber.test(l.text)) claim = 'not-viable';
    else if ((m = RE.groupBusy.exec(l.text))) {
      claim = 'group-busy';
      group = Number(m[1]);
    } else if ((m = RE.noVfioNode.exec(l.text))) {
      group = Number(m[1]);
      // the node exists when the open fails for any reason but ENOENT: busy (another user), or denied
      errno = errnoOf(m[2] ?? '');
      claim = errno === 'EBUSY' ? 'group-busy' : errno === 'EPERM' || errno === 'EACCES' ? 'vfio-node-denied' : 'no-vfio-node';
    } else if (RE.noIommuGroup.test(l.text)) {
      claim = 'no-iommu-group';
      facts.iommuOff ??= { kind: 'vmm-error', line: l.line };
    } else if ((m = RE.probeEinval.exec(l.text))) {
      claim = 'vfio-probe-einval';
      if (m[1]) name = norm(m[1]);
    } else if (RE.guestSlotTaken.test(l.text)) claim = 'guest-slot-taken';
    else if ((m = RE.containerRefused.exec(l.text))) {
      claim = 'container-refused';
      if (m[1]) group = Number(m[1]);
      errno = errnoOf(m[3] ?? m[2] ?? m[4] ?? m[5] ?? '');
    }
    else if ((m = RE.resetDepends.exec(l.text))) {
      claim = 'other';
      name = norm(m[1]!);
      // the group the reset depends on is another group: known to exist, members unknown
      const g = Number(m[2]);
      if (!facts.groups.has(g)) facts.groups.set(g, { group: g, members: new Set(), complete: false, evidence: [{ kind: 'vmm-error', line: l.line }] });
    } else if ((m = RE.addressSpaces.exec(l.text) ?? RE.toolGroupCheck.exec(l.text))) {
      claim = 'other';
      name = norm(m[1]!);
      group = Number(m[2]);
    } else if (RE.otherVfio.test(l.text) && deviceIn(l)) claim = 'other';
    else if (/-device\b.*vfio-pci/.test(l.text) && RE.hostArg.test(l.text) && /error|failed|closed|vfio [0-9a-f]/i.test(l.physical)) claim = 'other';
    else return false;
    name ??= deviceIn(l);
    const context = [lines[index - 2]?.physical ?? '', lines[index - 1]?.physical ?? '', l.physical].join('\n');
    const origin: ErrorOrigin = stripLogPrefix(l.text) !== undefined && !/qemu|libvirt/i.test(l.text) ? 'kernel' : originOf(context);
    const message = l.text.trim().slice(0, 4096);
    const key = `${origin}|${claim}|${group ?? ''}|${name ?? ''}`;
    count('vmm-error');
    const ev: Evidence = { kind: 'vmm-error', line: l.line };
    if (name && group !== undefined) addMember(group, name, ev, false);
    else if (group !== undefined && !facts.groups.has(group)) facts.groups.set(group, { group, members: new Set(), complete: false, evidence: [ev] });
    if (seenErrors.has(key)) return true;
    seenErrors.add(key);
    facts.errors.push({ origin, claim, ...(group !== undefined ? { group } : {}), ...(name ? { device: name } : {}), ...(errno ? { errno } : {}), message, evidence: ev });
    return true;
  };

  /** what tools print about groups and drivers (PCILeech generators, unraid's vfio-bind, a `Wrong driver devices` list) */
  const toolLine = (l: PasteLine): boolean => {
    const ev: Evidence = { kind: 'tool-log', line: l.line };
    let hit = false;
    const inGroup = RE.inGroup.exec(l.text);
    if (inGroup) {
      const group = Number(inGroup[2]);
      const own = norm(inGroup[1]!);
      const all = inGroup[3] ? (inGroup[3].match(RE.anyBdf) ?? []).map(norm) : [];
      for (const member of all) if (member) addMember(group, member, ev, true);
      if (own) addMember(group, own, ev, all.length > 0);
      hit = true;
    }
    for (const w of l.text.matchAll(RE.wrongDriver)) {
      const name = norm(w[1]!);
      if (name) setDriver(name, w[2]!, true, ev);
      hit = true;
    }
    const devbind = RE.devbind.exec(l.text);
    if (devbind) {
      const name = norm(devbind[1]!);
      if (name) setDriver(name, devbind[2] ?? null, true, ev);
      hit = true;
    }
    const bound = RE.boundTo.exec(l.text);
    if (bound) {
      const name = norm(bound[1]!);
      if (name) setDriver(name, bound[2]!, true, ev);
      hit = true;
    }
    if (hit) count('tool-log');
    return hit;
  };

  /** virsh nodedev-dumpxml: the device's name, driver, ids, class and its iommuGroup's addresses */
  let xmlDevice: string | undefined;
  let xmlInDriver = false;
  let xmlGroup: number | undefined;
  const nodedevXml = (l: PasteLine): boolean => {
    const text = l.text;
    if (!/^\s*<\/?[a-zA-Z]/.test(text)) return false;
    const ev: Evidence = { kind: 'nodedev-xml', line: l.line };
    const name = RE.xmlName.exec(text);
    if (name) {
      const pci = /^pci_([0-9a-f]{4})_([0-9a-f]{2})_([0-9a-f]{2})_([0-7])$/i.exec(name[1]!.trim());
      if (xmlInDriver && xmlDevice) {
        setDriver(xmlDevice, name[1]!.trim(), true, ev);
        xmlInDriver = false;
      } else if (pci) xmlDevice = norm(`${pci[1]}:${pci[2]}:${pci[3]}.${pci[4]}`);
    }
    if (RE.xmlDriverOpen.test(text)) xmlInDriver = !/<\/driver>/.test(text) || xmlInDriver;
    const inline = /<driver>\s*<name>([^<]+)<\/name>/.exec(text);
    if (inline && xmlDevice) {
      setDriver(xmlDevice, inline[1]!.trim(), true, ev);
      xmlInDriver = false;
    }
    const id = RE.xmlId.exec(text);
    if (id && xmlDevice && xmlGroup === undefined) {
      const d = device(xmlDevice);
      if (id[1] === 'vendor') d.vendorId = id[2]!.toLowerCase();
      else d.deviceId = id[2]!.toLowerCase();
    }
    const cls = RE.xmlClass.exec(text);
    if (cls && xmlDevice) device(xmlDevice).classCode = cls[1]!.toLowerCase();
    const grp = RE.xmlGroup.exec(text);
    if (grp) {
      xmlGroup = Number(grp[1]);
      if (xmlDevice) addMember(xmlGroup, xmlDevice, ev, true);
    }
    const addr = RE.xmlAddress.exec(text);
    if (addr && xmlGroup !== undefined) {
      const member = norm(`${addr[1]!.padStart(4, '0')}:${addr[2]!.padStart(2, '0')}:${addr[3]!.padStart(2, '0')}.${addr[4]}`);
      if (member) addMember(xmlGroup, member, ev, true);
    }
    if (RE.xmlGroupClose.test(text)) xmlGroup = undefined;
    if (/<\/device>/.test(text)) xmlDevice = undefined;
    count('nodedev-xml');
    return true;
  };

  const symlinkLine = (l: PasteLine): boolean => {
    const m = RE.symlink.exec(l.text) ?? (/->\s*$/.test(l.text) ? /(\S+)\s+->()\s*$/.exec(l.text) : null);
    if (!m) return false;
    const name = m[1]!;
    const target = m[2] ?? '';
    lastWasSymlink = true;
    lastTarget = target;
    const ev: Evidence = { kind: 'ls-sysfs', line: l.line };
    const inPath = RE.groupPath.exec(name);
    if (inPath) {
      const dev = norm(inPath[2]!);
      if (dev) addMember(Number(inPath[1]), dev, ev, true);
      count('ls-sysfs');
      return true;
    }
    const bdfs = name.match(RE.anyBdf);
    const named = bdfs ? norm(bdfs[bdfs.length - 1]!) : undefined;
    if (section.kind === 'lsGroup' && named && bdfs && bdfs[0] === name.replace(/^.*\//, '')) {
      addMember(section.group, named, ev, true);
      count('ls-sysfs');
      return true;
    }
    const owner = /(^|\/)driver$/.test(name) || /(^|\/)iommu_group$/.test(name) ? (named ?? (section.kind === 'sysDevice' ? section.device : undefined)) : undefined;
    if (owner && /(^|\/)driver$/.test(name)) {
      const drv = /\/drivers\/([^/\s]+)/.exec(target);
      if (drv) setDriver(owner, drv[1]!, true, ev);
      count('ls-sysfs');
      return true;
    }
    if (owner && /(^|\/)iommu_group$/.test(name)) {
      const grp = /iommu_groups\/(\d+)/.exec(target);
      if (grp) addMember(Number(grp[1]), owner, ev, false);
      count('ls-sysfs');
      return true;
    }
    return true;
  };

  /**
   * lspci -t / -tv: the bus tree. Each entry's bus comes from the bracket that opened its column; an entry
   * with a `-[NN]-` bracket opens a secondary bus, so it is a bridge (its class is 0604 even when not shown).
   */
  const treeColumns = new Map<number, { domain: string; bus: string }>();
  let treePending: { domain: string; bus: string } | undefined;
  const treeLine = (l: PasteLine): boolean => {
    const text = l.text.replace(/\s+$/, '');
    if (!RE.treeStart.test(text)) return false;
    let hit = false;
    for (const m of text.matchAll(RE.treeToken)) {
      const at = m.index;
      if (m[1] !== undefined) {
        treePending = { domain: (m[2] ?? '0000').toLowerCase(), bus: m[3]!.toLowerCase() };
        continue;
      }
      let bus = treeColumns.get(at);
      if (treePending) {
        bus = treePending;
        treeColumns.set(at, bus);
        treePending = undefined;
      }
      if (!bus) continue;
      const name = norm(`${bus.domain}:${bus.bus}:${m[5]!}`);
      if (!name) continue;
      hit = true;
      if (m[6] !== undefined) {
        treePending = { domain: bus.domain, bus: m[6].toLowerCase() };
        const d = device(name);
        d.classCode ??= '0604';
      } else {
        const rest = text.slice(at + m[0].length).trim();
        if (rest) describeDevice(name, rest);
      }
    }
    if (hit) count('lspci');
    return hit;
  };

  /** lspci -vmm(nn)(k): one `Field:\tvalue` record per device; membership from IOMMUGroup is partial (the paste may be cut) */
  let vmmDevice: string | undefined;
  const vmmRecord = (l: PasteLine): boolean => {
    const slot = RE.vmmSlot.exec(l.text);
    if (slot) {
      vmmDevice = norm(slot[1]!);
      count('lspci');
      return vmmDevice !== undefined;
    }
    const field = vmmDevice ? RE.vmmField.exec(l.text) : null;
    if (!field || !vmmDevice) return false;
    const ev: Evidence = { kind: 'lspci', line: l.line };
    const value = field[2]!.trim();
    const bracket = [...value.matchAll(/\[([0-9a-fA-F]{4})\]/g)].pop()?.[1]?.toLowerCase();
    const d = device(vmmDevice);
    if (field[1] === 'Class' && bracket) d.classCode = bracket;
    else if (field[1] === 'Vendor' && bracket) d.vendorId = bracket;
    else if (field[1] === 'Device') {
      if (bracket) d.deviceId = bracket;
      d.description ??= value;
    } else if (field[1] === 'Driver' && value) setDriver(vmmDevice, value, true, ev);
    else if (field[1] === 'IOMMUGroup' && /^\d+$/.test(value)) addMember(Number(value), vmmDevice, ev, false);
    count('lspci');
    return true;
  };

  const finishRun = (): void => {
    section = { kind: 'none' };
    current = undefined;
    block = undefined;
  };

  lines.forEach((l, index) => {
    const text = l.text;
    const wrapped = lastWasSymlink && (lastTarget === '' || lastTarget.endsWith('/'));
    const continuation = lastWasSymlink && /^\s*[^\s]*\/[^\s]*\s*$/.test(text) && !text.includes('->');
    lastWasSymlink = false;
    if (text.trim() === '') {
      vmmDevice = undefined;
      if (section.kind !== 'sysDevice') finishRun();
      return;
    }
    // a wrapped symlink target: the rest of the previous line, never a new entry
    if ((wrapped && !text.includes('->') && !/\s\S/.test(text.trim())) || continuation) return;

    const readlinkFor = expectReadlink;
    expectReadlink = undefined;
    const globLink = readlinkGlob ? RE.readlinkGroup.exec(text) : null;
    readlinkGlob = globLink !== null;
    if (globLink) {
      const g = Number(globLink[1]);
      if (!facts.groups.has(g)) facts.groups.set(g, { group: g, members: new Set(), complete: false, evidence: [{ kind: 'ls-sysfs', line: l.line }] });
      facts.unattributedGroupLinks ??= { kind: 'ls-sysfs', line: l.line };
      count('ls-sysfs');
      return;
    }
    if (vmmError(l, index)) return;
    if (stripLogPrefix(text) !== undefined && kernelLog(l)) return;
    if (vmmRecord(l) || nodedevXml(l) || toolLine(l) || commandLine(l) || treeLine(l)) return;
    const assignment = RE.shellVar.exec(text);
    if (assignment) {
      const name = norm(assignment[2]!);
      if (name) shellVars.set(assignment[1]!, name);
      return;
    }
    if (readlinkFor) {
      const grp = RE.readlinkGroup.exec(text);
      if (grp) {
        addMember(Number(grp[1]), readlinkFor, { kind: 'ls-sysfs', line: l.line }, false);
        count('ls-sysfs');
        return;
      }
    }

    const prompt = RE.prompt.exec(text);
    if (prompt && !RE.deviceLine.test(text)) {
      const args = prompt[2] ?? '';
      finishRun();
      const g = RE.promptGroupArg.exec(args);
      const d = RE.promptDeviceArg.exec(args);
      const named = d ? (d[1]!.startsWith('$') ? shellVars.get(d[1]!.replace(/[${}]/g, '')) : norm(d[1]!)) : undefined;
      closeEveryGroup();
      everyGroup = !g && RE.everyGroupArg.test(args) && (prompt[1] === 'find' || prompt[1] === 'ls' || prompt[1] === 'for') ? { line: l.line, pci: 0, other: 0 } : undefined;
      if (prompt[1] === 'ls' && g) section = { kind: 'lsGroup', group: Number(g[1]) };
      else if (named) section = { kind: 'sysDevice', device: named };
      if (prompt[1] === 'readlink' && named && /iommu_group/.test(args)) expectReadlink = named;
      readlinkGlob = prompt[1] === 'readlink' && /\/sys\/bus\/pci\/devices\/[^/\s]*\*[^/\s]*\/iommu_group/.test(args);
      expectRelease = prompt[1] === 'uname';
      return;
    }
    if (expectRelease) {
      expectRelease = false;
      const rel = RE.release.exec(text) ?? RE.unameA.exec(text);
      if (rel) {
        facts.kernelRelease = rel[1]!;
        return;
      }
    }

    if (RE.groupGlob.test(text)) {
      // `for g in /sys/kernel/iommu_groups/*` found no group and printed the pattern
      facts.iommuOff ??= { kind: 'group-listing', line: l.line };
      facts.noPciGroups ??= { kind: 'group-listing', line: l.line };
      count('group-listing');
      finishRun();
      return;
    }
    // lspci -vv prints `\tIOMMU group: 2` inside a device block: a detail, not a listing header
    const header = section.kind === 'lspci' && current && /^\s+IOMMU group:/i.test(text) ? null : RE.groupHeader.exec(text);
    if (header) {
      finishRun();
      lspciRun += 1;
      section = { kind: 'group', group: Number(header[1]) };
      const g = Number(header[1]);
      if (!facts.groups.has(g)) facts.groups.set(g, { group: g, members: new Set(), complete: true, evidence: [{ kind: 'group-listing', line: l.line }] });
      count('group-listing');
      return;
    }
    const libvirtKernel = RE.libvirtKernel.exec(text);
    if (libvirtKernel) {
      facts.kernelRelease ??= libvirtKernel[1]!;
      count('vmm-error');
      return;
    }
    const bracket = RE.iommuBracketLine.exec(text);
    const groupLine = bracket ? ([bracket[0], bracket[1], undefined, undefined, bracket[2], bracket[3]] as const) : RE.groupDeviceLine.exec(text);
    if (groupLine) {
      if (section.kind !== 'groupLines') {
        finishRun();
        lspciRun += 1;
        section = { kind: 'groupLines' };
      }
      const name = norm(groupLine[4]!);
      if (name) {
        lastLineGroup = Number(groupLine[1]);
        const ev: Evidence = { kind: 'group-listing', line: l.line };
        addMember(lastLineGroup, name, ev, true);
        const drv = groupLine[5] ? RE.trailingDriver.exec(groupLine[5]) : null;
        const description = drv ? groupLine[5]!.slice(0, drv.index) : groupLine[5];
        describeDevice(name, description, groupLine[2] && groupLine[3] ? [groupLine[2], groupLine[3]] : undefined);
        startBlock(name, l.line);
        if (drv && drv[1]) setDriver(name, /^\(?none\)?$/i.test(drv[1]) ? null : drv[1], true, ev);
      }
      count('group-listing');
      return;
    }
    const idsFirst = section.kind === 'groupLines' && lastLineGroup !== undefined ? RE.idsFirstLine.exec(text) : null;
    if (idsFirst) {
      const name = norm(idsFirst[3]!);
      if (name) {
        addMember(lastLineGroup!, name, { kind: 'group-listing', line: l.line }, true);
        describeDevice(name, idsFirst[4], [idsFirst[1]!, idsFirst[2]!]);
        startBlock(name, l.line);
      }
      count('group-listing');
      return;
    }
    const noAddress = RE.groupNoAddress.exec(text);
    if (noAddress) {
      const g = Number(noAddress[1]);
      if (!facts.groups.has(g)) facts.groups.set(g, { group: g, members: new Set(), complete: false, evidence: [{ kind: 'group-listing', line: l.line }] });
      count('group-listing');
      return;
    }
    const pathLine = RE.groupPath.exec(text);
    if (pathLine && !text.includes('->')) {
      const name = norm(pathLine[2]!);
      if (name) addMember(Number(pathLine[1]), name, { kind: 'group-listing', line: l.line }, true);
      if (everyGroup) everyGroup.pci += 1;
      count('group-listing');
      return;
    }
    if (everyGroup && !text.includes('->') && RE.groupPathOther.test(text)) {
      everyGroup.other += 1;
      count('ls-sysfs');
      return;
    }
    const dir = RE.lsDirHeader.exec(text);
    if (dir) {
      finishRun();
      const g = RE.lsGroupDir.exec(dir[1]!);
      const d = RE.sysDeviceDir.exec(dir[1]!);
      if (g) {
        section = { kind: 'lsGroup', group: Number(g[1]) };
        const n = Number(g[1]);
        if (!facts.groups.has(n)) facts.groups.set(n, { group: n, members: new Set(), complete: true, evidence: [{ kind: 'ls-sysfs', line: l.line }] });
        facts.groups.get(n)!.complete = true;
      } else if (d && norm(d[1]!)) section = { kind: 'sysDevice', device: norm(d[1]!)! };
      count('ls-sysfs');
      return;
    }
    if (RE.lsTotal.test(text) || (RE.lsDotEntry.test(text) && /^[dl-][rwx-]{9}/.test(text.trim()))) return;
    if (text.includes('->') && symlinkLine(l)) return;
    if (section.kind === 'lsGroup' && RE.bareBdfs.test(text)) {
      for (const raw of text.match(RE.anyBdf) ?? []) {
        const name = norm(raw);
        if (name) addMember(section.group, name, { kind: 'ls-sysfs', line: l.line }, true);
      }
      count('ls-sysfs');
      return;
    }

    const dev = RE.deviceLine.exec(text);
    if (dev && (dev[2] === undefined || /[:[\]]/.test(dev[2]) || section.kind === 'group')) {
      const name = norm(dev[1]!);
      if (!name) return;
      if (section.kind === 'group') {
        addMember(section.group, name, { kind: 'group-listing', line: l.line }, true);
        count('group-listing');
      } else {
        if (section.kind !== 'lspci') {
          finishRun();
          lspciRun += 1;
          section = { kind: 'lspci' };
        }
        count('lspci');
      }
      describeDevice(name, dev[2]);
      startBlock(name, l.line);
      return;
    }
    if (section.kind === 'group' || section.kind === 'groupLines' || section.kind === 'lspci') {
      if (detailLine(l, section.kind === 'lspci' ? 'lspci' : 'group-listing')) return;
    } else if (current === undefined && RE.driverInUse.test(text)) {
      return;
    }
    // anything else (prose, other commands) ends a listing; a kernel log line may still be a log line
    kernelLog(l);
    if (section.kind !== 'sysDevice') finishRun();
  });

  closeEveryGroup();
  // with -k, lspci prints "Kernel driver in use" for every bound device: a block that shows details
  // but no such line had no driver. Without -k, or when the line was cut, the driver stays unknown.
  for (const b of blocks) {
    if (!runsWithDriverLines.has(b.run) || b.hasDriverLine || b.driverLineCut || !b.hasDetails) continue;
    const d = facts.devices.get(b.device);
    if (d && !d.driver?.current) setDriver(b.device, null, true, { kind: 'lspci', line: b.line });
  }
  return facts;
};
