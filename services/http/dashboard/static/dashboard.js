/* global document, window, localStorage, fetch, URL, URLSearchParams, Blob, Chart */
// the compliance dashboard: every view is a function of the URL's query string, so any view is a shareable link
'use strict';

const FILTERS = ['host', 'rule', 'severity', 'from', 'to'];
const DRILL = ['subject', 'group', 'violation'];
const charts = {};
const $ = (sel) => document.querySelector(sel);

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

const api = async (path, init = {}) => {
  const token = localStorage.getItem('iommutrail.token');
  const headers = { ...(init.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401 || res.status === 403) {
    $('#auth').hidden = false;
    throw new Error(res.status === 401 ? 'an API token is needed (read role)' : 'this token lacks the needed role');
  }
  if (!res.ok) {
    let detail = res.statusText;
    try {
      const body = await res.json();
      detail = body.detail || body.title || detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new Error(`${path.split('?')[0]}: ${detail}`);
  }
  return res;
};
const getJson = async (path) => (await api(path)).json();
const table = (name, extra) => getJson(`/v1/analytics/tables/${name}?${filterQuery(extra)}`).then((b) => b.rows);

const HIDDEN_COLUMNS = new Set(['data', 'detail', 'opened_ns', 'closed_ns', 'time_ns', 'changed_ns']);
const cell = (v) => (v === null || v === undefined ? '' : Array.isArray(v) ? v.join(', ') : String(v));

/** renders rows into a [data-table] box with a CSV export button; `onRow` makes rows clickable */
const renderTable = (name, rows, extra, onRow, isSelected) => {
  const box = document.querySelector(`[data-table="${name}"]`);
  box.textContent = '';
  const tools = document.createElement('div');
  tools.className = 'tools';
  const count = document.createElement('span');
  count.textContent = `${rows.length} row${rows.length === 1 ? '' : 's'}`;
  count.dataset.count = String(rows.length);
  const csv = document.createElement('button');
  csv.type = 'button';
  csv.textContent = 'CSV';
  csv.dataset.csv = name;
  csv.addEventListener('click', () => downloadCsv(name, extra).catch((e) => status(e.message, true)));
  tools.append(count, csv);
  box.append(tools);
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]).filter((c) => !HIDDEN_COLUMNS.has(c));
  const t = document.createElement('table');
  const head = t.createTHead().insertRow();
  for (const c of columns) {
    const th = document.createElement('th');
    th.textContent = c;
    head.append(th);
  }
  const body = t.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    for (const c of columns) {
      const td = tr.insertCell();
      td.textContent = cell(r[c]);
      if (c === 'severity') td.className = `sev-${r[c]}`;
    }
    if (onRow) {
      tr.className = 'clickable';
      tr.addEventListener('click', () => onRow(r));
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

const renderSummary = (s) => {
  $('#hostsTracked').textContent = String(s.hostsTracked);
  $('#groupsTracked').textContent = String(s.groupsTracked);
  $('#compliantShare').textContent = `${(s.compliantShare * 100).toFixed(1)}%`;
  $('#openViolations').textContent = String(s.openViolations);
  drawChart('chart-rules', {
    type: 'bar',
    data: {
      labels: s.openByRuleAndSeverity.map((r) => `${r.rule} (${r.severity})`),
      datasets: [{ label: 'open', data: s.openByRuleAndSeverity.map((r) => r.open), backgroundColor: s.openByRuleAndSeverity.map((r) => (r.severity === 'critical' ? '#d92d20' : r.severity === 'warning' ? '#f79009' : '#5a6375')) }],
    },
    options: { indexAxis: 'y', plugins: { legend: { display: false } } },
  });
};

const renderTrends = (rows) => {
  const labels = rows.map((r) => r.day);
  drawChart('chart-trends', {
    type: 'bar',
    data: { labels, datasets: [{ label: 'opened', data: rows.map((r) => Number(r.opened)), backgroundColor: '#d92d20' }, { label: 'closed', data: rows.map((r) => Number(r.closed)), backgroundColor: '#12b76a' }] },
  });
  drawChart('chart-ttc', {
    type: 'line',
    data: { labels, datasets: [{ label: 'median', data: rows.map((r) => r.median_close_s) }, { label: 'p90', data: rows.map((r) => r.p90_close_s) }] },
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
  $('#sliderTime').textContent = new Date(Number(at / 1000000n)).toISOString();
  out.textContent = `state ${row.state} · owner ${row.owner || '—'} · domain ${row.domain} · owner_cnt ${row.owner_cnt} · devices ${cell(row.devices)} (since ${row.time_utc}, ${row.event_type})`;
  out.dataset.state = row.state;
};

const loadDrill = async () => {
  const p = params();
  const subject = p.get('subject');
  const group = p.get('group');
  const violation = p.get('violation');
  $('#hostPanel').hidden = !subject;
  $('#groupPanel').hidden = !(subject && group);
  $('#violationPanel').hidden = !violation;
  if (subject) {
    $('#drillHost').textContent = subject;
    const groups = await table('host-groups', { subject });
    renderTable('host-groups', groups, { subject }, (r) => { setParams({ group: r.group_id }); loadDrill().catch((e) => status(e.message, true)); }, (r) => String(r.group_id) === group);
  }
  if (subject && group) {
    $('#drillGroup').textContent = `${subject}/${group}`;
    timeline = await getJson(`/v1/analytics/tables/group-timeline?${new URLSearchParams({ subject, group, limit: '10000' })}`).then((b) => b.rows);
    renderTable('group-timeline', timeline, { subject, group });
    renderStateAt();
  }
  if (violation) {
    $('#drillViolation').textContent = violation;
    renderTable('violation-events', await table('violation-events', { violation }), { violation });
  }
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

const load = async () => {
  const p = params();
  void loadSinkStatus();
  const form = $('#filters');
  for (const k of FILTERS) form.elements[k].value = p.get(k) || '';
  $('#shareLink').href = window.location.href;
  status('loading…');
  try {
    const [summary, byRule, trends, compliance, hosts, violations] = await Promise.all([
      getJson(`/v1/analytics/summary?${filterQuery()}`),
      table('open-by-rule'),
      table('trends'),
      table('compliance'),
      table('hosts'),
      table('violations', { limit: 500 }),
    ]);
    renderSummary(summary);
    renderTable('open-by-rule', byRule, {}, (r) => { setParams({ rule: r.rule, severity: r.severity }); load(); });
    renderTable('trends', trends);
    renderTrends(trends);
    renderTable('compliance', compliance);
    renderTable('hosts', hosts, {}, (r) => { setParams({ subject: r.host, group: undefined }); loadDrill().catch((e) => status(e.message, true)); }, (r) => r.host === p.get('subject'));
    renderTable('violations', violations, { limit: 500 }, (r) => { setParams({ violation: r.violation_key }); loadDrill().catch((e) => status(e.message, true)); }, (r) => r.violation_key === p.get('violation'));
    await loadDrill();
    status(summary.asOfNs ? `as of ${new Date(Number(BigInt(summary.asOfNs) / 1000000n)).toISOString()}` : 'latest');
    $('#status').dataset.loaded = String(Date.now());
  } catch (e) {
    status(e.message, true);
  }
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

const init = () => {
  $('#filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const changes = {};
    for (const k of FILTERS) changes[k] = form.elements[k].value.trim();
    setParams(changes);
    load();
  });
  $('#clearFilters').addEventListener('click', () => {
    setParams(Object.fromEntries([...FILTERS, ...DRILL].map((k) => [k, undefined])));
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
    status('loading the demo fleet…');
    try {
      const r = await (await api('/v1/admin/demo-fleet', { method: 'POST' })).json();
      status(`demo fleet: ${r.appended ?? 0} events appended; the analytics catch up in the background`);
      // the sink follows the store asynchronously: refresh a few times
      for (const ms of [1000, 3000, 6000, 12000]) window.setTimeout(() => { loadFacets(); load(); }, ms);
    } catch (e) {
      status(e.message, true);
    }
  });
  window.addEventListener('popstate', load);
  loadFacets();
  load();
};

init();
