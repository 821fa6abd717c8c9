// The console's pages. Each shows only what the role may do (a mirror of the collector's
// permission table, for display); the collector still checks every call.

import { api, el, table, barChart, sha256Hex, when, say } from './ui.js';

const ROLE_PAGES = {
  admin: ['overview', 'requests', 'people', 'audit', 'settings'],
  editor: ['overview', 'requests', 'people'],
  viewer: ['overview', 'requests', 'people'],
};

/** Whether `role` may open `page`. */
export function may(role, page) {
  return (ROLE_PAGES[role] ?? []).includes(page);
}

function edits(role) {
  return role === 'admin' || role === 'editor';
}

function card(...children) {
  return el('section', { class: 'card' }, ...children);
}

function sum(items, key) {
  const totals = new Map();
  for (const item of items) totals.set(item[key], (totals.get(item[key]) ?? 0) + item.events);
  return [...totals].map(([label, value]) => ({ label: String(label), value }));
}

function entries(object) {
  return Object.entries(object ?? {}).map(([label, value]) => ({ label, value }));
}

async function overview(target) {
  const s = await api('GET', '/console/api/summary');
  const byDay = new Map();
  for (const row of s.events_by_day) byDay.set(row.day, (byDay.get(row.day) ?? 0) + row.events);
  const days = [...byDay].sort((a, b) => a[0] - b[0])
    .map(([day, value]) => ({ label: new Date(day * 86400000).toISOString().slice(0, 10), value }));
  const retention = Object.values(s.retention_deleted_since_start ?? {}).reduce((a, b) => a + b, 0);
  target.replaceChildren(
    el('h1', {}, 'Overview'),
    el('div', { class: 'kpis' },
      [['Events stored', s.events], ['Duplicates dropped', s.duplicates], ['Refused by consent', s.refused],
        ['Suppressed', s.suppressed], ['Failed callbacks', s.callbacks_failed], ['Retention deletions (since start)', retention]]
        .map(([label, value]) => el('p', { class: 'kpi' }, el('strong', {}, String(value)), label))),
    card(barChart(`Events per day (last ${s.days} days, by time of receipt)`, days)),
    card(barChart('Events by purpose (an event counts once per purpose)', sum(s.events_by_day, 'purpose'))),
    card(barChart('Events by environment', sum(s.events_by_day, 'environment'))),
    card(barChart('Refusals by reason (since the collector started)', entries(s.refused_by_reason_since_start))),
    card(barChart('Requests by status', entries(s.requests_by_status))),
    card(barChart('Retention deletions by kind (since the collector started)', entries(s.retention_deleted_since_start))),
    card(table('Events per day, purpose and environment', ['Day', 'Environment', 'Purpose', 'Events'],
      s.events_by_day.map((r) => [new Date(r.day * 86400000).toISOString().slice(0, 10), r.environment, r.purpose, String(r.events)]))),
  );
}

function select(id, label, options) {
  return el('label', { for: id }, label,
    el('select', { id, name: id }, options.map(([value, text]) => el('option', { value }, text))));
}

async function requestDetail(box, id, session, reload) {
  const r = await api('GET', `/console/api/requests/${encodeURIComponent(id)}`);
  const steps = [['received', when(r.received_at_ms), `${r.type} (${r.regulation}) via ${r.origin}, by ${r.controller_id}`],
    ['expected by', when(r.expected_at_ms), '']];
  for (const c of r.callbacks) {
    for (const a of c.history) steps.push([`callback ${c.request_status}`, when(a.at_ms), `${c.url}: ${a.outcome}`]);
    if (!c.history.length) steps.push([`callback ${c.request_status}`, '—', `${c.url}: ${c.state}`]);
  }
  if (r.status === 'completed' || r.status === 'cancelled') steps.push([r.status, when(r.updated_at_ms), r.results_count != null ? `${r.results_count} records` : '']);
  if (r.export_expires_at_ms) steps.push(['export expires', when(r.export_expires_at_ms), '']);
  const actions = [];
  if (r.results_url) actions.push(el('a', { id: 'export-link', href: r.results_url, download: `${r.id}.jsonl` }, 'Download the export'));
  if (edits(session.role) && r.status === 'pending') {
    actions.push(el('button', { type: 'button', class: 'danger', id: 'cancel-request', onclick: async () => {
      try {
        await api('DELETE', `/console/api/requests/${encodeURIComponent(r.id)}`);
        say('Request cancelled.', 'ok');
        await reload();
      } catch (error) {
        say(`Cannot cancel: ${error.message}`, 'error');
      }
    } }, 'Cancel this request'));
  }
  box.replaceChildren(
    el('h2', { id: 'request-title' }, `Request ${r.id}: ${r.status}`),
    table(`Timeline of request ${r.id}`, ['Step', 'When', 'Detail'], steps),
    el('p', {}, ...actions));
}

