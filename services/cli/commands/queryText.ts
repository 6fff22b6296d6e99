import { formatTimeNs } from '../../shared/time.js';

/**
 * The query answers in words for a person: field changes as sentences, events named one way
 * (`host#seq`, UTC time), the process behind an event. Pure functions over the API's JSON.
 */

export interface Actor {
  readonly pid?: number;
  readonly comm?: string;
  readonly vm?: string;
  readonly tenant?: string;
}

export interface FieldChange {
  readonly path: string;
  readonly before: unknown;
  readonly after: unknown;
}

interface Domain {
  readonly kind: string;
  readonly hwptId?: number;
  readonly ictx?: string;
  readonly container?: string;
}

interface Owner {
  readonly kind: string;
  readonly handle: string;
}

export interface ViolationText {
  readonly ruleId: string;
  readonly severity: string;
  readonly message: string;
  readonly group?: number;
  readonly device?: string;
}

/** an event as the API gives it in a timeline or a diff's causes */
export interface ChangeItem {
  readonly ref: { readonly label: string; readonly time: string };
  readonly event: { readonly type: string; readonly data: Record<string, unknown>; readonly actor?: Actor };
  readonly change: {
    readonly groups: readonly { readonly group: number; readonly changes: readonly FieldChange[] }[];
    readonly devices: readonly { readonly device: string; readonly changes: readonly FieldChange[] }[];
    readonly violationsOpened: readonly ViolationText[];
    readonly violationsClosed: readonly ViolationText[];
  };
}

export const isoOfNs = (ns: string): string => formatTimeNs(BigInt(ns));

export const domainText = (d: Domain | null | undefined): string =>
  !d ? 'none' : d.kind === 'hwpt' ? `hwpt ${d.hwptId} of iommufd ${d.ictx}` : d.kind === 'container' ? `container ${d.container}` : `the ${d.kind} domain`;

const ownerText = (o: Owner | null | undefined): string => (!o ? 'the kernel' : `${o.kind === 'iommufd' ? 'iommufd' : 'legacy container'} ${o.handle}`);

/** "qemu-system-x86 (pid 100), VM vm-a, tenant initech"; empty when nothing is known */
export const actorText = (a: Actor | null | undefined): string => {
  if (!a) return '';
  const proc = a.comm !== undefined ? `${a.comm}${a.pid !== undefined ? ` (pid ${a.pid})` : ''}` : a.pid !== undefined ? `pid ${a.pid}` : '';
  return [proc, a.vm !== undefined ? `VM ${a.vm}` : '', a.tenant !== undefined ? `tenant ${a.tenant}` : ''].filter(Boolean).join(', ');
};

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

const setChange = (what: string, before: unknown, after: unknown): string => {
  const b = list(before);
  const a = list(after);
  const added = a.filter((x) => !b.includes(x));
  const removed = b.filter((x) => !a.includes(x));
  return [added.length ? `${what} gained ${added.join(', ')}` : '', removed.length ? `${what} lost ${removed.join(', ')}` : ''].filter(Boolean).join('; ') || `${what} reordered`;
};

/** one group or device field change as a sentence */
export const changeInWords = (c: FieldChange): string => {
  const { path, before, after } = c;
  switch (path) {
    case 'userOwner':
      if (before === null) return `ownership claimed by ${ownerText(after as Owner)} (user DMA owner)`;
      if (after === null) return `ownership released by ${ownerText(before as Owner)}: back to the kernel`;
      return `ownership moved from ${ownerText(before as Owner)} to ${ownerText(after as Owner)}`;
    case 'domain':
    case 'translatedBy':
      return `DMA translated by ${domainText(after as Domain)} (was ${domainText(before as Domain)})`;
    case 'members':
      return setChange('members', before, after);
    case 'attachedDevices':
      return setChange('devices attached to its hwpt', before, after);
    case 'extraOwners':
      return list(after).length > list(before).length ? `a second owner recorded: ${(after as Owner[]).map(ownerText).join(', ')}` : 'the extra owner went away';
    case 'twoOwners':
      return after ? 'two owners at once (impossible upstream)' : 'back to one owner';
    case 'userOwnerCount':
      return `user owner count ${String(before ?? 0)} → ${String(after ?? 0)}`;
    case 'kernelDmaDrivers':
      return `kernel DMA-API drivers bound ${String(before ?? 0)} → ${String(after ?? 0)}`;
    case 'legacyGroupOpen':
      return after ? 'legacy /dev/vfio group node opened' : 'legacy /dev/vfio group node closed';
    case 'legacyGroupFd':
      return after === null ? `legacy group fd ${String(before)} closed` : `legacy group fd ${String(after)} opened`;
    case 'container': {
      const a = after as { handle: string; kind: string } | null;
      const b = before as { handle: string; kind: string } | null;
      return a ? `group set on ${a.kind} container ${a.handle}` : `group taken off ${b?.kind ?? ''} container ${b?.handle ?? ''}`.replace('  ', ' ');
    }
    case 'uncertain':
      return after ? 'marked uncertain (events lost or reordered)' : 'no longer uncertain';
    case 'uncertainReason':
      return after === null ? '' : `uncertain because ${String(after)}`;
    case 'driver':
      return after === null ? `driver ${String(before)} unbound (no driver)` : before === null ? `driver ${String(after)} bound` : `driver ${String(before)} → ${String(after)}`;
    case 'boundIctx':
      return after === null ? `unbound from iommufd ${String(before)}` : `bound to iommufd ${String(after)}`;
    case 'vm':
    case 'tenant':
      return after === null ? `${path} ${String(before)} left` : `used by ${path === 'vm' ? 'VM' : 'tenant'} ${String(after)}`;
    default: {
      const pasid = /^pasids\.(\d+)$/.exec(path);
      if (pasid) return after === null ? `PASID ${pasid[1]} detached (hwpt ${String(before)})` : `PASID ${pasid[1]} attached to hwpt ${String(after)}`;
      const words = path.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
      const v = (x: unknown) => (x === null ? 'none' : typeof x === 'object' ? JSON.stringify(x) : String(x));
      return `${words}: ${v(before)} → ${v(after)}`;
    }
  }
};

