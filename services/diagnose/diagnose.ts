import { DEFAULT_MANAGED_DMA_DRIVERS, LEGACY_ALLOWED_DRIVERS, isVfioDriverName, normalizePciAddress } from '../../schemas/index.js';
import type { DeviceFacts, ErrorFact, Facts } from './evidence.js';

/**
 * Which viability rule applies (protocol.md §1.2, §1.6):
 * - `upstream` (v5.19+): a group is viable iff no member is bound to a driver without `driver_managed_dma`;
 * - `legacy` (pre-v5.19 `vfio_dev_viable`): every member driver-less, on a vfio driver, on pci-stub, or a
 *   non-normal-header (bridge) device.
 */
export type ViabilityRule = 'upstream' | 'legacy';
export type Tristate = 'yes' | 'no' | 'unknown';

export interface MemberVerdict {
  readonly device: string;
  readonly description?: string;
  readonly ids?: string;
  /** undefined when the driver was never shown as current */
  readonly driver?: string | null;
  readonly status: 'ok' | 'blocks' | 'unknown';
  readonly reason: string;
}

export interface GroupVerdict {
  readonly group: number;
  /** named by a VMM error or by --group/--device */
  readonly wanted: boolean;
  readonly viable: Tristate;
  readonly membership: 'complete' | 'partial' | 'unknown';
  readonly members: MemberVerdict[];
  readonly blockers: string[];
  /** shell commands that make the group viable, with `#` comments */
  readonly fix: string[];
  /** what could not be read from the text */
  readonly unknowns: string[];
  /** commands whose output, added to the paste, would settle the unknowns */
  readonly settle: string[];
  readonly notes: string[];
}

export interface Diagnosis {
  readonly verdict: 'viable' | 'not-viable' | 'unknown';
  readonly rule: ViabilityRule;
  readonly ruleReason: string;
  readonly kernelRelease?: string;
  readonly groups: GroupVerdict[];
  readonly errors: ErrorFact[];
  readonly devicesWithoutGroup: string[];
  readonly conflicts: string[];
  readonly formats: Record<string, number>;
  readonly notes: string[];
}

export interface DiagnoseOptions {
  /** the group the user wants to pass through; defaults to the groups named in VMM errors */
  readonly group?: number;
  /** the device the user wants to pass through */
  readonly device?: string;
  /** @defaultValue 'auto': legacy when the paste shows a kernel older than 5.19, upstream otherwise */
  readonly rule?: ViabilityRule | 'auto';
  /** @defaultValue DEFAULT_MANAGED_DMA_DRIVERS */
  readonly managedDmaDrivers?: readonly string[];
}

const chooseRule = (facts: Facts, rule: DiagnoseOptions['rule']): { rule: ViabilityRule; reason: string } => {
  if (rule === 'upstream' || rule === 'legacy') return { rule, reason: 'chosen with --rule' };
  const m = facts.kernelRelease ? /^(\d+)\.(\d+)/.exec(facts.kernelRelease) : null;
  if (!m) return { rule: 'upstream', reason: 'kernel release not in the paste; assuming v5.19 or later (add `uname -r` to be sure)' };
  const older = Number(m[1]) < 5 || (Number(m[1]) === 5 && Number(m[2]) < 19);
  return older
    ? { rule: 'legacy', reason: `kernel ${facts.kernelRelease} predates v5.19 (vfio_dev_viable)` }
    : { rule: 'upstream', reason: `kernel ${facts.kernelRelease} (v5.19+ DMA ownership)` };
};

// PCI class 0604 (PCI-to-PCI bridge) and 0607 (CardBus bridge) carry a bridge/cardbus header
const isBridgeClass = (d: DeviceFacts): boolean | undefined => (d.classCode ? /^060[47]/.test(d.classCode) : undefined);

const judge = (d: DeviceFacts, rule: ViabilityRule, managed: ReadonlySet<string>): Pick<MemberVerdict, 'status' | 'reason'> => {
  const drv = d.driver?.current ? d.driver.name : undefined;
  if (drv === undefined) {
    const past = d.driver && !d.driver.current ? `; kernel log line ${d.driver.evidence.line} shows it claimed by ${d.driver.name}, which may have changed since` : '';
    return { status: 'unknown', reason: `driver not shown${past}` };
  }
  if (drv === null) return { status: 'ok', reason: 'no driver bound' };
  if (rule === 'upstream') {
    return managed.has(drv)
      ? { status: 'ok', reason: `${drv} is driver_managed_dma` }
      : { status: 'blocks', reason: `${drv} uses the kernel DMA API (not driver_managed_dma)` };
  }
  if (isVfioDriverName(drv)) return { status: 'ok', reason: `${drv} is a vfio driver` };
  if (LEGACY_ALLOWED_DRIVERS.includes(drv)) return { status: 'ok', reason: `${drv} is in vfio_driver_allowed[]` };
  const bridge = isBridgeClass(d);
  if (bridge) return { status: 'ok', reason: `bridge (class ${d.classCode}): non-normal header allowed before v5.19` };
  if (bridge === undefined && drv === 'pcieport') return { status: 'unknown', reason: 'pcieport device whose header type is not shown' };
  return { status: 'blocks', reason: `${drv} is not a vfio driver or pci-stub (pre-v5.19 rule)` };
};

