// Page lifecycle and browser signals as core inputs: visibility (visibilitychange, pagehide,
// pageshow), leaving (pagehide), freezing (freeze, resume: a frozen page lets another tab
// send), connectivity (online, offline) and consent recorded in another tab (storage).

import { CONSENT_SYNC, LEAVING, NETWORK, VISIBILITY } from './inputs.js';
import { freshEntropy } from './entropy.js';

/** Attaches the listeners; returns a function that removes them. */
export function watchLifecycle(host, consentKey, tabs) {
  const removers = [];
  const on = (target, type, listener) => {
    target.addEventListener(type, listener);
    removers.push(() => target.removeEventListener(type, listener));
  };
  const visibility = () => host.input((sdk) => sdk.input(VISIBILITY, Date.now(), document.visibilityState === 'hidden' ? 1 : 0));
  on(document, 'visibilitychange', visibility);
  on(window, 'pageshow', visibility);
  on(window, 'pagehide', () => {
    host.input((sdk) => sdk.input(VISIBILITY, Date.now(), 1));
    host.input((sdk) => sdk.input(LEAVING, Date.now(), 0));
  });
  on(document, 'freeze', () => tabs.freeze());
  on(document, 'resume', () => tabs.resume());
  on(window, 'online', () => host.input((sdk) => sdk.input(NETWORK, Date.now(), 1)));
  on(window, 'offline', () => host.input((sdk) => sdk.input(NETWORK, Date.now(), 0)));
  on(window, 'storage', (event) => {
    // key null: another tab cleared storage; the core falls back to default-deny.
    if (event.key === consentKey || event.key === null) {
      const text = event.key === null ? undefined : (event.newValue ?? undefined);
      host.input((sdk) => sdk.input(CONSENT_SYNC, Date.now(), 0, text, undefined, undefined, undefined, freshEntropy()));
    }
  });
  return () => removers.forEach((remove) => remove());
}
