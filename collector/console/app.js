// The console's shell: sign-in, the session (resumed from the cookie on reload: the server
// answers the CSRF token to this origin only), the navigation the role may use, and hash
// routing to the pages. The bearer token is sent once, at sign-in, and never kept.

import { api, el, say, setCsrf, ApiError } from './ui.js';
import { pages, may } from './pages.js';

let session = null;

const NAV = [
  ['overview', 'Overview'],
  ['requests', 'Requests'],
  ['people', 'People'],
  ['audit', 'Audit'],
  ['settings', 'Settings'],
];

function main() {
  return document.getElementById('main');
}

function signedIn(answer) {
  session = { name: answer.name, role: answer.role };
  setCsrf(answer.csrf);
  const nav = document.getElementById('nav');
  nav.replaceChildren(...NAV.filter(([page]) => may(session.role, page))
    .map(([page, label]) => el('a', { href: `#/${page}`, 'data-page': page }, label)));
  nav.hidden = false;
  document.getElementById('who').textContent = `${answer.name} (${answer.role})`;
  document.getElementById('sign-out').hidden = false;
}

function signedOut() {
  session = null;
  setCsrf(null);
  document.getElementById('nav').hidden = true;
  document.getElementById('who').textContent = '';
  document.getElementById('sign-out').hidden = true;
}

function signInPage() {
  const input = el('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const form = el('form', { id: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    el('label', { for: 'token' }, 'Access token', input),
    el('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    input.value = '';
    try {
      signedIn(await api('POST', '/console/api/session', { token }));
      say('Signed in.', 'ok');
      if (location.hash === '#/overview') route();
      else location.hash = '#/overview';
    } catch (error) {
      say(error.status === 401 ? 'That token is not valid.' : `Cannot sign in: ${error.message}`, 'error');
    }
  });
  main().replaceChildren(
    el('h1', { id: 'sign-in-title' }, 'Sign in'),
    el('section', { class: 'card' },
      el('p', {}, 'Sign in with a collector access token (admin, editor or viewer). It is exchanged for a session of at most 8 hours (30 minutes idle) and is not kept by this page.'),
      form));
  input.focus();
}

async function route() {
  const page = (location.hash.match(/^#\/([a-z]+)/) ?? [])[1] ?? 'overview';
  if (!session) return signInPage();
  if (!may(session.role, page)) {
    location.hash = '#/overview';
    return undefined;
  }
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.page === page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const target = main();
  target.replaceChildren(el('p', {}, 'Loading…'));
  try {
    await pages[page](target, session);
    document.title = `${page[0].toUpperCase()}${page.slice(1)} · Consentry privacy console`;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signedOut();
      say('Your session has ended. Sign in again.', 'error');
      return signInPage();
    }
    target.replaceChildren(el('h1', {}, 'Something went wrong'), el('p', { class: 'error' }, error.message));
  }
  return undefined;
}

document.getElementById('sign-out').addEventListener('click', async () => {
  try {
    await api('DELETE', '/console/api/session');
    say('Signed out.', 'ok');
  } catch (error) {
    say(`Sign-out: ${error.message}`, 'error');
  }
  signedOut();
  location.hash = '#/signin';
  signInPage();
});

window.addEventListener('hashchange', () => route());

try {
  signedIn(await api('GET', '/console/api/session'));
} catch {
  signedOut();
}
route();
