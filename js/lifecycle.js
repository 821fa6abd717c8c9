// Page lifecycle and browser signals as core inputs: visibility (visibilitychange, pagehide,
// pageshow), connectivity (online, offline) and consent recorded in another tab (storage).

/** Attaches the listeners; returns a function that removes them. */
export function watchLifecycle(host, consentKey) {
  const removers = [];
  const on = (target, type, listener) => {
    target.addEventListener(type, listener);
    removers.push(() => target.removeEventListener(type, listener));
  };
  const visibility = () => host.input((sdk) => sdk.visibility(Date.now(), document.visibilityState === 'hidden'));
  on(document, 'visibilitychange', visibility);
  on(window, 'pageshow', visibility);
  on(window, 'pagehide', () => host.input((sdk) => sdk.visibility(Date.now(), true)));
  on(window, 'online', () => host.input((sdk) => sdk.network(Date.now(), true)));
  on(window, 'offline', () => host.input((sdk) => sdk.network(Date.now(), false)));
  on(window, 'storage', (event) => {
    // key null: another tab cleared storage; the core falls back to default-deny.
    if (event.key === consentKey || event.key === null) {
      host.input((sdk) => sdk.consentSync(Date.now(), event.key === null ? undefined : event.newValue ?? undefined));
    }
  });
  return () => removers.forEach((remove) => remove());
}
