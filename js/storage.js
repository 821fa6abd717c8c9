// Where the core's documents live. What is written when is the core's decision; this module
// performs it, and never throws.
//
// - consent (`c`): localStorage, `<prefix>:v1:consent`, in plain text: read synchronously at
//   start, and other tabs hear a change through the `storage` event. It holds choices, no id.
// - identity (`i`) and this page's queue slots (`q0`...): the encrypted vault (IndexedDB,
//   `<prefix>:v1`, documents `identity` and `queue:<page id>:<slot>`), sealed with a
//   non-extractable AES-GCM key. The vault is opened only once a choice exists.
// - memory: the consent record, when the site chose `storage: 'memory'` or the browser denies
//   storage; identity and queue stay in the core's memory when the vault cannot exist (no
//   IndexedDB or WebCrypto), never in plain text. The host tells the core which applies.
//
// Vault writes of one turn of the host's loop go in one transaction, in order after the last.

import { openVault, vaultSupported } from './vault.js';

/** What the core is told the browser cannot keep: null (everything is kept), 1 (only the
 * consent record) or 0 (nothing). */
export const KEEPS_CONSENT_ONLY = 1;
export const KEEPS_NOTHING = 0;

function localStore() {
  try {
    const local = globalThis.localStorage;
    void local.length; // throws here when storage is denied
    return local;
  } catch {
    return null;
  }
}

function memoryStore() {
  const memory = new Map();
  return {
    getItem: (k) => memory.get(k) ?? null,
    setItem: (k, v) => void memory.set(k, v),
    removeItem: (k) => void memory.delete(k),
  };
}

/** Opens storage for the page `pageId`. `onWriteFailed(name)` hears of every write that failed;
 * `onVaultLost()`, once, that the vault cannot be opened after all (IndexedDB refused). */
export function openStorage(mode, prefix, pageId, onWriteFailed, onVaultLost) {
  const base = prefix + ':v1:';
  const consentKey = base + 'consent';
  const ownQueues = 'queue:' + pageId + ':';
  const local = mode === 'local' ? localStore() : null;
  const plain = local ?? memoryStore();
  const secure = local !== null && vaultSupported();
  let vault = null; // a promise of the open vault, once wanted
  let pending = null; // vault writes of this turn: name -> text | null
  let chain = Promise.resolve();
  const taken = new Set(); // other pages' documents adopted here, removed or being removed

  const docName = (name) => (name === 'i' ? 'identity' : ownQueues + name.slice(1));
  const openOnce = () =>
    (vault ??= openVault(base.slice(0, -1)).catch((error) => {
      onVaultLost();
      throw error;
    }));

  function flush() {
    const writes = [...pending];
    pending = null;
    chain = chain
      .then(() => openOnce())
      .then((open) => open.write(writes.map(([name, text]) => [docName(name), text])))
      .catch(() => writes.forEach(([name]) => onWriteFailed(name)));
  }

  return {
    /** What the core must be told the browser cannot keep, or null. */
    keeps: mode === 'local' ? (local === null ? KEEPS_NOTHING : secure ? null : KEEPS_CONSENT_ONLY) : null,
    /** The key other tabs' consent writes arrive under (storage events). */
    consentKey,

    /** The stored consent document, read synchronously. */
    readConsent() {
      try {
        return plain.getItem(consentKey) ?? undefined;
      } catch {
        return undefined;
      }
    },

    /** The stored identity: only looked for when a choice is stored (nothing else can have
     * written one), so a visitor who never chose leaves no database behind. */
    async readIdentity() {
      if (!secure || this.readConsent() === undefined) return undefined;
      try {
        return await (await openOnce()).read('identity');
      } catch {
        return undefined;
      }
    },

    /** Writes (null removes) document `name`: `c`, `i` or `q<slot>`. */
    write(name, text) {
      if (name === 'c') {
        try {
          if (text === null) plain.removeItem(consentKey);
          else plain.setItem(consentKey, text);
        } catch {
          onWriteFailed(name);
        }
        return;
      }
      // Without a vault the core writes no identity or queue (it was told); with `storage:
      // 'memory'` they only live in the core's memory anyway.
      if (!secure) return;
      if (pending === null) {
        pending = new Map();
        queueMicrotask(flush);
      }
      pending.set(name, text);
    },

    /** The queues other pages left in the vault: [owner page id, document name, text]. */
    async otherQueues() {
      if (!secure || this.readConsent() === undefined) return [];
      try {
        const docs = await (await openOnce()).readAll('queue:');
        return docs
          .filter(([doc]) => !doc.startsWith(ownQueues) && !taken.has(doc))
          .map(([doc, text]) => [doc.split(':')[1], doc, text]);
      } catch {
        return [];
      }
    },

    /** Removes another page's queue document once the core has taken it over. */
    removeOther(doc) {
      taken.add(doc);
      chain = chain.then(() => openOnce()).then((open) => open.write([[doc, null]])).catch(() => {});
    },

    /** Resolves once every write asked for so far has landed (or failed). */
    settled() {
      if (pending !== null) flush();
      return chain;
    },
  };
}
