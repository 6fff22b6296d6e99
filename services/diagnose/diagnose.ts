import { DEFAULT_MANAGED_DMA_DRIVERS, isVfioDriverName, normalizePciAddress } from '../../schemas/index.js';
import { isLegacyViable, isManagedDmaDriver } from '../../projections/kernel/kernel.js';
import type { Capabilities } from '../../projections/kernel/types.js';
import { fixFor, iommuOnSteps } from './advice.js';
import type { DeviceFacts, ErrorFact, Evidence, Facts } from './evidence.js';

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
  /** one line: `not viable while 0000:01:00.1 is on snd_hda_intel`, or what the evidence says */
  readonly summary: string;
  /** shell commands that make the group viable, with `#` comments */
  readonly fix: string[];
  /** what could not be read from the text */
  readonly unknowns: string[];
  /** commands whose output, added to the paste, would settle the unknowns */
  readonly settle: string[];
  readonly notes: string[];
}

/** a device the paste wants passed through (named by an error, --device, a vfio-pci id or a vfio binding) whose group is not shown */
export interface DeviceVerdict {
  readonly device: string;
  readonly description?: string;
  readonly driver?: string | null;
  readonly viable: Tristate;
  readonly reason: string;
  readonly fix: string[];
  readonly settle: string[];
  readonly notes: string[];
}

