// The console's building blocks: the API client (the session cookie travels by itself; the
// CSRF token lives only in this module's memory, never in storage), DOM helpers, tables with
// accessible names, and inline SVG bar charts with their numbers beside them.

let csrf = null;

/** Keeps the session's CSRF token in memory (null when signed out). */
export function setCsrf(token) {
  csrf = token;
}

/** An API error with the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the collector's API on this origin; changes carry the CSRF header. */
export async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-Consentry-CSRF'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // The session cookie is `Path=/console`: the API is reached under /console/api.
  const url = path.startsWith('/console/') ? path : `/console/api${path}`;
  const response = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    const message = data?.error?.message ?? data?.message ?? data?.error ?? `HTTP ${response.status}`;
    throw new ApiError(response.status, typeof message === 'string' ? message : JSON.stringify(message));
  }
  return data;
}

/** Makes an element: `el('p', {class: 'note'}, 'text', child)`. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, '');
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A table named by its caption; `rows` are arrays of cells (text or nodes). */
export function table(caption, columns, rows, empty = 'None.') {
  return el('table', {},
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col' }, c)))),
    el('tbody', {}, rows.length
      ? rows.map((row) => el('tr', {}, row.map((cell) => el('td', {}, cell ?? ''))))
      : el('tr', {}, el('td', { colspan: columns.length }, empty))),
  );
}

const SVG = 'http://www.w3.org/2000/svg';

/** A bar chart: one row per item, an SVG bar scaled to the largest, the number beside it. */
export function barChart(title, items) {
  const max = Math.max(1, ...items.map((i) => i.value));
  const rows = items.map(({ label, value }) => {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 100 10');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const rect = document.createElementNS(SVG, 'rect');
    rect.setAttribute('x', '0');
    rect.setAttribute('y', '1');
    rect.setAttribute('height', '8');
    rect.setAttribute('width', String(Math.max(0.5, (value / max) * 100)));
    rect.setAttribute('class', 'bar-fill');
    svg.append(rect);
    return [el('dt', {}, label), el('dd', { class: 'bar-row' }, svg, ' ', el('span', {}, String(value)))];
  });
  return el('figure', { class: 'card-figure' },
    el('figcaption', {}, el('strong', {}, title)),
    items.length ? el('dl', { class: 'chart' }, rows.flat()) : el('p', { class: 'note' }, 'Nothing yet.'));
}

/** The SHA-256 of a text, lower-case hex, computed in the page (crypto.subtle). */
export async function sha256Hex(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** A time for people: ISO 8601 in UTC, or a dash. */
export function when(ms) {
  return typeof ms === 'number' ? new Date(ms).toISOString().replace('.000Z', 'Z') : '—';
}

/** Shows a message in the status line (and returns it). */
export function say(text, kind = '') {
  const status = document.getElementById('status');
  status.className = `status ${kind}`;
  status.textContent = text;
  return text;
}