const settleFor = (d: DeviceFacts): string => `lspci -nnk -s ${d.device}   # or: readlink /sys/bus/pci/devices/${d.device}/driver`;

const fixFor = (group: number, blockers: DeviceFacts[], members: DeviceFacts[], facts: Facts): { fix: string[]; notes: string[] } => {
  const fix: string[] = [];
  const notes: string[] = [];
  if (blockers.length === 0) return { fix, notes };
  fix.push(`# 1. release the kernel drivers that hold group ${group} (a driver-less member does not block)`);
  for (const b of blockers) fix.push(`echo ${b.device} | sudo tee /sys/bus/pci/drivers/${b.driver!.name}/unbind`);
  fix.push('# 2. optional: hand them to vfio-pci until the next reboot');
  fix.push('sudo modprobe vfio-pci');
  for (const b of blockers) {
    fix.push(`echo vfio-pci | sudo tee /sys/bus/pci/devices/${b.device}/driver_override`);
    fix.push(`echo ${b.device} | sudo tee /sys/bus/pci/drivers/vfio-pci/bind`);
  }
  const passable = members.filter((m) => isBridgeClass(m) !== true);
  const ids = [...new Set(passable.filter((m) => m.vendorId && m.deviceId).map((m) => `${m.vendorId}:${m.deviceId}`))];
  const missingIds = passable.filter((m) => !(m.vendorId && m.deviceId)).map((m) => m.device);
  fix.push('# 3. persistent: let vfio-pci claim the ids at boot, before the other drivers');
  if (ids.length > 0) {
    fix.push(`echo "options vfio-pci ids=${ids.join(',')}" | sudo tee /etc/modprobe.d/vfio.conf`);
    for (const drv of [...new Set(blockers.map((b) => b.driver!.name!))]) fix.push(`echo "softdep ${drv} pre: vfio-pci" | sudo tee -a /etc/modprobe.d/vfio.conf`);
    fix.push(`# or on the kernel command line: vfio-pci.ids=${ids.join(',')}; then rebuild the initramfs`);
    notes.push(`vfio-pci ids= matches every device with those ids, not only group ${group}'s`);
  }
  if (missingIds.length > 0) fix.push(`# vendor:device ids of ${missingIds.join(', ')} not shown: lspci -nn -s <device>`);
  for (const b of blockers) {
    const reg = facts.idRegistrations.find((r) => r.vendorId === b.vendorId && r.deviceId === b.deviceId);
    if (reg) {
      notes.push(
        `${reg.driver} registered ${b.vendorId}:${b.deviceId} (line ${reg.evidence.line}) but ${b.device} is bound to ${b.driver!.name}: that driver probed it first; load ${reg.driver} earlier (softdep or initramfs)`,
      );
    }
  }
  notes.push(
    `unbinding takes the devices away from the host; if the host needs one of them, it cannot stay on the host while group ${group} is passed through (a slot whose group holds only the card avoids this)`,
  );
  return { fix, notes };
};

const wantedGroups = (facts: Facts, options: DiagnoseOptions): { wanted: Set<number>; notes: string[] } => {
  const wanted = new Set<number>();
  const notes: string[] = [];
  if (options.group !== undefined) wanted.add(options.group);
  if (options.device) {
    const name = normalizePciAddress(options.device) ?? options.device;
    const g = facts.devices.get(name)?.group?.group;
    if (g !== undefined) wanted.add(g);
    else notes.push(`the group of ${name} is not in the paste: readlink /sys/bus/pci/devices/${name}/iommu_group`);
  }
  if (wanted.size === 0 && !options.device) {
    for (const e of facts.errors) {
      if (e.group !== undefined) wanted.add(e.group);
      else if (e.device && facts.devices.get(e.device)?.group) wanted.add(facts.devices.get(e.device)!.group!.group);
    }
  }
  if (wanted.size === 0 && !options.device) {
    // no error and no choice: the groups holding devices already given to vfio are the ones being passed through
    for (const d of facts.devices.values()) if (d.group && d.driver?.current && d.driver.name && isVfioDriverName(d.driver.name)) wanted.add(d.group.group);
  }
  return { wanted, notes };
};

