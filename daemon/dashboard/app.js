// jobd console: the dashboard's only script. No framework, no network
// beyond this jobd: it reads /api/v1 and follows /api/v1/events. Every value
// from the server reaches the page as text (textContent), never as HTML.
'use strict';

const S = {
  token: sessionStorage.getItem('jobd.token') || '',
  route: null,       // {view, queue, id, state, offset, q}
  queues: [],        // the last /api/v1/queues answer
  workers: [],
  info: null,
  es: null,          // the EventSource
  esUrl: '',
  listKey: '',       // what the current queue list shows, to refresh it on change
  job: null,         // the job page's last full answer
};

// ---- small helpers ----

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

// Replaces el's children (arrays flattened; null, undefined and false skipped).
function put(el, ...kids) {
  el.replaceChildren(...kids.flat(2).filter((k) => k !== null && k !== undefined && k !== false));
}
const enc = encodeURIComponent;

function age(s) {
  if (s === null || s === undefined) return '-';
  if (s < 1) return Math.round(s * 1000) + 'ms';
  if (s < 60) return Math.round(s) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(Math.round(s % 60)).padStart(2, '0') + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm';
  return Math.floor(s / 86400) + 'd' + Math.floor(s % 86400 / 3600) + 'h';
}

function since(iso) {
  if (!iso) return '-';
  const t = Date.parse(iso);
  return isNaN(t) ? iso : age((Date.now() - t) / 1000) + ' ago';
}

function rate(x) {
  if (x === null || x === undefined) return '-';
  return x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2);
}

function pct(x) {
  return x === null || x === undefined ? '-' : (x * 100).toFixed(x < 0.1 ? 1 : 0) + '%';
}

function flash(msg, error) {
  const f = $('flash');
  f.textContent = msg;
  f.className = 'flash' + (error ? ' error' : '');
  f.hidden = !msg;
  clearTimeout(flash.t);
  if (msg && !error) flash.t = setTimeout(() => { f.hidden = true; }, 4000);
}

async function api(path, opts) {
  opts = opts || {};
  const headers = {Accept: 'application/json'};
  if (opts.method && opts.method !== 'GET') {
    if (S.token) headers.Authorization = 'Bearer ' + S.token;
    if (opts.body) headers['Content-Type'] = 'application/json';
  }
  const r = await fetch('/api/v1' + path, {method: opts.method || 'GET', headers, body: opts.body,
                                            credentials: 'omit', cache: 'no-store'});
  let v = null;
  try { v = await r.json(); } catch (e) { v = {error: r.statusText}; }
  if (!r.ok) {
    const err = new Error((v && v.error) || r.statusText);
    err.status = r.status;
    throw err;
  }
  return v;
}

// A write action: confirmed, sent with the token, the outcome flashed.
async function act(label, path, body, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return null;
  try {
    const v = await api(path, {method: 'POST', body: body ? JSON.stringify(body) : undefined});
    flash(label + ': done');
    return v;
  } catch (e) {
    let hint = '';
    if (e.status === 401) hint = ' Set the admin token (top right).';
    if (e.status === 403) hint = ' This jobd is read-only.';
    flash(label + ' failed (' + (e.status || 'network') + '): ' + e.message + hint, true);
    if (e.status === 401) $('token-panel').hidden = false;
    return null;
  }
}

// ---- drawings ----

