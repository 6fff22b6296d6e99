import type { DeviceVerdict, Diagnosis, GroupVerdict } from './diagnose.js';

const DESCRIPTION_WIDTH = 100;

/** a device description short enough for one line, never cut before its `[vendor:device]` ids */
export const shortDescription = (description: string): string => {
  if (description.length <= DESCRIPTION_WIDTH) return description;
  const ids = [...description.matchAll(/\[[0-9a-fA-F]{4}:[0-9a-fA-F]{4}\]/g)].pop();
  if (!ids) return `${description.slice(0, DESCRIPTION_WIDTH - 3)}...`;
  const tail = description.slice(ids.index);
  const room = Math.max(20, DESCRIPTION_WIDTH - tail.length - 4);
  return `${description.slice(0, room).trimEnd()} ... ${tail}`;
};

const listBlock = (title: string, items: readonly string[], bullet = ''): string[] =>
  items.length === 0 ? [] : [`  ${title}`, ...items.map((i) => `    ${bullet}${i}`)];

const HEADLINE: Record<Diagnosis['verdict'], string> = {
  viable: 'VIABLE',
  'not-viable': 'NOT VIABLE',
  unknown: 'UNKNOWN (the paste does not settle it)',
};

const groupBlock = (g: GroupVerdict): string[] => {
  const out: string[] = [];
  const state = g.viable === 'yes' ? 'viable' : g.viable === 'no' ? 'NOT viable' : 'viability unknown';
  out.push(`IOMMU group ${g.group}${g.wanted ? ' (wanted)' : ''}: ${state}; members ${g.membership}`);
  out.push(`  ${g.summary}`);
  const width = Math.max(12, ...g.members.map((m) => (m.driver ?? '?').length));
  for (const m of g.members) {
    const driver = m.driver === undefined ? '?' : m.driver === null ? '(none)' : m.driver;
    const mark = m.status === 'blocks' ? 'BLOCKS' : m.status === 'ok' ? 'ok' : 'unknown';
    out.push(`  ${m.device}  ${driver.padEnd(width)}  ${mark.padEnd(7)} ${m.reason}${m.description ? `  [${shortDescription(m.description)}]` : ''}`);
  }
  if (g.blockers.length > 0) out.push(`  blocked by: ${g.blockers.join(', ')}`);
  out.push(...listBlock('to fix:', g.fix), ...listBlock('not known from the paste:', g.unknowns, '- '), ...listBlock('to settle it, add the output of:', g.settle));
  for (const n of g.notes) out.push(`  note: ${n}`);
  return out;
};

const deviceBlock = (d: DeviceVerdict): string[] => [
  `device ${d.device}${d.description ? ` [${shortDescription(d.description)}]` : ''}: ${d.reason}`,
  ...listBlock('to fix:', d.fix),
  ...listBlock('to settle it, add the output of:', d.settle),
  ...d.notes.map((n) => `  note: ${n}`),
];

// the part of a VMM error line that names the device and group, without the launcher's preamble
const shortError = (message: string): string => {
  // the preamble ends where the message starts with "vfio" (line start, or after ": "); a "vfio" inside a sentence stays
  const at = message.search(/(?:^|:\s)vfio[ :]/i);
  const tail = at > 0 ? message.slice(at).replace(/^:\s/, '') : message;
  return tail.length > 200 ? `${tail.slice(0, 197)}...` : tail;
};

/** the human report: headline, reported errors, one block per group (wanted groups first) */
export const formatDiagnosis = (d: Diagnosis, options: { readonly all?: boolean } = {}): string => {
  const out: string[] = [];
  const wanted = d.groups.filter((g) => g.wanted).map((g) => g.group);
  out.push(`verdict: ${HEADLINE[d.verdict]}${wanted.length > 0 ? ` for group ${wanted.join(', ')}` : ''}`);
  out.push(`rule: ${d.rule === 'upstream' ? 'v5.19+ DMA ownership (no member on a non-driver_managed_dma driver)' : 'pre-v5.19 vfio_dev_viable'}; ${d.ruleReason}`);
  const formats = Object.entries(d.formats).map(([k, n]) => `${k} ${n}`);
  if (formats.length > 0) out.push(`read: ${formats.join(', ')} line(s)`);
  for (const e of d.errors) out.push(`reported (${e.origin}, line ${e.evidence.line}): ${shortError(e.message)}`);
  const wantedGroups = d.groups.filter((g) => g.wanted);
  const shown = wantedGroups.length > 0 && !options.all ? wantedGroups : d.groups;
  for (const g of shown) {
    out.push('');
    out.push(...groupBlock(g));
  }
  for (const dv of d.devices) {
    out.push('');
    out.push(...deviceBlock(dv));
  }
  const others = d.groups.filter((g) => !shown.includes(g));
  if (others.length > 0) {
    out.push('');
    out.push(`other groups in the paste (--all to show them): ${others.map((g) => `${g.group} (${g.members.length} device(s), ${g.viable === 'yes' ? 'viable' : g.viable === 'no' ? 'not viable' : 'unknown'})`).join(', ')}`);
  }
  if (d.devicesWithoutGroup.length > 0) {
    out.push('');
    out.push(`devices with no IOMMU group in the paste: ${d.devicesWithoutGroup.join(', ')}`);
  }
  for (const c of d.conflicts) out.push(`conflict: ${c}`);
  for (const n of d.notes) out.push(`note: ${n}`);
  if (d.verdict !== 'viable' && d.next.length > 0) {
    out.push('');
    out.push(d.verdict === 'unknown' ? 'next: run these and add their output to the paste to settle it:' : 'next: to name what the paste does not show, run:');
    for (const c of d.next) out.push(`  ${c}`);
  }
  return `${out.join('\n')}\n`;
};

/** `--json`: the diagnosis as plain JSON */
export const toDiagnosisJson = (d: Diagnosis): unknown => JSON.parse(JSON.stringify(d));