async function requests(target, session) {
  const filters = el('form', { id: 'request-filters', 'aria-label': 'Filter requests' },
    select('f-type', 'Type', [['', 'any'], ['erasure', 'erasure'], ['access', 'access'], ['portability', 'portability']]),
    select('f-status', 'Status', [['', 'any'], ['pending', 'pending'], ['in_progress', 'in progress'], ['completed', 'completed'], ['cancelled', 'cancelled']]),
    el('label', { class: 'inline', for: 'f-overdue' }, el('input', { type: 'checkbox', id: 'f-overdue' }), 'Overdue only'),
    el('button', { type: 'submit' }, 'Filter'));
  const list = el('div', { id: 'request-list' });
  const detail = el('div', { id: 'request-detail', 'aria-live': 'polite' });
  const load = async () => {
    const q = new URLSearchParams();
    const type = filters.querySelector('#f-type').value;
    const status = filters.querySelector('#f-status').value;
    if (type) q.set('type', type);
    if (status) q.set('status', status);
    if (filters.querySelector('#f-overdue').checked) q.set('overdue', '1');
    const { requests: rows } = await api('GET', `/console/api/requests?${q}`);
    list.replaceChildren(table('Data-subject requests', ['Id', 'Type', 'Status', 'Origin', 'Received', 'Updated'],
      rows.map((r) => [el('button', { type: 'button', class: 'secondary', 'data-request': r.id,
        onclick: () => requestDetail(detail, r.id, session, load).catch((e) => say(e.message, 'error')) }, r.id),
      r.kind, r.status, r.origin, when(r.received_at_ms), when(r.updated_at_ms)])));
  };
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    load().catch((e) => say(e.message, 'error'));
  });
  const parts = [el('h1', {}, 'Requests'), card(filters, list), card(detail)];
  if (edits(session.role)) {
    const create = el('form', { id: 'create-request', 'aria-label': 'Create a request' },
      select('c-type', 'Type', [['access', 'access'], ['portability', 'portability'], ['erasure', 'erasure']]),
      select('c-regulation', 'Regulation', [['gdpr', 'GDPR'], ['ccpa', 'CCPA']]),
      select('c-identity-type', 'Identity', [['controller_customer_id', 'user id'], ['anonymous_id', 'anonymous id'], ['email', 'email']]),
      el('label', { for: 'c-identity-value' }, 'Value', el('input', { id: 'c-identity-value', required: true, autocomplete: 'off' })),
      el('button', { type: 'submit' }, 'Create request'));
    create.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const made = await api('POST', '/console/api/requests', {
          type: create.querySelector('#c-type').value,
          regulation: create.querySelector('#c-regulation').value,
          identity_type: create.querySelector('#c-identity-type').value,
          identity_value: create.querySelector('#c-identity-value').value,
        });
        say(`Request ${made.id} created.`, 'ok');
        await load();
        await requestDetail(detail, made.id, session, load);
      } catch (error) {
        say(`Cannot create: ${error.message}`, 'error');
      }
    });
    parts.push(card(el('h2', {}, 'Create a request by hand'), create));
  }
  target.replaceChildren(...parts);
  await load();
}

/** A stored consent state in words: `analytics granted, advertising denied` per regime. */
function consentText(state) {
  if (!state || typeof state !== 'object') return JSON.stringify(state);
  const parts = [];
  for (const [regime, purposes] of Object.entries(state)) {
    if (!purposes || typeof purposes !== 'object') continue;
    const said = Object.entries(purposes)
      .filter(([, p]) => p && typeof p === 'object' && typeof p.consented === 'boolean')
      .map(([name, p]) => `${name} ${p.consented ? 'granted' : 'denied'}${p.document ? ` (${p.document})` : ''}`);
    parts.push(`${regime.toUpperCase()}: ${said.join(', ') || 'nothing recorded'}`);
  }
  return parts.join('; ') || JSON.stringify(state);
}

