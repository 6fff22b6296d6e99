import { normalizePciAddress } from '../../schemas/index.js';
import { emptyFacts, type DeviceFacts, type ErrorOrigin, type Evidence, type EvidenceKind, type Facts } from './evidence.js';
import { toPasteLines, type PasteLine } from './pasteLines.js';

// a PCI address with or without the domain, as lspci (with or without -D) and sysfs print it
const BDF = String.raw`(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]`;

const RE = {
  groupHeader: /^\s*(?:IOMMU\s+)?group\s*:?\s*(\d+)\s*:?\s*$/i,
  groupDeviceLine: new RegExp(String.raw`^\s*(?:IOMMU\s+)?group\s*:?\s*(\d+)\s*:?\s*(${BDF})(?:\s+(.*))?$`, 'i'),
  groupPath: new RegExp(String.raw`/sys/kernel/iommu_groups/(\d+)/devices/(${BDF})\b`),
  deviceLine: new RegExp(String.raw`^\s*(${BDF})(?:\s+(.*))?$`),
  bareBdfs: new RegExp(String.raw`^\s*(?:${BDF}\s*)+$`),
  anyBdf: new RegExp(BDF, 'g'),
  driverInUse: /Kernel\s*driver\s*in\s*use\s*:\s*([A-Za-z0-9_.:+-]+)/i,
  // a "Kernel driver in use" line cut short by a forum or terminal: the driver is unknown, not absent
  driverCut: /^\s*Kernel\s*(d|dr|dri|driv|drive|driver)(\s+(i|in|in\s+u|in\s+us|in\s+use)?)?\s*:?\s*$/i,
  modules: /Kernel\s*modules\s*:\s*(.+)$/i,
  classAndIds: /^([^[\]:]*?)\s*\[([0-9a-fA-F]{4})\]\s*:/,
  ids: /\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\]/g,
  progIf: /\(prog-if\s+([0-9a-fA-F]{2})\b/i,
  lsDirHeader: /^\s*(\/sys\/\S+?)\/?:\s*$/,
  lsGroupDir: /^\/sys\/kernel\/iommu_groups\/(\d+)\/devices$/,
  sysDeviceDir: new RegExp(String.raw`^/sys/bus/pci/devices/(${BDF})$`),
  prompt: /^\s*(?:\[[^\]]*\][$#]\s*|\S*[$#>%]\s+|[$#]\s*)?(?:sudo\s+)?(ls|readlink|find|lspci|dmesg|journalctl|uname|cat|for|tree)\b(.*)$/,
  promptGroupArg: /\/sys\/kernel\/iommu_groups\/(\d+)\/devices\b/,
  promptDeviceArg: new RegExp(String.raw`/sys/bus/pci/devices/(${BDF})\b`),
  symlink: /(\S+)\s+->\s*(\S*)\s*$/,
  lsTotal: /^\s*total\s+\d+\s*$/,
  lsDotEntry: /\s\.{1,2}$/,
  // kernel log prefixes: dmesg, dmesg -T, journalctl, syslog with ISO time
  logPrefix: [
    /^\s*<\d>\s*/,
    /^\s*\[\s*\d+\.\d+\]\s?/,
    /^\s*\[[A-Z][a-z]{2} [A-Z][a-z]{2}\s+\d+ [\d:]+ \d{4}\]\s?/,
    /^\s*[A-Z][a-z]{2}\s+\d+\s+\d\d:\d\d:\d\d\s+\S+\s+kernel:\s*/,
    /^\s*\d{4}-\d\d-\d\d[T ]\S+\s+\S+\s+kernel:\s*/,
  ],
  addToGroup: new RegExp(String.raw`(${BDF}):\s*Adding to iommu group (\d+)`, 'i'),
  removeFromGroup: new RegExp(String.raw`(${BDF}):\s*Removing from iommu group (\d+)`, 'i'),
  vfioAdd: /vfio[_-]pci:\s*add\s*\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})/i,
  stubAdd: /pci-stub:\s*add\s+([0-9a-fA-F]{4}):([0-9a-fA-F]{4})/i,
  stubClaimed: new RegExp(String.raw`pci-stub\s+(${BDF}):\s*claimed by stub`, 'i'),
  requireDirect: new RegExp(String.raw`(${BDF}):\s*Firmware has requested this device have a 1:1 IOMMU mapping`, 'i'),
  linuxVersion: /Linux version (\d+\.\d+[^\s]*)/,
  unameA: /^\s*Linux\s+\S+\s+(\d+\.\d+\.\d+\S*)\s+#/,
  release: /^\s*(\d+\.\d+\.\d+[-\w.+~]*)\s*$/,
  notViable: /group\s+(\d+)\s+is\s+not\s+viable/i,
  notViableDevice: new RegExp(String.raw`(${BDF})\s*:\s*group\s+\d+\s+is\s+not\s+viable`, 'i'),
  hostArg: new RegExp(String.raw`host=(${BDF})`, 'i'),
};

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

const stripLogPrefix = (text: string): string | undefined => {
  for (const re of RE.logPrefix) {
    const m = re.exec(text);
    if (m) return text.slice(m[0].length);
  }
  return undefined;
};

