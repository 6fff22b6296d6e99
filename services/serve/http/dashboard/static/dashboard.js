/* global document, window, localStorage, fetch, URL, URLSearchParams, Blob, Chart */
// the compliance dashboard: every view is a function of the URL's query string, so any view is a shareable link.
// Each panel loads on its own: one that fails says so in place (its old figures are cleared), the others show.
'use strict';

const FILTERS = ['host', 'rule', 'severity', 'from', 'to', 'staleAfter'];
const DRILL = ['subject', 'group', 'violation', 'at'];
const charts = {};
const offsets = {};
const $ = (sel) => document.querySelector(sel);
// rows per page of the long tables (`pageSize` in the URL; 500 by default)
const pageSize = () => Math.min(10000, Math.max(1, Number(new URLSearchParams(window.location.search).get('pageSize')) || 500));

// the one time format (services/serve/http/params.ts formatTimeNs, which the API's times already have): ISO-8601 UTC
// with the Z, fractional digits only as needed. Only times the page computes itself (the slider) go through here
const formatTimeNs = (ns) => {
  const iso = new Date(Number(ns / 1000000n)).toISOString().slice(0, 19);
  const frac = (ns % 1000000000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${iso}${frac ? `.${frac}` : ''}Z`;
};

const params = () => new URLSearchParams(window.location.search);
const setParams = (changes, push = true) => {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === '') p.delete(k);
    else p.set(k, String(v));
  }
  const url = `${window.location.pathname}${p.toString() ? `?${p}` : ''}`;
  if (push) window.history.pushState(null, '', url);
  else window.history.replaceState(null, '', url);
};
const filterQuery = (extra = {}) => {
  const p = new URLSearchParams();
  const current = params();
  for (const k of FILTERS) if (current.get(k)) p.set(k, current.get(k));
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  return p;
};

const status = (text, isError = false) => {
  const el = $('#status');
  el.textContent = text;
  el.className = isError ? 'error' : '';
};

// `role`: the role the call needs, named when the service refuses it
const api = async (path, init = {}, role = 'read') => {
  const token = localStorage.getItem('iommutrail.token');
  const headers = { ...(init.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401 || res.status === 403) {
    $('#auth').hidden = false;
    throw new Error(res.status === 401 ? `an API token with the ${role} role is needed: paste one above (iommutrail token create --role ${role})` : `this token lacks the ${role} role (iommutrail token create --role ${role})`);
  }
  if (!res.ok) {
    let detail = res.statusText;
    try {
      const body = await res.json();
      detail = body.detail || body.title || detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new Error(`${path.split('?')[0]}: ${res.status} ${detail}`);
  }
  return res;
};
const getJson = async (path) => (await api(path)).json();
const tablePage = (name, extra) => getJson(`/v1/analytics/tables/${name}?${filterQuery(extra)}`);

// raw twins of the human columns, and bulky JSON: kept in the API and the CSV, not on screen
const HIDDEN_COLUMNS = new Set(['data', 'detail', 'opened_ns', 'closed_ns', 'time_ns', 'changed_ns', 'duration_ns', 'violation_key', 'median_close_s', 'p90_close_s', 'median_close_ns', 'p90_close_ns', 'compliant_share']);
const cell = (v) => (v === null || v === undefined ? '' : Array.isArray(v) ? v.join(', ') : String(v));

/** a panel that failed: its figures are cleared and it says why, the rest of the page is unaffected */
const panelError = (name, error) => {
  const box = document.querySelector(`[data-table="${name}"]`);
  if (!box) return;
  box.textContent = '';
  const p = document.createElement('p');
  p.className = 'panel-error';
  p.setAttribute('role', 'alert');
  p.textContent = `Could not load this panel: ${error.message}. Its figures are not shown rather than out of date.`;
  box.dataset.state = 'failed';
  box.append(p);
};
const panelLoading = (name) => {
  const box = document.querySelector(`[data-table="${name}"]`);
  if (!box) return;
  box.dataset.state = 'loading';
  box.classList.add('loading');
};

/** renders one page of rows into a [data-table] box with paging ("500 of 620"), CSV export; `onRow` makes rows clickable */
const renderTable = (name, page, extra, onRow, isSelected) => {
  const rows = page.rows;
  const box = document.querySelector(`[data-table="${name}"]`);
  box.textContent = '';
  box.classList.remove('loading');
  box.dataset.state = 'loaded';
  const tools = document.createElement('div');
  tools.className = 'tools';
  const count = document.createElement('span');
  const total = page.total ?? rows.length;
  const offset = page.offset ?? 0;
  count.textContent = total === 0 ? 'no data' : rows.length === total ? `${total} row${total === 1 ? '' : 's'}` : `${offset + 1}–${offset + rows.length} of ${total}`;
  count.dataset.count = String(rows.length);
  count.dataset.total = String(total);
  tools.append(count);
  if (total > rows.length) {
    const prev = document.createElement('button');
    prev.type = 'button';
    prev.textContent = '‹ previous';
    prev.dataset.page = 'prev';
    prev.disabled = offset === 0;
    prev.addEventListener('click', () => { offsets[name] = Math.max(0, offset - pageSize()); reloadPanel(name); });
    const next = document.createElement('button');
    next.type = 'button';
    next.textContent = 'next ›';
    next.dataset.page = 'next';
    next.disabled = offset + rows.length >= total;
    next.addEventListener('click', () => { offsets[name] = offset + pageSize(); reloadPanel(name); });
    tools.append(prev, next);
  }
  const csv = document.createElement('button');
  csv.type = 'button';
  csv.textContent = `CSV (all ${total})`;
  csv.dataset.csv = name;
  csv.addEventListener('click', () => downloadCsv(name, extra).catch((e) => status(e.message, true)));
  tools.append(csv);
  box.append(tools);
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]).filter((c) => !HIDDEN_COLUMNS.has(c));
  const t = document.createElement('table');
  const head = t.createTHead().insertRow();
  for (const c of columns) {
    const th = document.createElement('th');
    th.textContent = c.replaceAll('_', ' ');
    head.append(th);
  }
  const body = t.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    for (const c of columns) {
      const td = tr.insertCell();
      td.textContent = cell(r[c]);
      if (c === 'severity') td.className = `sev-${r[c]}`;
      if (c === 'status') td.className = `st-${r[c]}`;
      if (c === 'role') td.className = `role-${r[c]}`;
    }
    if (onRow) {
      // keyboard-reachable: Tab to a row, Enter or Space opens it
      tr.className = 'clickable';
      tr.tabIndex = 0;
      tr.addEventListener('click', () => onRow(r));
      tr.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          onRow(r);
        }
      });
    }
    if (isSelected && isSelected(r)) tr.classList.add('selected');
  }
  box.append(t);
};

const downloadCsv = async (name, extra) => {
  const q = filterQuery(extra);
  q.set('format', 'csv');
  const blob = await (await api(`/v1/analytics/tables/${name}?${q}`)).blob();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([blob], { type: 'text/csv' }));
  a.download = `${name}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
};

const drawChart = (id, config) => {
  if (typeof Chart === 'undefined') return;
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(document.getElementById(id), { ...config, options: { animation: false, responsive: true, ...(config.options || {}) } });
};
const clearChart = (id) => {
  if (charts[id]) charts[id].destroy();
  delete charts[id];
};

const REASONS = { 'no-iommu': 'no IOMMU', 'no-data': 'no data', uncertain: 'uncertain state', stale: 'stale collector' };

const renderSummary = (s) => {
  $('#hostsTracked').textContent = String(s.hostsTracked);
  $('#groupsTracked').textContent = String(s.groupsTracked);
  $('#compliantShare').textContent = s.compliantShareText;
  const c = s.compliance;
  const reasons = Object.entries(c.notAssessedByReason).filter(([, n]) => n > 0).map(([r, n]) => `${n} ${REASONS[r] || r}`);
  $('#complianceDetail').textContent = c.noData
    ? 'no data in this scope'
    : `${c.compliant} compliant · ${c.nonCompliant} non-compliant · ${c.notAssessed} not assessed${reasons.length ? ` (${reasons.join(', ')})` : ''}`;
  $('#period').textContent = `period ${c.from} → ${c.to} (UTC); a collector silent for ${c.staleAfter} is stale`;
  $('#openViolations').textContent = String(s.openViolations);
  const t = s.timeToClose;
  const closing = t && t.closed > 0 ? `; ${t.closed} closed in the period, time to close p50 ${t.p50}, p90 ${t.p90}, max ${t.max}` : '';
  $('#openDetail').textContent = `on ${s.hostsWithOpenViolations} host${s.hostsWithOpenViolations === 1 ? '' : 's'}, as of ${c.to}${closing}`;
  const w = $('#warnings');
  w.textContent = s.warnings.join(' · ');
  w.hidden = s.warnings.length === 0;
  drawChart('chart-rules', {
    type: 'bar',
    data: {
      labels: s.openByRuleAndSeverity.map((r) => `${r.rule} (${r.severity})`),
      datasets: [{ label: 'open', data: s.openByRuleAndSeverity.map((r) => r.open), backgroundColor: s.openByRuleAndSeverity.map((r) => (r.severity === 'critical' ? '#d92d20' : r.severity === 'warning' ? '#f79009' : '#5a6375')) }],
    },
    options: { indexAxis: 'y', plugins: { legend: { display: false } } },
  });
};
const clearSummary = (error) => {
  for (const id of ['#hostsTracked', '#groupsTracked', '#compliantShare', '#openViolations']) $(id).textContent = '–';
  $('#complianceDetail').textContent = '';
  $('#openDetail').textContent = '';
  $('#period').textContent = `summary failed: ${error.message}`;
  $('#summary').dataset.state = 'failed';
  clearChart('chart-rules');
};

const renderTrends = (rows) => {
  const labels = rows.map((r) => r.day);
  drawChart('chart-trends', {
    type: 'bar',
    data: { labels, datasets: [{ label: 'opened', data: rows.map((r) => Number(r.opened)), backgroundColor: '#d92d20' }, { label: 'closed', data: rows.map((r) => Number(r.closed)), backgroundColor: '#12b76a' }] },
  });
  drawChart('chart-ttc', {
    type: 'line',
    data: { labels, datasets: [{ label: 'median (s)', data: rows.map((r) => r.median_close_s) }, { label: 'p90 (s)', data: rows.map((r) => r.p90_close_s) }] },
  });
};

// the group timeline's slider: the state as of any moment between the first and last change
let timeline = [];
const renderStateAt = () => {
  const out = $('#groupStateAt');
  if (timeline.length === 0) {
    out.textContent = 'no recorded state';
    return;
  }
  const first = BigInt(timeline[0].time_ns);
  const last = BigInt(timeline[timeline.length - 1].time_ns);
  const v = BigInt($('#timeSlider').value);
  const at = first + ((last - first) * v) / 1000n;
  let row = timeline[0];
  for (const r of timeline) if (BigInt(r.time_ns) <= at) row = r;
  $('#sliderTime').textContent = formatTimeNs(at);
  out.textContent = `state ${row.state} · owner ${row.owner || '—'} · domain ${row.domain} · owner_cnt ${row.owner_cnt} · devices ${cell(row.devices)} (since ${row.time_utc}, ${row.event_type})`;
  out.dataset.state = row.state;
};
// a link to the group "at" a moment puts the slider there
const sliderAt = (atNs) => {
  if (timeline.length === 0 || !atNs) return;
  const first = BigInt(timeline[0].time_ns);
  const last = BigInt(timeline[timeline.length - 1].time_ns);
  const at = BigInt(atNs);
  $('#timeSlider').value = last === first ? '1000' : String(at <= first ? 0n : at >= last ? 1000n : ((at - first) * 1000n) / (last - first));
};

const focusPanel = (el) => {
  el.scrollIntoView({ block: 'start' });
  el.classList.add('highlight');
  window.setTimeout(() => el.classList.remove('highlight'), 2500);
  el.focus({ preventScroll: true });
};

const renderStory = (s) => {
  const v = s.violation;
  $('#drillViolation').textContent = v.violation;
  const facts = $('#storyFacts');
  facts.textContent = '';
  const add = (label, value) => {
    if (value === undefined || value === null || value === '') return;
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.textContent = value;
    facts.append(dt, dd);
  };
  add('rule', `${v.rule} (${v.severity})${s.rule ? `: ${s.rule.title}` : ''}`);
  add('why it matters', s.rule?.guards);
  add('opens and closes', s.rule?.lifecycle);
  add('where', `host ${v.host}${v.group_id === null ? '' : `, group ${v.group_id}`}${v.device ? `, device ${v.device}` : ''}`);
  add('opened', v.opened_utc);
  add('closed', v.closed_utc ? `${v.closed_utc}, after ${v.duration}` : 'still open');
  const process = (a) => (a.comm || a.pid !== null ? `process ${a.comm ?? '?'}${a.pid !== null ? ` (pid ${a.pid})` : ''}` : '');
  add('actors', s.actors.map((a) => [process(a), a.vm && `VM ${a.vm}`, a.tenant && `tenant ${a.tenant}`].filter(Boolean).join(', ')).join(' · ') || 'none recorded');
  add('message', v.message);
  const link = $('#storyGroupLink');
  link.hidden = !s.groupTimelineLink;
  if (s.groupTimelineLink) link.href = s.groupTimelineLink;
  renderTable('violation-events', { rows: s.events, total: s.events.length, offset: 0 }, { violation: v.violation_key });
};

const loadDrill = async ({ focus } = {}) => {
  const p = params();
  const subject = p.get('subject');
  const group = p.get('group');
  const violation = p.get('violation');
  $('#hostPanel').hidden = !subject;
  $('#groupPanel').hidden = !(subject && group);
  $('#violationPanel').hidden = !violation;
  const jobs = [];
  if (subject) {
    $('#drillHost').textContent = subject;
    jobs.push(tablePage('host-groups', { subject }).then(
      (page) => renderTable('host-groups', page, { subject }, (r) => { setParams({ group: r.group_id, at: undefined }); loadDrill({ focus: 'group' }); }, (r) => String(r.group_id) === group),
      (e) => panelError('host-groups', e),
    ));
  }
  if (subject && group) {
    $('#drillGroup').textContent = `${subject}/${group}`;
    jobs.push(getJson(`/v1/analytics/tables/group-timeline?${new URLSearchParams({ subject, group, limit: '10000' })}`).then(
      (page) => {
        timeline = page.rows;
        renderTable('group-timeline', page, { subject, group });
        sliderAt(p.get('at'));
        renderStateAt();
        if (focus === 'group') focusPanel($('#groupPanel'));
      },
      (e) => panelError('group-timeline', e),
    ));
  }
  if (violation) {
    jobs.push(getJson(`/v1/analytics/violations/${encodeURIComponent(violation)}/story`).then(
      (s) => {
        renderStory(s);
        if (focus === 'violation') focusPanel($('#violationPanel'));
      },
      (e) => panelError('violation-events', e),
    ));
  }
  await Promise.all(jobs);
};

// the sink's own state: a banner when it cannot write (the numbers below are then behind) or set rows aside
const loadSinkStatus = async () => {
  const banner = $('#sinkBanner');
  let s;
  try {
    s = await getJson('/v1/analytics/status');
  } catch {
    banner.hidden = true;
    return;
  }
  const parts = [];
  if (!s.writing) {
    parts.push(`The analytics sink is not writing (${s.state}, ${s.consecutiveFailures} failed attempts since ${s.failingSince}): ${s.lastError}. Figures stop at position ${s.position}; it retries by itself${s.nextAttemptAt ? `, next at ${s.nextAttemptAt}` : ''}.`);
  }
  if (s.quarantinedRows > 0) parts.push(`${s.quarantinedRows} row(s) could not be written and are in sink_quarantine: ${s.lastQuarantineReason}`);
  banner.textContent = parts.join(' ');
  banner.className = s.writing ? 'warning' : '';
  banner.dataset.state = s.state;
  banner.hidden = parts.length === 0;
};

const openOnly = () => params().get('open') === '1';

// each panel: its loader and renderer; a failure stays in its panel
const PANELS = {
  'open-by-rule': () => tablePage('open-by-rule').then((page) => renderTable('open-by-rule', page, {}, (r) => { setParams({ rule: r.rule, severity: r.severity }); load(); })),
  trends: () => tablePage('trends').then((page) => { renderTable('trends', page); renderTrends(page.rows); }, (e) => { clearChart('chart-trends'); clearChart('chart-ttc'); throw e; }),
  compliance: () => tablePage('compliance').then((page) => renderTable('compliance', page)),
  'host-compliance': () => tablePage('host-compliance', { limit: pageSize(), offset: offsets['host-compliance'] || 0 }).then((page) => renderTable('host-compliance', page, {}, (r) => { setParams({ subject: r.host, group: undefined }); loadDrill(); })),
  hosts: () => tablePage('hosts', { limit: pageSize(), offset: offsets.hosts || 0 }).then((page) =>
    renderTable('hosts', page, {}, (r) => { setParams({ subject: r.host, group: undefined }); loadDrill(); }, (r) => r.host === params().get('subject'))),
  violations: () => {
    const extra = { limit: pageSize(), offset: offsets.violations || 0, ...(openOnly() ? { open: '1' } : {}) };
    return tablePage('violations', extra).then((page) =>
      renderTable('violations', page, openOnly() ? { open: '1' } : {}, (r) => { setParams({ violation: r.violation_key }); loadDrill({ focus: 'violation' }); }, (r) => r.violation_key === params().get('violation')));
  },
};
const reloadPanel = (name) => {
  panelLoading(name);
  return PANELS[name]().catch((e) => panelError(name, e));
};

let loading = 0;
let inFlight = false;
const load = async () => {
  const mine = ++loading;
  inFlight = true;
  const p = params();
  void loadSinkStatus();
  const form = $('#filters');
  for (const k of FILTERS) if (form.elements[k]) form.elements[k].value = p.get(k) || '';
  form.elements.open.checked = openOnly();
  $('#asOf').value = [...$('#asOf').options].some((o) => o.value === (p.get('from') || '')) && !p.get('to') ? p.get('from') || '' : 'custom';
  $('#shareLink').href = window.location.href;
  status('loading…');
  $('#summary').dataset.state = 'loading';
  const summary = getJson(`/v1/analytics/summary?${filterQuery()}`).then(
    (s) => { renderSummary(s); $('#summary').dataset.state = 'loaded'; return s; },
    (e) => { clearSummary(e); throw e; },
  );
  const panels = Object.keys(PANELS).map((name) => reloadPanel(name));
  const failures = [];
  await Promise.all([summary.catch((e) => failures.push(e.message)), ...panels, loadDrill().catch((e) => failures.push(e.message))]);
  if (mine !== loading) return;
  inFlight = false;
  const failed = document.querySelectorAll('[data-state="failed"]').length;
  if (failures.length > 0 || failed > 0) {
    status(`${failed || failures.length} panel(s) could not load${failures[0] ? `: ${failures[0]}` : ''}; the others are current`, true);
  } else {
    const s = await summary;
    status(`as of ${s.compliance.to} · loaded ${formatTimeNs(BigInt(Date.now()) * 1000000n)}`);
  }
  $('#status').dataset.loaded = String(Date.now());
};

const loadFacets = async () => {
  try {
    const f = await getJson('/v1/analytics/facets');
    const fill = (id, values) => {
      const list = document.getElementById(id);
      list.textContent = '';
      for (const v of values) {
        const o = document.createElement('option');
        o.value = v;
        list.append(o);
      }
    };
    fill('hostList', f.hosts);
    fill('ruleList', f.rules);
  } catch {
    // pickers are a convenience: the filters still work typed by hand
  }
};

let refreshTimer;
const scheduleRefresh = () => {
  window.clearInterval(refreshTimer);
  const seconds = Number(params().get('refresh') || 0);
  $('#autoRefresh').value = String(seconds || '');
  // a tick while a load is still running is skipped, so a slow service is never asked twice at once
  if (seconds > 0) refreshTimer = window.setInterval(() => { if (!inFlight) { loadFacets(); load(); } }, seconds * 1000);
};

const init = () => {
  $('#filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const changes = {};
    for (const k of FILTERS) if (form.elements[k]) changes[k] = form.elements[k].value.trim();
    changes.open = form.elements.open.checked ? '1' : undefined;
    for (const k of Object.keys(offsets)) delete offsets[k];
    setParams(changes);
    load();
  });
  $('#asOf').addEventListener('change', (ev) => {
    const v = ev.target.value;
    if (v === 'custom') return;
    setParams({ from: v, to: undefined });
    load();
  });
  $('#autoRefresh').addEventListener('change', (ev) => {
    setParams({ refresh: ev.target.value || undefined }, false);
    scheduleRefresh();
  });
  $('#clearFilters').addEventListener('click', () => {
    setParams(Object.fromEntries([...FILTERS, ...DRILL, 'open'].map((k) => [k, undefined])));
    load();
  });
  $('#saveToken').addEventListener('click', () => {
    localStorage.setItem('iommutrail.token', $('#token').value.trim());
    $('#auth').hidden = true;
    loadFacets();
    load();
  });
  $('#timeSlider').addEventListener('input', renderStateAt);
  $('#loadDemo').addEventListener('click', async () => {
    // its own message line: the page's loads do not overwrite what happened to the button
    const out = $('#demoStatus');
    out.className = '';
    out.textContent = 'loading the demo fleet…';
    try {
      const r = await (await api('/v1/admin/demo-fleet', { method: 'POST' }, 'admin')).json();
      out.textContent = `demo fleet: ${r.appended ?? 0} events appended; the analytics catch up in the background`;
      status(out.textContent);
      // the sink follows the store asynchronously: refresh a few times
      for (const ms of [1000, 3000, 6000, 12000]) window.setTimeout(() => { loadFacets(); load(); }, ms);
    } catch (e) {
      out.className = 'error';
      out.textContent = `Load demo fleet failed: ${e.message}`;
    }
  });
  window.addEventListener('popstate', load);
  loadFacets();
  scheduleRefresh();
  load();
};

init();