async function personView(box, id, label, session, since = 0) {
  const v = await api('GET', `/v1/users/${encodeURIComponent(id)}?since=${since}&limit=50`);
  const reload = () => personView(box, id, label, session).catch((e) => say(e.message, 'error'));
  const parts = [el('h2', { id: 'person-title' }, `Activity of ${label}`)];
  parts.push(el('p', {}, v.suppressed_since_ms ? `Suppressed since ${when(v.suppressed_since_ms)}: new events are dropped.` : 'Not suppressed.'));
  parts.push(table(`Events of ${label}`, ['When', 'Type', 'Name', 'Purposes'],
    v.events.map((e) => [when(e.timestamp_unixtime_ms), e.type, e.name, (e.purposes ?? []).join(', ')]), 'No events held.'));
  if (v.events.length === 50) {
    parts.push(el('button', { type: 'button', class: 'secondary', onclick: () => personView(box, id, label, session, v.next_since) }, 'Next events'));
  }
  parts.push(table(`Consent history of ${label}`, ['When', 'Consent after', 'Before'],
    v.consent_history.map((c) => [when(c.timestamp_unixtime_ms), consentText(c.current), consentText(c.previous)]), 'No consent changes held.'));
  parts.push(el('p', { class: 'note' }, 'Consent receipts come with the SDK\u2019s receipts feature, which is not built yet: this is the consent history the collector stored from events.'));
  parts.push(table(`Requests naming ${label}`, ['Id', 'Type', 'Status', 'Received'],
    v.requests.map((r) => [r.id, r.kind, r.status, when(r.received_at_ms)])));
  parts.push(table(`Erasures of ${label}`, ['Request', 'When', 'Events deleted'],
    v.erasures.map((t) => [t.request_id, when(t.at_ms), String(t.events_deleted)])));
  if (edits(session.role)) {
    const suppressed = Boolean(v.suppressed_since_ms);
    parts.push(el('p', {},
      el('button', { type: 'button', class: 'secondary', id: 'toggle-suppression', onclick: async () => {
        try {
          await api(suppressed ? 'DELETE' : 'PUT', `/v1/suppressions/${encodeURIComponent(id)}`);
          say(suppressed ? 'Suppression removed.' : 'Suppressed.', 'ok');
          await reload();
        } catch (error) {
          say(error.message, 'error');
        }
      } }, suppressed ? 'Remove the suppression' : 'Suppress this identity')));
    const rectify = el('form', { id: 'rectify', 'aria-label': 'Rectify a trait' },
      el('label', { for: 'r-name' }, 'Trait', el('input', { id: 'r-name', required: true, autocomplete: 'off' })),
      el('label', { for: 'r-value' }, 'New value (empty removes it)', el('input', { id: 'r-value', autocomplete: 'off' })),
      el('button', { type: 'submit' }, 'Rectify'));
    rectify.addEventListener('submit', async (event) => {
      event.preventDefault();
      const value = rectify.querySelector('#r-value').value;
      try {
        const done = await api('PATCH', `/v1/users/${encodeURIComponent(id)}/traits`,
          { traits: { [rectify.querySelector('#r-name').value]: value === '' ? null : value } });
        say(`Rectified on ${done.updated_events} identify events.`, 'ok');
      } catch (error) {
        say(error.message, 'error');
      }
    });
    parts.push(el('h3', {}, 'Rectify traits'), rectify);
    const dialog = el('dialog', { id: 'erase-dialog', 'aria-labelledby': 'erase-title' },
      el('h3', { id: 'erase-title' }, `Erase ${label} now?`),
      el('p', {}, `This deletes at once, for good: ${v.events.length}${v.events.length === 50 ? '+' : ''} events, ${v.consent_history.length} consent changes, ${v.identity_links.length} identity links and every export of ${label} and the ids linked to it. A tombstone records that it happened.`),
      el('form', { method: 'dialog' },
        el('button', { value: 'cancel', class: 'secondary', autofocus: true }, 'Keep the data'),
        el('button', { value: 'erase', class: 'danger', id: 'confirm-erase' }, 'Erase now')));
    dialog.addEventListener('close', async () => {
      if (dialog.returnValue !== 'erase') return;
      try {
        const done = await api('DELETE', `/v1/users/${encodeURIComponent(id)}`);
        say(`Erased: ${done.erased.events} events deleted.`, 'ok');
        await reload();
      } catch (error) {
        say(error.message, 'error');
      }
    });
    parts.push(el('p', {}, el('button', { type: 'button', class: 'danger', id: 'erase', onclick: () => dialog.showModal() }, 'Erase now…')), dialog);
  }
  box.replaceChildren(...parts);
}

async function people(target, session) {
  const form = el('form', { id: 'person-search', 'aria-label': 'Find a person' },
    select('p-kind', 'Search by', [['user', 'user id'], ['anonymous', 'anonymous id'], ['email', 'email (hashed here)']]),
    el('label', { for: 'p-value' }, 'Value', el('input', { id: 'p-value', required: true, autocomplete: 'off' })),
    el('button', { type: 'submit' }, 'Show activity'));
  const box = el('div', { id: 'person', 'aria-live': 'polite' });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const kind = form.querySelector('#p-kind').value;
    let value = form.querySelector('#p-value').value.trim();
    let label = value;
    if (kind === 'email') {
      // The address never leaves the page: only its SHA-256, which is what the SDK sends.
      value = await sha256Hex(value.toLowerCase());
      label = `the email hashed to ${value.slice(0, 12)}…`;
    }
    await personView(box, value, label, session).catch((e) => say(e.message, 'error'));
  });
  target.replaceChildren(el('h1', {}, 'People'),
    card(form, el('p', { class: 'note' }, 'An email is hashed with SHA-256 in this page before it is sent.')), card(box));
}