function spark(values, cls, max) {
  const w = 120, hgt = 26;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', w);
  svg.setAttribute('height', hgt);
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('aria-hidden', 'true');
  const n = values.length;
  for (const [vals, c] of cls) {
    if (!vals.length) continue;
    const pts = vals.map((v, i) => {
      const x = n > 1 ? (i * (w - 2)) / (n - 1) + 1 : w / 2;
      const y = hgt - 2 - (max > 0 ? (v / max) * (hgt - 4) : 0);
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    const pl = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    pl.setAttribute('class', c);
    pl.setAttribute('points', pts.join(' '));
    svg.append(pl);
  }
  return svg;
}

function sparkFor(q) {
  const s = q.series || {succeeded: [], failed: []};
  const max = Math.max(0.001, ...s.succeeded, ...s.failed);
  const svg = spark(s.succeeded, [[s.succeeded, 'ok'], [s.failed, 'bad']], max);
  svg.append(Object.assign(document.createElementNS('http://www.w3.org/2000/svg', 'title'),
    {textContent: 'succeeded (green) and failed (red) per second, last minutes'}));
  return svg;
}

function bar(p, state, id, big) {
  const inner = h('div');
  const cls = 'bar' + (big ? ' big' : '') + (state === 'succeeded' ? ' done' : '') +
      (state === 'dead' || state === 'canceled' ? ' failed' : '');
  const el = h('div', {class: cls, id, role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100},
    inner);
  setBar(el, p);
  return el;
}

function setBar(el, p) {
  const v = Math.max(0, Math.min(1, Number(p) || 0));
  el.firstChild.style.width = (v * 100).toFixed(1) + '%';
  el.setAttribute('aria-valuenow', (v * 100).toFixed(1));
  el.dataset.progress = String(v);
  el.title = (v * 100).toFixed(0) + '%';
}

function badge(state, id) {
  return h('span', {class: 'badge ' + (state || ''), id}, state || 'gone');
}

// ---- the event stream ----

function wantStream() {
  const r = S.route;
  if (r && r.view === 'job') return `/api/v1/events?queue=${enc(r.queue)}&job=${enc(r.id)}`;
  return '/api/v1/events';
}

function connect() {
  const url = wantStream();
  if (S.es && S.esUrl === url) return;
  if (S.es) S.es.close();
  S.esUrl = url;
  S.es = new EventSource(url);
  S.es.onopen = () => { $('live').textContent = 'live'; $('live').className = 'live on'; };
  S.es.onerror = () => { $('live').textContent = 'reconnecting'; $('live').className = 'live off'; };
  S.es.addEventListener('queues', (e) => {
    S.queues = JSON.parse(e.data);
    onQueues();
  });
  S.es.addEventListener('workers', (e) => {
    S.workers = JSON.parse(e.data);
    if (S.route.view === 'workers') renderWorkers();
  });
  S.es.addEventListener('job', (e) => onJobEvent(JSON.parse(e.data)));
}

function onQueues() {
  const r = S.route;
  if (r.view === 'overview') renderOverview();
  else if (r.view === 'queue') {
    updateQueueHead();
    const q = S.queues.find((x) => x.name === r.queue);
    // The list shows what changed: fetch it again when the counts move.
    const key = q ? JSON.stringify(q.counts) + q.paused : '';
    if (key !== S.listKey) { S.listKey = key; loadJobs(); }
  }
}

// ---- routes ----

function parseRoute() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const qs = new URLSearchParams(query || '');
  if (parts[0] === 'queues' && parts[1] && parts[2] === 'jobs' && parts[3])
    return {view: 'job', queue: parts[1], id: parts[3]};
  if (parts[0] === 'queues' && parts[1])
    return {view: 'queue', queue: parts[1], state: qs.get('state') || 'queued',
            offset: Number(qs.get('offset') || 0), q: qs.get('q') || ''};
  if (parts[0] === 'workers') return {view: 'workers'};
  if (parts[0] === 'jobs' && parts[1]) return {view: 'find', id: parts[1]};
  return {view: 'overview'};
}

async function route() {
  S.route = parseRoute();
  S.listKey = '';
  S.job = null;
  $('nav-queues').className = S.route.view === 'workers' ? '' : 'here';
  $('nav-workers').className = S.route.view === 'workers' ? 'here' : '';
  connect();
  const main = $('main');
  put(main, h('p', {class: 'muted'}, 'Loading…'));
  try {
    if (S.route.view === 'overview') {
      S.queues = (await api('/queues')).queues;
      renderOverview();
    } else if (S.route.view === 'queue') {
      S.queues = (await api('/queues')).queues;
      renderQueue();
    } else if (S.route.view === 'job') {
      S.job = await api(`/queues/${enc(S.route.queue)}/jobs/${enc(S.route.id)}`);
      renderJob();
    } else if (S.route.view === 'workers') {
      S.workers = (await api('/workers')).workers;
      renderWorkers();
    } else if (S.route.view === 'find') {
      const j = await api(`/jobs/${enc(S.route.id)}`);
      location.replace(`#/queues/${enc(j.queue)}/jobs/${enc(j.id)}`);
    }
  } catch (e) {
    put(main, h('div', {class: 'card'}, `Could not load this page: ${e.message}`,
      e.status === 404 ? ' (no such job or queue)' : ''));
  }
}

// ---- overview ----

function renderOverview() {
  const rows = S.queues.map((q) => h('tr', {'data-queue': q.name},
    h('td', {}, h('a', {href: `#/queues/${enc(q.name)}`}, q.name), ' ',
      q.paused ? h('span', {class: 'badge paused'}, 'paused') : null),
    h('td', {class: 'num'}, q.counts.queued),
    h('td', {class: 'num'}, q.counts.active),
    h('td', {class: 'num hide-s'}, q.counts.scheduled),
    h('td', {class: 'num hide-s'}, q.counts.succeeded),
    h('td', {class: 'num'}, q.counts.dead),
    h('td', {class: 'num hide-s'}, q.counts.canceled),
    h('td', {class: 'num'}, age(q.oldest_age_s)),
    h('td', {class: 'num'}, rate(q.throughput_per_s)),
    h('td', {class: 'num'}, pct(q.error_rate)),
    h('td', {class: 'hide-s'}, sparkFor(q))));
  const table = h('div', {class: 'scroll'}, h('table', {id: 'queues'},
    h('thead', {}, h('tr', {},
      h('th', {}, 'Queue'), h('th', {class: 'num'}, 'Queued'), h('th', {class: 'num'}, 'Active'),
      h('th', {class: 'num hide-s'}, 'Scheduled'), h('th', {class: 'num hide-s'}, 'Succeeded'),
      h('th', {class: 'num'}, 'Dead'), h('th', {class: 'num hide-s'}, 'Canceled'),
      h('th', {class: 'num'}, 'Oldest'), h('th', {class: 'num'}, 'Jobs/s'),
      h('th', {class: 'num'}, 'Errors'), h('th', {class: 'hide-s'}, 'Last minutes'))),
    h('tbody', {}, rows)));
  put($('main'), h('h1', {}, 'Queues'),
    S.queues.length ? table : h('p', {class: 'muted'}, 'No queue has received a job yet.'));
}

// ---- a queue ----

const STATES = ['queued', 'scheduled', 'active', 'succeeded', 'dead', 'canceled'];

function updateQueueHead() {
  const r = S.route;
  const q = S.queues.find((x) => x.name === r.queue);
  const head = $('queue-head');
  if (!head) return;
  if (!q) { put(head, h('p', {class: 'muted'}, 'No such queue (yet).')); return; }
  put(head, 
    h('h1', {}, 'Queue ', h('span', {class: 'mono'}, q.name),
      q.paused ? h('span', {class: 'badge paused', id: 'queue-paused'}, 'paused')
               : h('span', {class: 'badge', id: 'queue-running'}, 'running')),
    h('div', {class: 'grid'},
      kv('Oldest waiting', age(q.oldest_age_s)), kv('Jobs/s (1 min)', rate(q.throughput_per_s)),
      kv('Error rate (5 min)', pct(q.error_rate)), h('div', {class: 'kv'}, h('div', {class: 'k'}, 'Last minutes'), sparkFor(q))),
    h('div', {class: 'actions'},
      q.paused
        ? h('button', {id: 'btn-resume', onclick: () => queueAct('Resume', 'resume')}, 'Resume')
        : h('button', {id: 'btn-pause', onclick: () => queueAct('Pause', 'pause')}, 'Pause'),
      h('button', {id: 'btn-retry-dead', class: 'ghost', disabled: !q.counts.dead,
                   onclick: () => queueAct('Retry all dead', 'retry-dead', null,
                     `Put all ${q.counts.dead} dead jobs of ${q.name} back?`)}, 'Retry all dead'),
      h('select', {id: 'purge-state', 'aria-label': 'state to purge'},
        ['dead', 'succeeded', 'canceled', 'queued', 'scheduled'].map((s) => h('option', {value: s}, s))),
      h('button', {id: 'btn-purge', class: 'danger', onclick: () => {
        const st = $('purge-state').value;
        queueAct('Purge ' + st, 'purge', {state: st},
          `Delete all ${q.counts[st]} ${st} jobs of ${q.name}? This cannot be undone.`);
      }}, 'Purge')),
    h('div', {class: 'tabs'}, STATES.map((s) => h('a', {
      href: `#/queues/${enc(q.name)}?state=${s}`, class: r.state === s && !r.q ? 'here' : ''},
    `${s} ${q.counts[s]}`))));
}

async function queueAct(label, what, body, confirmText) {
  const q = S.route.queue;
  const v = await act(`${label} ${q}`, `/queues/${enc(q)}/${what}`, body, confirmText);
  if (v) {
    S.queues = (await api('/queues')).queues;
    onQueues();
  }
}

function kv(k, v) {
  return h('div', {class: 'kv'}, h('div', {class: 'k'}, k), h('div', {class: 'v'}, v));
}

function renderQueue() {
  const r = S.route;
  const search = h('form', {class: 'actions', onsubmit: (e) => {
    e.preventDefault();
    const t = $('queue-search').value.trim();
    location.hash = `#/queues/${enc(r.queue)}` + (t ? `?q=${enc(t)}` : `?state=${r.state}`);
  }}, h('input', {id: 'queue-search', type: 'search', value: r.q,
                  placeholder: 'Job id or idempotency key', 'aria-label': 'search'}),
  h('button', {type: 'submit', class: 'ghost'}, 'Search'));
  put($('main'), h('div', {id: 'queue-head'}), search, h('div', {id: 'jobs'}));
  S.listKey = ''; // an event may have come before #jobs existed
  onQueues();
}

async function loadJobs() {
  const r = S.route;
  const params = r.q ? `q=${enc(r.q)}` : `state=${r.state}&offset=${r.offset}&limit=25`;
  let v;
  try {
    v = await api(`/queues/${enc(r.queue)}/jobs?${params}`);
  } catch (e) {
    put($('jobs'), h('p', {}, 'Could not load the jobs: ' + e.message));
    return;
  }
  if (S.route !== r) return;
  if (!$('jobs')) { S.listKey = ''; return; }
  const rows = v.jobs.map((j) => h('tr', {},
    h('td', {class: 'mono'}, h('a', {href: `#/queues/${enc(r.queue)}/jobs/${enc(j.id)}`}, j.id)),
    h('td', {}, j.type || '-'),
    h('td', {}, badge(j.state)),
    h('td', {class: 'num'}, j.attempt),
    h('td', {}, bar(j.progress, j.state)),
    h('td', {class: 'hide-s'}, since(j.finished_at || j.started_at || j.created_at)),
    h('td', {class: 'wrap'}, j.error || '')));
  const pager = r.q ? null : h('div', {class: 'pager'},
    h('button', {class: 'ghost', disabled: r.offset <= 0, onclick: () => {
      location.hash = `#/queues/${enc(r.queue)}?state=${r.state}&offset=${Math.max(0, r.offset - 25)}`;
    }}, '‹ Newer'),
    h('span', {class: 'muted'}, v.total ? `${r.offset + 1}–${r.offset + v.jobs.length} of ${v.total}` : 'none'),
    h('button', {class: 'ghost', disabled: r.offset + 25 >= v.total, onclick: () => {
      location.hash = `#/queues/${enc(r.queue)}?state=${r.state}&offset=${r.offset + 25}`;
    }}, 'Older ›'));
  put($('jobs'), 
    r.q ? h('p', {class: 'muted'}, `Jobs whose id or idempotency key is “${r.q}”:`) : null,
    h('div', {class: 'scroll'}, h('table', {id: 'jobs-table'},
      h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Type'), h('th', {}, 'State'),
        h('th', {class: 'num'}, 'Attempt'), h('th', {}, 'Progress'), h('th', {class: 'hide-s'}, 'When'),
        h('th', {}, 'Error'))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', {colspan: 7, class: 'muted'}, 'No jobs.'))))),
    pager);
}

// ---- a job ----

function pretty(v) {
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

function renderJob() {
  const j = S.job, r = S.route;
  const canCancel = ['queued', 'scheduled', 'active'].includes(j.state);
  const hist = (j.history || []).map((a) => h('tr', {},
    h('td', {class: 'num'}, a.attempt), h('td', {}, badge(a.outcome)),
    h('td', {class: 'mono'}, a.worker || '-'), h('td', {}, since(a.started_at)),
    h('td', {class: 'num'}, a.duration_s === null ? '-' : age(a.duration_s)),
    h('td', {class: 'wrap'}, a.error ? h('pre', {}, a.error) : '')));
  put($('main'), 
    h('h1', {}, h('span', {class: 'mono'}, j.id), badge(j.state, 'job-state')),
    h('p', {}, h('a', {href: `#/queues/${enc(r.queue)}`}, '‹ queue ' + r.queue)),
    h('div', {class: 'card'},
      h('div', {class: 'actions'}, h('strong', {}, 'Progress'),
        h('span', {id: 'job-progress-text'}, ((j.progress || 0) * 100).toFixed(0) + '%')),
      bar(j.progress, j.state, 'job-progress', true)),
    h('div', {class: 'actions'},
      j.state === 'dead' ? h('button', {id: 'btn-retry', onclick: () => jobAct('Retry', 'retry')}, 'Retry') : null,
      canCancel ? h('button', {id: 'btn-cancel', class: 'ghost', onclick: () => jobAct('Cancel', 'cancel', `Cancel job ${j.id}?`)}, 'Cancel') : null,
      j.state !== 'active' ? h('button', {id: 'btn-delete', class: 'danger', onclick: () => jobAct('Delete', 'delete', `Delete job ${j.id}? This cannot be undone.`)}, 'Delete') : null),
    h('div', {class: 'grid'},
      kv('Type', j.type || '-'), kv('Attempt', `${j.attempt} of ${j.max_attempts || 'default'}`),
      kv('Priority', j.priority ?? '-'), kv('Worker', j.worker || '-'),
      kv('Created', since(j.created_at)), kv('Started', since(j.started_at)),
      kv('Finished', since(j.finished_at)), kv('Idempotency key', j.idempotency_key || '-')),
    h('h2', {}, 'Checkpoint'), h('pre', {id: 'job-checkpoint'}, j.checkpoint === null ? 'none' : pretty(j.checkpoint)),
    ...(j.state === 'succeeded' ? [h('h2', {}, 'Result'), h('pre', {id: 'job-result'}, j.result === null ? 'none' : pretty(j.result))] : []),
    ...(j.error ? [h('h2', {}, 'Error'), h('pre', {id: 'job-error'}, j.error)] : []),
    h('h2', {}, 'Attempts'),
    h('div', {class: 'scroll'}, h('table', {id: 'job-history'},
      h('thead', {}, h('tr', {}, h('th', {class: 'num'}, '#'), h('th', {}, 'Outcome'), h('th', {}, 'Worker'),
        h('th', {}, 'Started'), h('th', {class: 'num'}, 'Took'), h('th', {}, 'Error'))),
      h('tbody', {}, hist.length ? hist : h('tr', {}, h('td', {colspan: 6, class: 'muted'}, 'No attempt has ended yet.'))))),
    h('h2', {}, 'Payload'), h('pre', {}, pretty(j.payload)));
}

async function jobAct(label, what, confirmText) {
  const r = S.route;
  const v = await act(`${label} ${r.id}`, `/queues/${enc(r.queue)}/jobs/${enc(r.id)}/${what}`, null, confirmText);
  if (!v) return;
  if (what === 'delete') { location.hash = `#/queues/${enc(r.queue)}`; return; }
  S.job = await api(`/queues/${enc(r.queue)}/jobs/${enc(r.id)}`);
  renderJob();
}

async function onJobEvent(b) {
  const j = S.job;
  if (!j || S.route.view !== 'job' || b.id !== j.id) return;
  // State, attempt or history moved: fetch the whole job again.
  if (b.state !== j.state || b.attempt !== j.attempt || b.history_len !== (j.history || []).length) {
    try {
      S.job = await api(`/queues/${enc(S.route.queue)}/jobs/${enc(j.id)}`);
      renderJob();
    } catch (e) { /* deleted meanwhile: keep what is shown */ }
    return;
  }
  j.progress = b.progress;
  const el = $('job-progress');
  if (el) setBar(el, b.progress);
  const t = $('job-progress-text');
  if (t) t.textContent = ((b.progress || 0) * 100).toFixed(0) + '%';
  if (b.checkpoint !== null && $('job-checkpoint')) $('job-checkpoint').textContent = pretty(b.checkpoint);
}

// ---- workers ----

function renderWorkers() {
  const rows = S.workers.map((w) => h('tr', {},
    h('td', {class: 'mono'}, w.id), h('td', {class: 'hide-s'}, w.host),
    h('td', {}, w.version || '-'),
    h('td', {}, (w.queues || []).join(', ')),
    h('td', {class: 'num'}, `${w.in_flight}/${w.concurrency}`),
    h('td', {}, w.draining ? h('span', {class: 'badge draining'}, 'draining') : 'no'),
    h('td', {class: 'hide-s'}, since(w.last_seen)),
    h('td', {class: 'wrap'}, (w.jobs || []).map((j) => h('div', {class: 'actions'},
      h('a', {class: 'mono', href: `#/queues/${enc(j.queue)}/jobs/${enc(j.id)}`}, j.id.slice(-12)),
      h('span', {class: 'muted'}, j.type || ''), bar(j.progress, 'active'))))));
  put($('main'), h('h1', {}, 'Workers'),
    h('div', {class: 'scroll'}, h('table', {id: 'workers'},
      h('thead', {}, h('tr', {}, h('th', {}, 'Worker'), h('th', {class: 'hide-s'}, 'Host'), h('th', {}, 'Version'),
        h('th', {}, 'Queues'), h('th', {class: 'num'}, 'In flight'), h('th', {}, 'Draining'),
        h('th', {class: 'hide-s'}, 'Seen'), h('th', {}, 'Jobs'))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', {colspan: 8, class: 'muted'}, 'No live worker.'))))),
    h('p', {class: 'muted'}, 'Workers renew their record every third of a lease; running jobs show here within that time.'));
}

// ---- the token ----

function showToken() {
  const writable = S.info && S.info.writable;
  $('token-state').textContent = !S.info ? '' : !writable
    ? 'This jobd is read-only: ' + (S.info.read_only_why || 'no admin token configured')
    : S.token ? 'A token is set for this tab.' : 'No token set: write actions will be refused.';
  $('token-btn').textContent = S.token ? 'Admin token ✓' : 'Admin token';
}

function setup() {
  $('token-btn').addEventListener('click', () => { $('token-panel').hidden = !$('token-panel').hidden; });
  $('token-save').addEventListener('click', () => {
    S.token = $('token').value.trim();
    $('token').value = '';
    if (S.token) sessionStorage.setItem('jobd.token', S.token); else sessionStorage.removeItem('jobd.token');
    showToken();
    $('token-panel').hidden = true;
    flash(S.token ? 'Token set for this tab.' : 'Token cleared.');
  });
  $('token-clear').addEventListener('click', () => {
    S.token = '';
    sessionStorage.removeItem('jobd.token');
    showToken();
    flash('Token cleared.');
  });
  $('find').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = $('find-q').value.trim();
    if (id) location.hash = '#/jobs/' + enc(id);
  });
  window.addEventListener('hashchange', route);
  api('/info').then((i) => {
    S.info = i;
    $('footer').textContent = `jobd ${i.version} · worker ${i.worker} · prefix ${i.prefix}` +
      (i.writable ? '' : ' · read-only');
    showToken();
  }).catch(() => {});
  showToken();
  route();
}

document.addEventListener('DOMContentLoaded', setup);