/** the verdict on every group in the facts; pure */
export const diagnose = (facts: Facts, options: DiagnoseOptions = {}): Diagnosis => {
  const { rule, reason } = chooseRule(facts, options.rule ?? 'auto');
  const managed = new Set(options.managedDmaDrivers ?? DEFAULT_MANAGED_DMA_DRIVERS);
  const { wanted, notes } = wantedGroups(facts, options);
  const groupNumbers = [...new Set([...facts.groups.keys(), ...wanted])].sort((a, b) => a - b);
  const groups: GroupVerdict[] = groupNumbers.map((n) => {
    const g = facts.groups.get(n);
    const members = [...(g?.members ?? [])].sort().map((name) => facts.devices.get(name)!);
    const verdicts: MemberVerdict[] = members.map((d) => {
      const v = judge(d, rule, managed);
      return {
        device: d.device,
        ...(d.description ? { description: d.description } : {}),
        ...(d.vendorId && d.deviceId ? { ids: `${d.vendorId}:${d.deviceId}` } : {}),
        ...(d.driver?.current ? { driver: d.driver.name } : {}),
        ...v,
      };
    });
    const membership = !g || g.members.size === 0 ? 'unknown' : g.complete ? 'complete' : 'partial';
    const blockers = members.filter((_, i) => verdicts[i]!.status === 'blocks');
    const unknownMembers = members.filter((_, i) => verdicts[i]!.status === 'unknown');
    const unknowns: string[] = [];
    const settle: string[] = [];
    if (membership !== 'complete') {
      unknowns.push(
        membership === 'unknown'
          ? `the members of group ${n} are never listed`
          : `group ${n}'s member list is partial (seen only in ${g!.evidence.map((e) => `${e.kind} line ${e.line}`).join(', ')})`,
      );
      settle.push(`ls -l /sys/kernel/iommu_groups/${n}/devices`);
    }
    for (const d of unknownMembers) {
      unknowns.push(`current driver of ${d.device}: ${verdicts[members.indexOf(d)]!.reason}`);
      settle.push(rule === 'legacy' && d.driver?.name === 'pcieport' ? `lspci -nn -s ${d.device}` : settleFor(d));
    }
    if (membership !== 'complete' && !settle.some((s) => s.startsWith('lspci -nnk'))) settle.push(`lspci -nnk   # drivers of the members`);
    const viable: Tristate = blockers.length > 0 ? 'no' : membership === 'complete' && unknownMembers.length === 0 ? 'yes' : 'unknown';
    const { fix, notes: fixNotes } = fixFor(n, blockers, members, facts);
    const groupNotes = [...fixNotes];
    for (const d of members) {
      const ev = facts.requireDirect.get(d.device);
      if (ev) {
        groupNotes.push(
          `${d.device} has a firmware 1:1 (require_direct) mapping (line ${ev.line}): claiming the group for user space fails with -EINVAL even when it is viable (S33)`,
        );
      }
    }
    return { group: n, wanted: wanted.has(n), viable, membership, members: verdicts, blockers: blockers.map((b) => b.device), fix, unknowns, settle, notes: groupNotes };
  });

  const considered = groups.filter((g) => g.wanted);
  const scope = considered.length > 0 ? considered : groups;
  const verdict: Diagnosis['verdict'] =
    scope.length === 0 ? 'unknown' : scope.some((g) => g.viable === 'no') ? 'not-viable' : scope.every((g) => g.viable === 'yes') ? 'viable' : 'unknown';
  const devicesWithoutGroup = [...facts.devices.values()].filter((d) => !d.group).map((d) => d.device).sort();
  return {
    verdict,
    rule,
    ruleReason: reason,
    ...(facts.kernelRelease ? { kernelRelease: facts.kernelRelease } : {}),
    groups,
    errors: facts.errors,
    devicesWithoutGroup,
    conflicts: facts.conflicts,
    formats: Object.fromEntries(facts.formats),
    notes: [
      ...notes,
      ...(scope.length === 0 ? ['no IOMMU group found in the paste: add the output of the IOMMU group listing (for g in /sys/kernel/iommu_groups/*; ...) and lspci -nnk'] : []),
    ],
  };
};