/** a group's or device's changes in words; a group that appeared or went is summed up in one line */
export const changesInWords = (what: string, changes: readonly FieldChange[]): string[] => {
  const members = changes.find((c) => c.path === 'members');
  if (members && members.before === null) return [`${what} recorded: members ${list(members.after).join(', ') || 'none'}`];
  if (members && members.after === null && changes.every((c) => c.after === null || c.after === false || c.after === 0)) return [`${what} gone`];
  return changes.map(changeInWords).filter((s) => s !== '');
};

/** what an event says about itself: its device, driver, group and handles, in a few words */
export const eventSubject = (type: string, data: Record<string, unknown>): string => {
  const parts: string[] = [];
  if (typeof data.device === 'string') parts.push(data.device);
  if (typeof data.driver === 'string') parts.push(`driver ${data.driver}`);
  else if (type === 'DriverUnbound') parts.push('driver (not named by the uevent)');
  if (typeof data.group === 'number') parts.push(`group ${data.group}`);
  if (typeof data.ictx === 'string') parts.push(`iommufd ${data.ictx}`);
  if (typeof data.container === 'string') parts.push(`container ${data.container}`);
  if (type === 'TopologySnapshotTaken' && Array.isArray(data.groups)) parts.push(`${data.groups.length} group(s), ${Array.isArray(data.devices) ? data.devices.length : 0} device(s)`);
  const outcome = data.outcome as { ok?: boolean; errno?: string } | undefined;
  if (outcome && outcome.ok === false) parts.push(`failed ${outcome.errno ?? ''}`.trim());
  if (typeof data.errno === 'string') parts.push(`refused ${data.errno}`);
  return parts.join(' ');
};

const violationLines = (item: ChangeItem, concerns: (v: ViolationText) => boolean): string[] => [
  ...item.change.violationsOpened.filter(concerns).map((v) => `VIOLATION OPENED ${v.severity.toUpperCase()} ${v.ruleId}: ${v.message}`),
  ...item.change.violationsClosed.filter(concerns).map((v) => `violation closed ${v.ruleId}: ${v.message}`),
];

/**
 * One event of a timeline (or a diff's cause) for a person: time, `host#seq`, type and subject, who did it,
 * then the changes to the subject (only that group or device, labelled) and the violations it opened or closed.
 */
export const itemInWords = (item: ChangeItem, subject: { group?: number; device?: string }): string => {
  const who = actorText(item.event.actor);
  const head = `${item.ref.time} ${item.ref.label} ${item.event.type}${(() => {
    const s = eventSubject(item.event.type, item.event.data);
    return s ? ` ${s}` : '';
  })()}${who ? ` by ${who}` : ''}`;
  const lines: string[] = [];
  for (const g of item.change.groups) if (subject.group === undefined || g.group === subject.group) lines.push(...changesInWords(`group ${g.group}`, g.changes).map((l) => `group ${g.group}: ${l}`.replace(`group ${g.group}: group ${g.group} `, `group ${g.group} `)));
  for (const d of item.change.devices) if (subject.device !== undefined && d.device === subject.device) lines.push(...changesInWords(d.device, d.changes).map((l) => `${d.device}: ${l}`.replace(`${d.device}: ${d.device} `, `${d.device} `)));
  lines.push(...violationLines(item, (v) => (subject.group !== undefined ? v.group === subject.group : v.device === subject.device)));
  return [head, ...lines.map((l) => `    ${l}`)].join('\n');
};
