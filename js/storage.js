// Where the core's documents live. What is written when is the core's decision; this module
// performs it, and never throws.
//
// - consent (`c`): localStorage, `<prefix>:v1:consent`, in plain text: read synchronously at
//   start, and other tabs hear a change through the `storage` event. It holds choices, no id.
// - identity (`i`) and this page's queue slots (`q0`...): the encrypted vault (IndexedDB,
//   `<prefix>:v1`, documents `identity` and `queue:<scope>:<page id>:<slot>`, where the scope
//   names the endpoint and API key, so SDK configurations sharing a prefix never take each
//   other's queues), sealed with a non-extractable AES-GCM key. The vault is created only by a
//   write (nothing reads it into existence), and deleted with its key once it holds nothing.
// - memory: the consent record, when the site chose `storage: 'memory'` or the browser denies
//   storage; identity and queue stay in the core's memory when the vault cannot exist (no
//   IndexedDB or WebCrypto), never in plain text. The host tells the core which applies.
//
// Vault writes of one turn of the host's loop, and the removal of queues adopted in it, go in one
// transaction, in order after the last.

import { openVault, vaultExists, vaultSupported } from './vault.js';

/** What the core is told the browser cannot keep: null (everything is kept), 1 (only the
 * consent record) or 0 (nothing). */
export const KEEPS_CONSENT_ONLY = 1;
export const KEEPS_NOTHING = 0;

/** How long the vault may take to open before the SDK goes on without it. */
const VAULT_OPEN_TIMEOUT_MS = 5000;

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

/** Opens storage for the page `pageId` of configuration `scope`. `onWriteFailed(name)` hears of
 * every write that failed; `onVaultLost()`, once, that the vault cannot be opened after all. */
export function openStorage(mode, prefix, scope, pageId, onWriteFailed, onVaultLost) {
  const base = prefix + ':v1:';
  const vaultName = prefix + ':v1';
  const consentKey = base + 'consent';
  const queues = 'queue:' + scope + ':';
  const ownQueues = queues + pageId + ':';
  const local = mode === 'local' ? localStore() : null;
  const plain = local ?? memoryStore();
  const secure = local !== null && vaultSupported();
  let vault = null; // a promise of the open vault, once wanted
  let lost = false;
  let pending = null; // vault changes of this turn: document name -> text | null
  let chain = Promise.resolve();
  const taken = new Set(); // other pages' documents adopted here, removed or being removed

  const docName = (name) => (name === 'i' ? 'identity' : ownQueues + name.slice(1));
  const openOnce = () =>
    (vault ??= Promise.race([
      openVault(vaultName, () => (vault = null)),
      new Promise((_, fail) => setTimeout(() => fail(new Error('the vault did not open')), VAULT_OPEN_TIMEOUT_MS)),
    ]).catch((error) => {
      if (!lost) {
        lost = true;
        onVaultLost();
      }
      throw error;
    }));
  // The vault as it is, without creating it: null when it does not exist.
  const existing = async () => (vault !== null || (await vaultExists(vaultName)) ? openOnce() : null);

  function flush() {
    const changes = [...pending];
    pending = null;
    chain = chain
      .then(() => openOnce())
      .then((open) => open.write(changes))
      .catch(() => {
        for (const [doc] of changes) {
          if (doc === 'identity') onWriteFailed('i');
          else if (doc.startsWith(ownQueues)) onWriteFailed('q' + doc.slice(ownQueues.length));
        }
      });
  }

  function change(doc, text) {
    if (pending === null) {
      pending = new Map();
      queueMicrotask(flush);
    }
    pending.set(doc, text);
  }

  return {
    /** What the core must be told the browser cannot keep, or null. */
    keeps: mode === 'local' ? (local === null ? KEEPS_NOTHING : secure ? null : KEEPS_CONSENT_ONLY) : null,
    /** Whether the consent record is shared with the site's other tabs. */
    shared: local !== null,
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

    /** The stored identity, if the vault exists and holds one. */
    async readIdentity() {
      if (!secure) return undefined;
      try {
        return (await (await existing())?.read('identity')) ?? undefined;
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
      if (secure) change(docName(name), text);
    },

    /** The queues other pages of this configuration left: [owner page id, document, text]. */
    async otherQueues() {
      if (!secure) return [];
      try {
        const open = await existing();
        if (!open) return [];
        return (await open.readAll(queues))
          .filter(([doc]) => !doc.startsWith(ownQueues) && !taken.has(doc))
          .map(([doc, text]) => [doc.slice(queues.length).split(':')[0], doc, text]);
      } catch {
        return [];
      }
    },

    /** Removes another page's queue document the core has taken over, in the same transaction
     * as what the core wrote of it. */
    removeOther(doc) {
      taken.add(doc);
      change(doc, null);
    },
  };
}