const originOf = (context: string): ErrorOrigin => {
  if (/virt-launcher|kubevirt|virError|"component"/i.test(context)) return 'kubevirt';
  if (/libvirt|virsh|internal error|unexpectedly closed the monitor|Failed to start domain|process exited while connecting/i.test(context)) return 'libvirt';
  if (/qemu|vfio: error|vfio error:|vfio \S+: group/i.test(context)) return 'qemu';
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
  const describeDevice = (name: string, description: string | undefined): void => {
    if (!description) return;
    const d = device(name);
    d.description = description.trim();
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
    const drv = RE.driverInUse.exec(l.text);
    if (drv) {
      setDriver(current, drv[1]!, true, { kind, line: l.line });
      runsWithDriverLines.add(lspciRun);
      if (block) block.hasDriverLine = true;
      count(kind);
      return true;
    }
    if (RE.driverCut.test(l.text)) {
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
    const add = RE.addToGroup.exec(body);
    if (add) {
      const name = norm(add[1]!);
      if (name) addMember(Number(add[2]), name, ev, false);
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
      facts.idRegistrations.push({ driver: 'vfio-pci', vendorId: vfio[1]!.toLowerCase(), deviceId: vfio[2]!.toLowerCase(), evidence: ev });
      count('kernel-log');
      return true;
    }
    const stub = RE.stubAdd.exec(body);
    if (stub) {
      facts.idRegistrations.push({ driver: 'pci-stub', vendorId: stub[1]!.toLowerCase(), deviceId: stub[2]!.toLowerCase(), evidence: ev });
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
      const name = norm(direct[1]!);
      if (name) facts.requireDirect.set(name, ev);
      count('kernel-log');
      return true;
    }
    return false;
  };

  const vmmError = (l: PasteLine, index: number): boolean => {
    const m = RE.notViable.exec(l.text);
    if (!m) return false;
    const devMatch = RE.notViableDevice.exec(l.text) ?? RE.hostArg.exec(l.text) ?? RE.hostArg.exec(l.physical);
    const name = devMatch ? norm(devMatch[1]!) : undefined;
    const context = [lines[index - 2]?.physical ?? '', lines[index - 1]?.physical ?? '', l.physical].join('\n');
    const origin = originOf(context);
    const message = l.text.trim().slice(0, 4096);
    const group = Number(m[1]);
    // libvirt and virt-manager repeat the same QEMU error; one per (origin, group, device) is enough
    const key = `${origin}|${group}|${name ?? ''}`;
    count('vmm-error');
    const ev: Evidence = { kind: 'vmm-error', line: l.line };
    if (name) addMember(group, name, ev, false);
    if (seenErrors.has(key)) return true;
    seenErrors.add(key);
    facts.errors.push({ origin, group, ...(name ? { device: name } : {}), message, evidence: ev });
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
      if (section.kind !== 'sysDevice') finishRun();
      return;
    }
    // a wrapped symlink target: the rest of the previous line, never a new entry
    if ((wrapped && !text.includes('->') && !/\s\S/.test(text.trim())) || continuation) return;

    if (vmmError(l, index)) return;
    if (stripLogPrefix(text) !== undefined && kernelLog(l)) return;

    const prompt = RE.prompt.exec(text);
    if (prompt && !RE.deviceLine.test(text)) {
      const args = prompt[2] ?? '';
      finishRun();
      const g = RE.promptGroupArg.exec(args);
      const d = RE.promptDeviceArg.exec(args);
      if (prompt[1] === 'ls' && g) section = { kind: 'lsGroup', group: Number(g[1]) };
      else if (d && norm(d[1]!)) section = { kind: 'sysDevice', device: norm(d[1]!)! };
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

    const header = RE.groupHeader.exec(text);
    if (header) {
      finishRun();
      lspciRun += 1;
      section = { kind: 'group', group: Number(header[1]) };
      const g = Number(header[1]);
      if (!facts.groups.has(g)) facts.groups.set(g, { group: g, members: new Set(), complete: true, evidence: [{ kind: 'group-listing', line: l.line }] });
      count('group-listing');
      return;
    }
    const groupLine = RE.groupDeviceLine.exec(text);
    if (groupLine) {
      if (section.kind !== 'groupLines') {
        finishRun();
        lspciRun += 1;
        section = { kind: 'groupLines' };
      }
      const name = norm(groupLine[2]!);
      if (name) {
        addMember(Number(groupLine[1]), name, { kind: 'group-listing', line: l.line }, true);
        describeDevice(name, groupLine[3]);
        startBlock(name, l.line);
      }
      count('group-listing');
      return;
    }
    const pathLine = RE.groupPath.exec(text);
    if (pathLine && !text.includes('->')) {
      const name = norm(pathLine[2]!);
      if (name) addMember(Number(pathLine[1]), name, { kind: 'group-listing', line: l.line }, true);
      count('group-listing');
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

  // with -k, lspci prints "Kernel driver in use" for every bound device: a block that shows details
  // but no such line had no driver. Without -k, or when the line was cut, the driver stays unknown.
  for (const b of blocks) {
    if (!runsWithDriverLines.has(b.run) || b.hasDriverLine || b.driverLineCut || !b.hasDetails) continue;
    const d = facts.devices.get(b.device);
    if (d && !d.driver?.current) setDriver(b.device, null, true, { kind: 'lspci', line: b.line });
  }
  return facts;
};