export interface Diagnosis {
  readonly verdict: 'viable' | 'not-viable' | 'unknown';
  /** the groups the verdict is about: the wanted ones, or every group in the paste when none is wanted */
  readonly considered: number[];
  readonly devices: DeviceVerdict[];
  /** the commands whose output, added to the paste, would settle what is unknown (never empty when the verdict is unknown) */
  readonly next: string[];
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

/**
 * The kernel model's own viability predicates (projections/kernel/kernel.ts), so diagnose keeps no copy of the
 * rule: upstream, a bound driver counts toward the group's owner_cnt (and makes it not viable) unless
 * `isManagedDmaDriver` on the host's managed-DMA list; before v5.19, `isLegacyViable` decides each member from
 * its driver and whether it is a bridge.
 */
type ManagedDma = Pick<Capabilities, 'managedDmaDrivers'>;

/**
 * What lspci says the device is: an endpoint (false), any bridge of class 06 (true: host, ISA, PCI bridges),
 * or undefined when neither the class code nor lspci's class name is shown.
 */
const isBridgeFamily = (d: DeviceFacts): boolean | undefined => {
  if (d.classCode) return d.classCode.startsWith('06');
  const name = d.description ? /^\s*([A-Za-z][\w /-]*?)\s*(?:\[[0-9a-fA-F]{4}\])?:/.exec(d.description)?.[1] : undefined;
  return name ? /\bbridge\b/i.test(name) : undefined;
};

/** what a VMM error says beyond its claim, as a note */
const errorNote = (e: ErrorFact): string | undefined => {
  if (e.claim !== 'guest-slot-taken') return undefined;
  const by = /in use by (\S+)/i.exec(e.message)?.[1] ?? 'another device';
  const vga = /^vga$/i.test(by) ? ' (the emulated VGA: -vga none for QEMU, vga: none in a Proxmox VM config)' : '';
  return `line ${e.evidence.line}: the guest PCI address asked for (addr=) is taken by ${by} in the VM: QEMU stops before it opens the device's IOMMU group, so this is not a viability problem; give the device a free addr= or remove ${by}${vga}`;
};

/**
 * A device whose firmware requires a 1:1 mapping (an RMRR, require_direct): the kernel refuses to give it to user
 * space (S33: -EINVAL since v6.x; intel-iommu's -EPERM before), whatever the viability of its group.
 */
const rmrrNote = (ev: Evidence, device: string | undefined): string =>
  `line ${ev.line}: ${device ?? 'a device (the line does not name it)'} has a firmware-required 1:1 mapping (an RMRR): the kernel will not hand it to VFIO (-EINVAL since v6.x, -EPERM from intel-iommu before), whatever its group's viability, so this is not a viability problem; turn off the firmware feature that reserves the region (on HPE ProLiant: "HP Shared Memory features" in the System Configuration utility), move the device to a slot the firmware does not reserve memory for, or use a kernel that relaxes RMRRs`;

const GROUP_LINKS_NAMED = 'ls -l /sys/bus/pci/devices/*/iommu_group';
const FIRMWARE_REFUSALS = "dmesg | grep -i -e '1:1 IOMMU mapping' -e RMRR -e 'interrupt remapping'";

/** VFIO_GROUP_SET_CONTAINER refused: what its errno means, and whether a line of the paste already says why */
const containerNote = (e: ErrorFact, facts: Facts): string => {
  const where = e.group !== undefined ? `group ${e.group}` : 'the group';
  const rmrr = [...facts.requireDirect.values(), ...(facts.requireDirectUnnamed ? [facts.requireDirectUnnamed] : [])].sort((a, b) => a.line - b.line)[0];
  const why = rmrr
    ? `line ${rmrr.line} says why: a device with a firmware-required 1:1 mapping (RMRR)`
    : e.errno === 'EINVAL'
      ? 'a member whose firmware requires a 1:1 mapping (RMRR) does this even when the group is viable (S33); dmesg names the device'
      : e.errno === 'EPERM'
        ? 'intel-iommu before v6.x refuses a device with an RMRR this way, and vfio_iommu_type1 refuses a platform without interrupt remapping (vfio_iommu_type1.allow_unsafe_interrupts); dmesg says which'
        : 'the kernel log at that moment says why';
  return `line ${e.evidence.line}: VFIO refused to put ${where} in a container (${e.errno ? `-${e.errno}` : 'an error'}), a step that comes after the VMM checked the group's viability; ${why}`;
};

// drivers that only ever drive bridges: a device on them has a bridge header even when its class is not shown
const BRIDGE_DRIVERS = new Set(['pcieport', 'shpchp']);

const judge = (d: DeviceFacts, rule: ViabilityRule, caps: ManagedDma): Pick<MemberVerdict, 'status' | 'reason'> => {
  const drv = d.driver?.current ? d.driver.name : undefined;
  // before v5.19 a bridge never blocks, whatever its driver: the rule settles it without the driver line
  if (drv === undefined && rule === 'legacy' && isBridgeClass(d) === true) return { status: 'ok', reason: `bridge (class ${d.classCode}): non-normal header allowed before v5.19, whatever its driver` };
  if (drv === undefined) {
    const past = d.driver && !d.driver.current ? `; kernel log line ${d.driver.evidence.line} shows it claimed by ${d.driver.name}, which may have changed since` : '';
    return { status: 'unknown', reason: `driver not shown${past}` };
  }
  if (drv === null) return { status: 'ok', reason: 'no driver bound' };
  if (rule === 'upstream') {
    return isManagedDmaDriver(caps, drv)
      ? { status: 'ok', reason: `${drv} is driver_managed_dma` }
      : { status: 'blocks', reason: `${drv} uses the kernel DMA API (not driver_managed_dma)` };
  }
  const bridge = isBridgeClass(d) ?? (BRIDGE_DRIVERS.has(drv) ? undefined : false);
  if (bridge === undefined) return { status: 'unknown', reason: `${drv} device whose header type is not shown` };
  if (isLegacyViable({ driver: drv, bridge })) {
    const why = isVfioDriverName(drv) ? `${drv} is a vfio driver` : bridge ? `bridge (class ${d.classCode}): non-normal header allowed before v5.19` : `${drv} is in vfio_driver_allowed[]`;
    return { status: 'ok', reason: why };
  }
  return { status: 'blocks', reason: `${drv} is not a vfio driver or pci-stub (pre-v5.19 rule)` };
};

const settleFor = (d: DeviceFacts): string => `lspci -nnk -s ${d.device}   # or: readlink /sys/bus/pci/devices/${d.device}/driver`;
/** lists every member of the group with its ids and driver: what names a blocker */
const groupListing = (n: number): string => `for d in /sys/kernel/iommu_groups/${n}/devices/*; do lspci -nnks "\${d##*/}"; done`;
const siblingsOf = (device: string): string => `for d in /sys/bus/pci/devices/${device}/iommu_group/devices/*; do lspci -nnks "\${d##*/}"; done`;
const ALL_GROUPS = 'for g in /sys/kernel/iommu_groups/*; do echo "IOMMU Group ${g##*/}:"; for d in $g/devices/*; do echo -e "\\t$(lspci -nnks ${d##*/})"; done; done';
const IOMMU_STATE = ['dmesg | grep -i -e DMAR -e AMD-Vi -e iommu', 'cat /proc/cmdline'];

const blockerPhrase = (bs: readonly DeviceFacts[]): string => bs.map((b) => `${b.device} is on ${b.driver!.name}`).join(' and ');

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

/** devices the paste wants passed through: --device, devices named by errors, ids asked of vfio-pci, devices on vfio */
const wantedDevices = (facts: Facts, options: DiagnoseOptions): DeviceFacts[] => {
  const names = new Set<string>();
  if (options.device) names.add(normalizePciAddress(options.device) ?? options.device);
  for (const e of facts.errors) if (e.device) names.add(e.device);
  for (const d of facts.devices.values()) {
    if (facts.idRegistrations.some((r) => r.driver === 'vfio-pci' && r.vendorId === d.vendorId && r.deviceId === d.deviceId)) names.add(d.device);
    if (d.driver?.current && d.driver.name && isVfioDriverName(d.driver.name)) names.add(d.device);
  }
  // no PCI device has a group and none is asked about: every endpoint the paste shows is a candidate, and none can pass
  if (names.size === 0 && facts.noPciGroups) for (const d of facts.devices.values()) if (!d.group && isBridgeFamily(d) !== true) names.add(d.device);
  return [...names].sort().flatMap((n) => {
    const d = facts.devices.get(n);
    return d ? [d] : normalizePciAddress(n) ? [{ device: n }] : [];
  });
};

const judgeGroup = (n: number, facts: Facts, rule: ViabilityRule, caps: ManagedDma, wanted: boolean): GroupVerdict => {
  const g = facts.groups.get(n);
  const members = [...(g?.members ?? [])].sort().map((name) => facts.devices.get(name)!);
  const verdicts: MemberVerdict[] = members.map((d) => ({
    device: d.device,
    ...(d.description ? { description: d.description } : {}),
    ...(d.vendorId && d.deviceId ? { ids: `${d.vendorId}:${d.deviceId}` } : {}),
    ...(d.driver?.current ? { driver: d.driver.name } : {}),
    ...judge(d, rule, caps),
  }));
  const membership = !g || g.members.size === 0 ? 'unknown' : g.complete ? 'complete' : 'partial';
  const blockers = members.filter((_, i) => verdicts[i]!.status === 'blocks');
  const unknownMembers = members.filter((_, i) => verdicts[i]!.status === 'unknown');
  // an error names the group, or only its device (DPDK's "VFIO group is not viable")
  const errors = facts.errors.filter((e) => e.group === n || (e.group === undefined && e.device !== undefined && g?.members.has(e.device) === true));
  const reportedNotViable = errors.filter((e) => e.claim === 'not-viable');
  const unknowns: string[] = [];
  const settle: string[] = [];
  const notes: string[] = [];
  if (membership !== 'complete') {
    unknowns.push(
      membership === 'unknown'
        ? `the members of group ${n} are never listed`
        : `group ${n}'s member list is partial (seen only in ${g!.evidence.map((e) => `${e.kind} line ${e.line}`).join(', ')})`,
    );
    settle.push(groupListing(n));
  }
  for (const d of unknownMembers) {
    unknowns.push(`current driver of ${d.device}: ${verdicts[members.indexOf(d)]!.reason}`);
    if (membership === 'complete') settle.push(rule === 'legacy' && d.driver?.name && BRIDGE_DRIVERS.has(d.driver.name) ? `lspci -nn -s ${d.device}` : settleFor(d));
  }
  // the listing is the state now; a "not viable" line is evidence of the state when it was printed
  const now: Tristate = blockers.length > 0 ? 'no' : membership === 'complete' && unknownMembers.length === 0 ? 'yes' : 'unknown';
  const viable: Tristate = now === 'unknown' && reportedNotViable.length > 0 ? 'no' : now;
  let summary: string;
  if (blockers.length > 0) summary = `not viable while ${blockerPhrase(blockers)}`;
  else if (viable === 'no') {
    const lines = reportedNotViable.map((e) => e.evidence.line).join(', ');
    summary = `not viable: reported on line ${lines}; the member that blocks it is not in the paste`;
    unknowns.push(`which member of group ${n} blocks it: the paste shows no member on a kernel DMA-API driver`);
  } else if (viable === 'yes') summary = 'viable: every member is driver-less, on vfio/pci-stub or on a driver_managed_dma driver';
  else summary = 'viability unknown: the paste does not show every member and its driver';
  if (now === 'yes' && reportedNotViable.length > 0) {
    notes.push(`line ${reportedNotViable[0]!.evidence.line} reported group ${n} not viable, but the paste shows every member on a driver that does not block: the drivers changed after that error (try again)`);
  }
  const bridges = members.filter((d) => isBridgeFamily(d) === true);
  const endpoints = members.filter((d) => isBridgeFamily(d) === false);
  if (endpoints.length > 1) {
    notes.push(
      `group ${n} holds ${endpoints.length} endpoint devices (${endpoints.map((d) => d.device).join(', ')}): they are passed through together or not at all; one the host keeps on a kernel DMA-API driver blocks the others (only a slot behind a port with ACS, or pcie_acs_override, splits them)`,
    );
  }
  if (bridges.length > 0 && endpoints.length > 0) {
    notes.push(
      `${bridges.map((d) => d.device).join(', ')} ${bridges.length > 1 ? 'are bridges' : 'is a bridge'} (class 06): keep ${bridges.length > 1 ? 'them' : 'it'} out of the VM (no -device, no vfio-pci): a bridge with no driver or on pcieport does not block the group, and vfio-pci refuses bridge headers; pass only ${endpoints.map((d) => d.device).join(', ')}`,
    );
  }
  for (const e of errors) {
    const extra = errorNote(e);
    if (extra) notes.push(extra);
    if (e.claim === 'group-busy') notes.push(`line ${e.evidence.line}: the group was reached but a device could not be opened (in use by another VM or process, or a mediated device failed to start): not a viability problem`);
    if (e.claim === 'vfio-node-denied') {
      notes.push(
        `line ${e.evidence.line}: /dev/vfio/${n} exists but the VMM may not open it (-${e.errno ?? 'EPERM'}): its permissions, the container's devices cgroup (a runtime that does not allow the node) or SELinux/AppArmor refuse it; not a viability problem`,
      );
      settle.push(`ls -l /dev/vfio/${n}   # and the VMM's devices cgroup or security label, if it runs in a container`);
    }
    if (e.claim === 'no-vfio-node') notes.push(`line ${e.evidence.line}: /dev/vfio/${n} does not exist: no member of group ${n} was bound to a vfio driver then`);
    if (e.claim === 'container-refused') notes.push(containerNote(e, facts));
  }
  const { fix, notes: fixNotes } = fixFor(`group ${n}`, blockers, members, facts, isBridgeClass);
  notes.push(...fixNotes);
  for (const d of members) {
    const ev = facts.requireDirect.get(d.device);
    if (ev) notes.push(rmrrNote(ev, d.device));
  }
  if (facts.acsOverride && members.length > 0) {
    notes.push(`pcie_acs_override is on the kernel command line (line ${facts.acsOverride.line}): this grouping is the override's, not the hardware's isolation`);
  }
  return { group: n, wanted, viable, membership, members: verdicts, blockers: blockers.map((b) => b.device), summary, fix, unknowns, settle, notes };
};

const judgeDevice = (d: DeviceFacts, facts: Facts, rule: ViabilityRule, caps: ManagedDma): DeviceVerdict => {
  const v = judge(d, rule, caps);
  const driver = d.driver?.current ? d.driver.name : undefined;
  const refused = facts.errors.find((e) => e.device === d.device && e.claim === 'vfio-probe-einval');
  // a "no IOMMU group" line names the device, or names none while vfio-pci refused this (non-bridge) device with -EINVAL
  const noGroup = facts.errors.find(
    (e) => e.claim === 'no-iommu-group' && (e.device === d.device || (e.device === undefined && refused !== undefined && isBridgeClass(d) !== true)),
  );
  const base = { device: d.device, ...(d.description ? { description: d.description } : {}), ...(driver !== undefined ? { driver } : {}) };
  if (v.status === 'blocks') {
    const { fix, notes } = fixFor(`${d.device}'s group`, [d], [d], facts, isBridgeClass);
    return {
      ...base,
      viable: 'no',
      reason: `not viable while ${d.device} is on ${driver} (${v.reason}); its group, and what else is in it, is not in the paste`,
      fix,
      settle: [siblingsOf(d.device)],
      notes,
    };
  }
  const notes = facts.errors.filter((e) => e.device === d.device).flatMap((e) => errorNote(e) ?? []);
  const reported = facts.errors.find((e) => e.device === d.device && e.claim === 'not-viable');
  if (reported) {
    return {
      ...base,
      viable: 'no',
      reason: `reported not viable on line ${reported.evidence.line}: a member of its group is on a driver that blocks; the group is not in the paste`,
      fix: [],
      settle: [siblingsOf(d.device)],
      notes,
    };
  }
  const readlinkGroup = `readlink /sys/bus/pci/devices/${d.device}/iommu_group`;
  const noGroupLine = noGroup ? `line ${noGroup.evidence.line}` : facts.noPciGroups ? `line ${facts.noPciGroups.line}: no PCI device is in any IOMMU group` : undefined;
  if (noGroupLine) {
    // like "group N is not viable", a line saying the device has no group is direct evidence of the state then:
    // vfio_group_find_or_alloc() fails with -EINVAL, so no VMM can take the device
    const by = refused ? `; vfio-pci refused it with -EINVAL on line ${refused.evidence.line}` : '';
    return {
      ...base,
      viable: 'no',
      reason: `not viable: ${d.device} has no IOMMU group (${noGroupLine}${by}): the IOMMU is off or does not cover it, and VFIO takes only devices in a group`,
      fix: iommuOnSteps(d.device, facts.kernelRelease),
      settle: [readlinkGroup, ...IOMMU_STATE],
      notes,
    };
  }
  if (refused) {
    return {
      ...base,
      viable: 'unknown',
      reason: `vfio-pci refused ${d.device} with -EINVAL (line ${refused.evidence.line}): it has no IOMMU group, is a bridge (vfio-pci takes only normal-header devices) or is on vfio-pci's denylist`,
      fix: [],
      settle: [readlinkGroup, `lspci -nn -s ${d.device}`],
      notes,
    };
  }
  const settle = [readlinkGroup, ...(v.status === 'unknown' ? [settleFor(d)] : [])];
  return { ...base, viable: 'unknown', reason: `group not shown; ${v.status === 'ok' ? `own driver does not block (${v.reason})` : v.reason}`, fix: [], settle, notes };
};

/** the verdict on every group in the facts; pure */
export const diagnose = (facts: Facts, options: DiagnoseOptions = {}): Diagnosis => {
  const { rule, reason } = chooseRule(facts, options.rule ?? 'auto');
  const caps: ManagedDma = { managedDmaDrivers: options.managedDmaDrivers ?? DEFAULT_MANAGED_DMA_DRIVERS };
  const { wanted, notes } = wantedGroups(facts, options);
  const groupNumbers = [...new Set([...facts.groups.keys(), ...wanted])].sort((a, b) => a - b);
  const groups = groupNumbers.map((n) => judgeGroup(n, facts, rule, caps, wanted.has(n)));
  const wantedGroupList = groups.filter((g) => g.wanted);
  const scope = wantedGroupList.length > 0 ? wantedGroupList : groups;
  const devices = wantedDevices(facts, options)
    .filter((d) => d.group === undefined)
    .map((d) => judgeDevice(d, facts, rule, caps));
  const unnamed = facts.errors.filter((e) => e.claim === 'not-viable' && e.group === undefined && e.device === undefined);
  const states: Tristate[] = [...scope.map((g) => g.viable), ...devices.map((d) => d.viable), ...unnamed.map((): Tristate => 'no')];
  const verdict: Diagnosis['verdict'] = states.length === 0 ? 'unknown' : states.includes('no') ? 'not-viable' : states.every((s) => s === 'yes') ? 'viable' : 'unknown';
  const next = [...new Set([...scope.flatMap((g) => g.settle), ...devices.flatMap((d) => d.settle)])];
  if (facts.iommuOff) next.push(...IOMMU_STATE.filter((c) => !next.includes(c)));
  for (const e of unnamed) notes.push(`line ${e.evidence.line} reports a group not viable without naming it or its device; the group listing under "next" names the group and its blocker`);
  // firmware 1:1 mappings and refused containers the groups above do not carry
  const inGroups = new Set(groups.flatMap((g) => g.members.map((m) => m.device)));
  for (const [device, ev] of facts.requireDirect) if (!inGroups.has(device)) notes.push(rmrrNote(ev, device));
  if (facts.requireDirectUnnamed) notes.push(rmrrNote(facts.requireDirectUnnamed, undefined));
  const refused = facts.errors.filter((e) => e.claim === 'container-refused');
  for (const e of refused.filter((x) => x.group === undefined)) notes.push(containerNote(e, facts));
  if (verdict !== 'viable' && refused.length > 0 && !next.includes(FIRMWARE_REFUSALS)) next.push(FIRMWARE_REFUSALS);
  if (facts.unattributedGroupLinks) {
    notes.push(
      `line ${facts.unattributedGroupLinks.line}: readlink over a glob prints each device's group link without the device's name: the paste shows which groups exist, not who is in them`,
    );
    if (verdict !== 'viable') next.unshift(GROUP_LINKS_NAMED);
  }
  if (verdict !== 'viable' && (next.length === 0 || unnamed.length > 0)) next.push(ALL_GROUPS);
  const devicesWithoutGroup = [...facts.devices.values()].filter((d) => !d.group).map((d) => d.device).sort();
  return {
    verdict,
    considered: scope.map((g) => g.group),
    rule,
    ruleReason: reason,
    ...(facts.kernelRelease ? { kernelRelease: facts.kernelRelease } : {}),
    groups,
    devices,
    next,
    errors: facts.errors,
    devicesWithoutGroup,
    conflicts: facts.conflicts,
    formats: Object.fromEntries(facts.formats),
    notes: [
      ...notes,
      ...(facts.iommuOff ? [`line ${facts.iommuOff.line} shows no IOMMU group: the IOMMU is off (firmware VT-d/AMD-Vi setting, or intel_iommu=on missing) or absent for the device`] : []),
      ...(scope.length === 0 && devices.length === 0 ? ['no IOMMU group found in the paste: add the output of the IOMMU group listing (the command under "next") and lspci -nnk'] : []),
    ],
  };
};