async function audit(target) {
  const filter = el('input', { id: 'a-filter', type: 'search', autocomplete: 'off' });
  const list = el('div', { id: 'audit-list' });
  const verdict = el('p', { id: 'verify-result', 'aria-live': 'polite' });
  let all = [];
  const show = () => {
    const needle = filter.value.trim().toLowerCase();
    const rows = all.filter((e) => !needle || `${e.actor} ${e.role} ${e.action} ${e.target} ${e.outcome}`.toLowerCase().includes(needle));
    list.replaceChildren(table('Audit log (newest first)', ['#', 'When', 'Actor', 'Role', 'Action', 'Target', 'Outcome'],
      rows.slice(0, 500).map((e) => [String(e.seq), when(e.at_ms), e.actor, e.role, e.action, e.target, e.outcome])));
  };
  let since = 0;
  for (;;) {
    const page = await api('GET', `/v1/audit?since=${since}&limit=1000`);
    all = all.concat(page.entries);
    if (page.entries.length < 1000) break;
    since = page.next_since;
  }
  all.reverse();
  filter.addEventListener('input', show);
  const verify = el('button', { type: 'button', id: 'verify-chain', onclick: async () => {
    const r = await api('GET', '/console/api/audit/verify');
    verdict.className = r.ok ? 'ok' : 'error';
    verdict.textContent = r.ok ? `The chain verifies: ${r.length} entries, head ${r.head}.` : `The chain is broken at entry ${r.broken_seq}: ${r.reason}.`;
  } }, 'Verify the chain');
  target.replaceChildren(el('h1', {}, 'Audit'),
    card(el('p', {}, verify), verdict),
    card(el('label', { for: 'a-filter' }, 'Filter (actor, action, target, outcome)', filter), list));
  show();
}

async function settings(target) {
  const s = await api('GET', '/console/api/settings');
  const tokens = el('div', { id: 'token-list' });
  const shown = el('div', { id: 'new-token', 'aria-live': 'polite' });
  const load = async () => {
    const { tokens: rows } = await api('GET', '/v1/tokens');
    tokens.replaceChildren(table('Tokens', ['Id', 'Name', 'Role', 'Created', 'Revoked', ''],
      rows.map((t) => [t.id, t.name, t.role, when(t.created_at_ms), t.revoked_at_ms ? when(t.revoked_at_ms) : 'live',
        t.revoked_at_ms ? '' : el('button', { type: 'button', class: 'danger', 'data-revoke': t.id, onclick: async () => {
          try {
            await api('DELETE', `/v1/tokens/${encodeURIComponent(t.id)}`);
            say(`Token ${t.id} revoked.`, 'ok');
            await load();
          } catch (error) {
            say(error.message, 'error');
          }
        } }, `Revoke ${t.name}`)])));
  };
  const create = el('form', { id: 'create-token', 'aria-label': 'Create a token' },
    el('label', { for: 't-name' }, 'Name', el('input', { id: 't-name', required: true, autocomplete: 'off' })),
    select('t-role', 'Role', [['viewer', 'viewer'], ['editor', 'editor'], ['admin', 'admin'], ['dsr', 'dsr']]),
    el('button', { type: 'submit' }, 'Create token'));
  create.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const made = await api('POST', '/v1/tokens', { name: create.querySelector('#t-name').value, role: create.querySelector('#t-role').value });
      shown.replaceChildren(el('p', {}, `Token for ${made.name} (${made.role}), shown this once:`), el('p', { class: 'secret' }, made.token));
      await load();
    } catch (error) {
      say(error.message, 'error');
    }
  });
  target.replaceChildren(el('h1', {}, 'Settings'),
    card(table('Retention schedules (set by flags, read-only)', ['Scope', 'Value', 'Kept for (days)'],
      s.retention.map((r) => [r.scope, r.value, String(r.max_age_days)]), 'No schedules: events are kept until erased.'),
    el('p', { class: 'note' }, `Sweeps run every ${s.sweep_interval_seconds} s; requests are due within ${s.sla_days} days.`)),
    card(table('Allowlists (set by flags, read-only)', ['List', 'Entries'], [
      ['Admin addresses (--admin-allow-ip)', s.admin_allow.join(', ') || 'any address'],
      ['Admin origins (--admin-origin)', s.admin_origins.join(', ') || 'none'],
      ['Ingestion origins (--allow-origin)', s.ingest_origins.join(', ') || 'none'],
    ])),
    card(el('h2', {}, 'Tokens'), create, shown, tokens));
  await load();
}

/** Every page by its route name. */
export const pages = { overview, requests, people, audit, settings };
