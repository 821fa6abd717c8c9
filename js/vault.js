// The encrypted store: documents in IndexedDB, each sealed with AES-GCM (a fresh 96-bit IV per
// write, its name as additional data, so a sealed document cannot be moved under another name)
// under one 256-bit key that WebCrypto made non-extractable: the key is a CryptoKey kept in
// IndexedDB, and its bytes never exist in JavaScript. Someone who reads the origin's storage
// sees ciphertext; the consent record is the only document kept in plain text (localStorage).
//
// The database is created only by a write, which the core asks for only once a choice exists:
// before that, the SDK writes nothing anywhere, and reading never creates it. The seal protects
// what storage holds from whoever reads the origin's storage outside the page (another user of
// the computer, a copied profile); code running in the page itself is trusted, as it must be
// for any script the page loads. Nothing here throws; every method answers a promise.

const KEY_ID = 'data-key';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether this browser can keep an encrypted store at all. */
export function vaultSupported() {
  try {
    return typeof indexedDB === 'object' && indexedDB !== null && typeof crypto === 'object' && !!crypto.subtle;
  } catch {
    return false;
  }
}

/** Whether the store `name` exists (without creating it); true where the browser cannot say. */
export async function vaultExists(name) {
  if (typeof indexedDB.databases !== 'function') return true;
  const databases = await indexedDB.databases();
  return databases.some((database) => database.name === name);
}

const request = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

function transaction(db, stores, mode, work) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(stores, mode);
    let result;
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
    result = work(tx);
  });
}

/** Opens the store named `name`, creating it and its key when missing; `onClose()` hears that
 * it closed (the browser or another tab asked for it). Rejects when it cannot. */
export async function openVault(name, onClose) {
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore('keys');
    open.result.createObjectStore('docs');
  };
  const db = await request(open);
  db.onversionchange = () => {
    db.close();
    onClose();
  };
  const key = await dataKey(db);
  return new Vault(db, key);
}

async function dataKey(db) {
  const read = () => transaction(db, 'keys', 'readonly', (tx) => request(tx.objectStore('keys').get(KEY_ID)));
  let key = await read();
  if (key) return key;
  const made = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  try {
    // `add`, not `put`: when another tab made one at the same moment, theirs wins and we use it.
    await transaction(db, 'keys', 'readwrite', (tx) => tx.objectStore('keys').add(made, KEY_ID));
    return made;
  } catch {
    key = await read();
    if (key) return key;
    throw new Error('no data key');
  }
}

class Vault {
  constructor(db, key) {
    this.db = db;
    this.key = key;
  }

  /** Seals and writes the documents of `writes` ([name, text | null] pairs, null removes) in
   * one transaction: all of them land, or none. */
  async write(writes) {
    const sealed = await Promise.all(
      writes.map(async ([name, text]) => [name, text === null ? null : await this.seal(name, text)]),
    );
    await transaction(this.db, 'docs', 'readwrite', (tx) => {
      const docs = tx.objectStore('docs');
      for (const [name, value] of sealed) {
        if (value === null) docs.delete(name);
        else docs.put(value, name);
      }
    });
  }

  /** The text of document `name`; undefined when absent; '' when it cannot be opened (tampered,
   * or sealed under another key), which the core discards as unreadable. */
  async read(name) {
    const value = await transaction(this.db, 'docs', 'readonly', (tx) => request(tx.objectStore('docs').get(name)));
    return value === undefined ? undefined : this.open(name, value);
  }

  /** Every document whose name starts with `prefix`, as [name, text] pairs. */
  async readAll(prefix) {
    const range = IDBKeyRange.bound(prefix, prefix + '\uffff');
    const [names, values] = await transaction(this.db, 'docs', 'readonly', (tx) => {
      const docs = tx.objectStore('docs');
      return Promise.all([request(docs.getAllKeys(range)), request(docs.getAll(range))]);
    });
    return Promise.all(names.map(async (name, i) => [name, await this.open(name, values[i])]));
  }

  async seal(name, text) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(name) }, this.key, encoder.encode(text));
    return { iv, data };
  }

  async open(name, value) {
    try {
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: value.iv, additionalData: encoder.encode(name) }, this.key, value.data);
      return decoder.decode(plain);
    } catch {
      return '';
    }
  }
}
