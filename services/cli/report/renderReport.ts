import { FINDING_SEVERITIES, UNCERTAINTY_RULES, type ComplianceResult } from '../../serve/analytics/compliance.js';
import { formatDuration, formatShare, formatTime } from '../../serve/analytics/humanize.js';

/** the compliance figures as the API serves them (64-bit values as decimal strings) */
export type ReportCompliance = Omit<ComplianceResult, 'fromNs' | 'toNs' | 'staleAfterNs' | 'hostDays'> & {
  readonly fromNs: string;
  readonly toNs: string;
  readonly staleAfterNs: string;
  readonly warnings: readonly string[];
};

export type Row = Readonly<Record<string, unknown>>;

/** where an evidence event stands in the signed log */
export type Inclusion =
  | { readonly state: 'proved'; readonly position: number; readonly size: number; readonly hashes: number }
  | { readonly state: 'failed'; readonly position: number; readonly reason: string }
  | { readonly state: 'pending'; readonly position: number; readonly reason: string };

export interface ReportFinding {
  readonly violation: Row;
  readonly events: readonly (Row & { readonly inclusion: Inclusion })[];
  readonly rule: { readonly title: string; readonly guards: string } | null;
}

/** whether the report checked the checkpoint's signature itself, and with which key */
export type ReportSignature =
  | { readonly checked: true; readonly keySource: string; readonly originPinned: boolean }
  | { readonly checked: false; readonly reason: string };

export interface ReportData {
  readonly generatedAt: string;
  readonly service: string;
  readonly hosts: readonly string[];
  readonly compliance: ReportCompliance;
  readonly trends: readonly Row[];
  readonly violations: readonly Row[];
  readonly findings: readonly ReportFinding[];
  readonly checkpoint: { readonly origin: string; readonly size: number; readonly note: string; readonly signature: ReportSignature } | null;
  readonly rules: readonly { readonly id: string; readonly severity: string; readonly title: string; readonly guards: string; readonly lifecycle: string }[];
}

const signatureText = (s: ReportSignature, origin: string): string =>
  s.checked
    ? `Signature checked by this report: the checkpoint is signed for origin ${esc(origin)}${s.originPinned ? ' (the origin given)' : ' (the origin it names: pin it with --origin)'} by the ${esc(s.keySource)}; every proof above leads to its root.`
    : `<b class="warning">Signature NOT checked by this report</b> (${esc(s.reason)}): the proofs lead to this root, but nothing here shows the root is the log's. Check it as step 1 says, or run the report with --public-key.`;

const esc = (v: unknown): string =>
  (v === null || v === undefined ? '' : Array.isArray(v) ? v.join(', ') : String(v)).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const time = (ns: string): string => formatTime(ns);

const table = (headers: readonly string[], rows: readonly (readonly unknown[])[], cls = ''): string =>
  rows.length === 0
    ? '<p class="empty">no data</p>'
    : `<table class="${cls}"><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
        .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
        .join('')}</tbody></table>`;

// the hosts table: the ones that need attention first
const STATUS_ORDER: readonly string[] = ['non-compliant', 'not-assessed', 'compliant'];

const isFinding = (v: Row): boolean => FINDING_SEVERITIES.includes(String(v.severity)) && !UNCERTAINTY_RULES.includes(String(v.rule));

