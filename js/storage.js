// Where the core's documents live: localStorage under prefixed, versioned keys, or memory when
// localStorage is denied (sandboxed iframes, blocked site data) or the site chose memory.
//
// Keys: <prefix>:v1:consent, <prefix>:v1:identity, and each page's queue documents,
// <prefix>:v1:queue:<page id>:<slot> (one per anonymous id), so tabs never overwrite each
// other's unsent events.
// What is written when is the core's decision; this module only performs it. It never throws.

/** Opens storage; a name is a document: c(onsent), i(dentity), or q and a slot digit (queue). */
export function openStorage(mode, prefix, pageId) {
  const base = prefix + ':v1:';
  const queuePrefix = base + 'queue:';
  const ownQueues = queuePrefix + pageId + ':';
  const keyOf = (name) => (name === 'c' ? base + 'consent' : name === 'i' ? base + 'identity' : ownQueues + name.slice(1));
  const memory = new Map();
  let local = null;
  if (mode === 'local') {
    try {
      local = globalThis.localStorage;
      void local.length; // throws here when storage is denied
    } catch {
      local = null;
    }
  }
  const store = local ?? {
    getItem: (k) => memory.get(k) ?? null,
    setItem: (k, v) => memory.set(k, v),
    removeItem: (k) => memory.delete(k),
  };
  return {
    /** Whether localStorage was wanted but memory is used instead. */
    fellBack: mode === 'local' && !local,
    /** The key other tabs' consent writes arrive under (storage events). */
    consentKey: keyOf('c'),
    read(name) {
      try {
        return store.getItem(keyOf(name)) ?? undefined;
      } catch {
        return undefined;
      }
    },
    /** Writes, or removes for `null`. Returns false when the browser refused (quota). */
    write(name, value) {
      try {
        if (value === null) store.removeItem(keyOf(name));
        else store.setItem(keyOf(name), value);
        return true;
      } catch {
        return false;
      }
    },
    /** Queues other pages of this site stored: [key, text] pairs. */
    otherQueues() {
      const found = [];
      try {
        for (let i = 0; local && i < local.length; i++) {
          const key = local.key(i);
          if (key && key.startsWith(queuePrefix) && !key.startsWith(ownQueues)) found.push([key, local.getItem(key)]);
        }
      } catch {
        // Storage went away while reading: nothing to adopt.
      }
      return found.filter(([, text]) => typeof text === 'string');
    },
    removeOther(key) {
      try {
        local?.removeItem(key);
      } catch {
        // Nothing to do: the core keeps the adopted events in memory either way.
      }
    },
  };
}
