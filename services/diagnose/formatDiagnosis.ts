import type { Diagnosis, GroupVerdict } from './diagnose.js';

const HEADLINE: Record<Diagnosis['verdict'], string> = {
  viable: 'VIABLE',
  'not-viable': 'NOT VIABLE',
  unknown: 'UNKNOWN (the paste does not settle it)',
};

const groupBlock = (g: GroupVerdict): string[] => {
  const out: string[] = [];
  const state = g.viable === 'yes' ? 'viable' : g.viable === 'no' ? 'NOT viable' : 'viability unknown';
  out.push(`IOMMU group ${g.group}${g.wanted ? ' (wanted)' : ''}: ${state}; members ${g.membership}`);
  const width = Math.max(12, ...g.members.map((m) => (m.driver ?? '?').length));
  for (const m of g.members) {
    const driver = m.driver === undefined ? '?' : m.driver === null ? '(none)' : m.driver;
    const mark = m.status === 'blocks' ? 'BLOCKS' : m.status === 'ok' ? 'ok' : 'unknown';
    out.push(`  ${m.device}  ${driver.padEnd(width)}  ${mark.padEnd(7)} ${m.reason}${m.description ? `  [${m.description.slice(0, 80)}]` : ''}`);
  }
  if (g.blockers.length > 0) out.push(`  blocked by: ${g.blockers.join(', ')}`);
  if (g.fix.length > 0) {
    out.push('  to fix:');
    for (const f of g.fix) out.push(`    ${f}`);
  }
  if (g.unknowns.length > 0) {
    out.push('  not known from the paste:');
    for (const u of g.unknowns) out.push(`    - ${u}`);
  }
  if (g.settle.length > 0) {
    out.push('  to settle it, add the output of:');
    for (const s of g.settle) out.push(`    ${s}`);
  }
  for (const n of g.notes) out.push(`  note: ${n}`);
  return out;
};

// the part of a VMM error line that names the device and group, without the launcher's preamble
const shortError = (message: string): string => {
  const at = message.search(/vfio[ :]/i);
  const tail = at >= 0 ? message.slice(at) : message;
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
  return `${out.join('\n')}\n`;
};

/** `--json`: the diagnosis as plain JSON */
export const toDiagnosisJson = (d: Diagnosis): unknown => JSON.parse(JSON.stringify(d));