/** per rule over the period: how many, still open, time to close (median) */
export const perRule = (violations: readonly Row[]) => {
  const by = new Map<string, Row[]>();
  for (const v of violations) by.set(`${String(v.rule)}\u0000${String(v.severity)}`, [...(by.get(`${String(v.rule)}\u0000${String(v.severity)}`) ?? []), v]);
  return [...by.entries()]
    .map(([k, vs]) => {
      const [rule = '', severity = ''] = k.split('\u0000');
      const closed = vs.filter((v) => v.duration_ns !== null && v.duration_ns !== undefined).map((v) => BigInt(String(v.duration_ns))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const median = closed.length === 0 ? null : closed[Math.floor((closed.length - 1) / 2)]!;
      return { rule, severity, count: vs.length, open: vs.length - closed.length, medianClose: median === null ? '' : formatDuration(median) };
    })
    .sort((a, b) => b.count - a.count || (a.rule < b.rule ? -1 : 1));
};

const bars = (days: readonly Row[]): string => {
  if (days.length === 0) return '<p class="empty">no data</p>';
  const max = Math.max(1, ...days.map((d) => Math.max(Number(d.opened), Number(d.closed))));
  const w = 640;
  const h = 140;
  const bw = Math.max(2, Math.floor(w / days.length / 2) - 2);
  const parts = days.map((d, i) => {
    const x = Math.floor((i * w) / days.length);
    const ho = Math.round((Number(d.opened) / max) * (h - 20));
    const hc = Math.round((Number(d.closed) / max) * (h - 20));
    return `<rect x="${x}" y="${h - 14 - ho}" width="${bw}" height="${ho}" fill="#d92d20"><title>${esc(d.day)} opened ${esc(d.opened)}</title></rect><rect x="${x + bw + 1}" y="${h - 14 - hc}" width="${bw}" height="${hc}" fill="#12b76a"><title>${esc(d.day)} closed ${esc(d.closed)}</title></rect><text x="${x}" y="${h - 2}" font-size="9">${esc(String(d.day).slice(5))}</text>`;
  });
  return `<svg viewBox="0 0 ${w} ${h}" width="100%" role="img" aria-label="violations opened (red) and closed (green) per day">${parts.join('')}</svg>`;
};

const inclusionText = (i: Inclusion): string =>
  i.state === 'proved' ? `included: position ${i.position} proved in the signed tree of ${i.size} (${i.hashes} hashes)` : i.state === 'failed' ? `NOT PROVED: ${i.reason}` : `pending: ${i.reason}`;

const STYLE = `
body { font-family: system-ui, sans-serif; color: #1d2330; margin: 24px; font-size: 11pt; }
h1 { font-size: 20pt; margin: 0 0 4px; } h2 { font-size: 14pt; margin: 22px 0 6px; border-bottom: 1px solid #d0d5dd; }
h3 { font-size: 11pt; margin: 14px 0 4px; } .muted { color: #5a6375; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; } .card { border: 1px solid #d0d5dd; border-radius: 6px; padding: 8px 12px; min-width: 130px; }
.card b { display: block; font-size: 18pt; }
table { border-collapse: collapse; width: 100%; font-size: 8.5pt; margin: 4px 0 8px; } th, td { text-align: left; border-bottom: 1px solid #e4e7ec; padding: 2px 4px; vertical-align: top; overflow-wrap: anywhere; }
.finding { break-inside: avoid; border-left: 3px solid #d92d20; padding-left: 8px; margin: 10px 0; }
.warning { background: #fffaeb; border: 1px solid #fec84b; padding: 6px 10px; border-radius: 6px; }
pre { font-size: 8pt; background: #f4f6f9; padding: 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
.empty { color: #5a6375; font-style: italic; }
`;

/** the report as one self-contained HTML page (inline style and SVG, no script, no external resource) */
export const renderReportHtml = (d: ReportData): string => {
  const c = d.compliance;
  const h = c.headline;
  const findings = d.violations.filter(isFinding);
  const scope = d.hosts.length === 0 ? 'every host' : d.hosts.join(', ');
  const reasons = Object.entries(h.notAssessedByReason).filter(([, n]) => n > 0).map(([r, n]) => `${n} ${r}`).join(', ');
  const trendRows = d.trends.map((t) => [t.day, t.opened, t.closed, t.median_close ?? '', t.p90_close ?? '']);
  const hostRows = [...c.hosts]
    .sort((a, b) => STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) || (a.host < b.host ? -1 : 1))
    .map((x) => [x.host, x.status, x.reasons.join(', '), x.findings, x.daysCompliant, x.daysNonCompliant, x.daysNotAssessed]);
  const findingBlocks = d.findings.map((f, i) => {
    const v = f.violation;
    return `<div class="finding"><h3>${i + 1}. ${esc(v.violation)}</h3>
      <p>${esc(v.severity)} · ${esc(v.rule)}${f.rule ? `: ${esc(f.rule.title)}` : ''}. ${v.closed_utc ? `Closed ${esc(v.closed_utc)} after ${esc(v.duration)}.` : 'Still open at the end of the period.'}</p>
      ${f.rule ? `<p class="muted">Why it matters: ${esc(f.rule.guards)}</p>` : ''}
      ${table(['role', 'position', 'time (UTC)', 'type', 'device', 'process', 'VM', 'tenant', 'signed log'], f.events.map((e) => [e.role, e.position, e.time_utc, e.type, e.device, e.actor_comm, e.actor_vm, e.actor_tenant, inclusionText(e.inclusion)]))}</div>`;
  });
  const proved = d.findings.flatMap((f) => f.events).filter((e) => e.inclusion.state === 'proved').length;
  const evidence = d.findings.flatMap((f) => f.events).length;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>iommutrail compliance report ${esc(time(c.fromNs))} to ${esc(time(c.toNs))}</title><style>${STYLE}</style></head><body>
<h1>IOMMU isolation compliance report</h1>
<p class="muted">Period ${esc(time(c.fromNs))} to ${esc(time(c.toNs))} (UTC)</p>
<p class="muted" id="scope">Scope: ${esc(scope)}</p>
<p class="muted">Generated ${esc(d.generatedAt)} from ${esc(d.service)}</p>
${c.warnings.length > 0 ? `<p class="warning">${c.warnings.map(esc).join('<br>')}</p>` : ''}
<h2>Headline</h2>
<div class="cards" id="headline">
  <div class="card">Compliant hosts<b id="h-share">${esc(formatShare(h.compliantShare))}</b>${h.compliant} of ${h.compliant + h.nonCompliant} assessed</div>
  <div class="card">Non-compliant hosts<b id="h-noncompliant">${h.nonCompliant}</b></div>
  <div class="card">Not assessed<b id="h-notassessed">${h.notAssessed}</b>${esc(reasons || 'none')}</div>
  <div class="card">Findings in the period<b id="h-findings">${findings.length}</b>${findings.filter((v) => v.open === 'yes').length} still open</div>
</div>
${h.noData ? '<p class="empty">No data: no host of this scope reported in the period.</p>' : ''}
<h2>Trends</h2>
${bars(d.trends)}
${table(['day', 'opened', 'closed', 'median time to close', 'p90 time to close'], trendRows)}
<h3>Compliance per day</h3>
${table(['day', 'compliant', 'non-compliant', 'not assessed', 'compliant share'], c.days.map((x) => [x.day, x.compliant, x.nonCompliant, x.notAssessed, formatShare(x.compliantShare)]), 'per-day')}
<h2>Per host</h2>
${table(['host', 'status', 'not assessed because', 'findings', 'days compliant', 'days non-compliant', 'days not assessed'], hostRows, 'per-host')}
<h2>Per rule</h2>
${table(['rule', 'severity', 'violations', 'still open', 'median time to close'], perRule(d.violations).map((r) => [r.rule, r.severity, r.count, r.open, r.medianClose]), 'per-rule')}
<h2>Findings and their evidence</h2>
<p>${findings.length} finding(s); ${evidence} evidence event(s), ${proved} of them proved included in the signed log.</p>
${findingBlocks.join('\n') || '<p class="empty">No finding in the period.</p>'}
<h2>What compliant means</h2>
<p>Per host and UTC day of the period, first match wins: <b>not assessed</b> when the host has no IOMMU or had sent no event yet;
<b>non-compliant</b> when a finding (a violation of severity critical or warning, the sequence rules aside) was open at some moment of the day;
<b>not assessed</b> when its state was uncertain (events missing or out of order) or its collector had been silent for more than ${esc(formatDuration(c.staleAfterNs))};
otherwise <b>compliant</b>. A host is compliant for the period when every day is, non-compliant when any day is, else not assessed.
The compliant share counts assessed hosts only; with none it reads "no data".</p>
<h2>Rule catalogue</h2>
${table(['rule', 'severity', 'what it means', 'why it matters', 'opens and closes'], d.rules.map((r) => [r.id, r.severity, r.title, r.guards, r.lifecycle]), 'rules')}
<h2>How to verify this report's evidence</h2>
<p>Every event above is a leaf of the store's Merkle tree (RFC 9162), whose roots are signed as checkpoints (C2SP signed notes).
For each evidence event this report fetched the inclusion proof (<code>GET /v1/log/proofs/inclusion?position=P&amp;size=N</code>),
recomputed the leaf hash from the event as stored and checked the proof against the root of the checkpoint below.</p>
<ol><li>Keep the checkpoint below; check its signature with the store's public key (<code>iommutrail-signing.pub</code>) or a witness's cosignature.</li>
<li>Check the whole store: <code>iommutrail verify --db events.sqlite --checkpoint checkpoint.txt</code> (names any event modified, removed or reordered).</li>
<li>Or take an evidence bundle (<code>iommutrail export</code>) and check it offline: <code>iommutrail verify --bundle DIR</code>.</li></ol>
${d.checkpoint ? `<p>Signed checkpoint (origin ${esc(d.checkpoint.origin)}, ${d.checkpoint.size} events):</p><pre id="checkpoint">${esc(d.checkpoint.note)}</pre>
<p id="signature">${signatureText(d.checkpoint.signature, d.checkpoint.origin)}</p>` : '<p class="warning">The store has no signed checkpoint yet (or keeps no transparency log): the evidence could not be proved included.</p>'}
</body></html>`;
};
