// Reads every storage area a page of this origin can reach, from inside the page: localStorage,
// sessionStorage, every IndexedDB database (every record of every object store), cookies and
// Cache Storage. Binary values (ArrayBuffers, typed arrays) are read as Latin-1 text, so a
// search for a plain-text value finds it wherever it sits, sealed or not.

/** Runs in the page (pass to `page.evaluate`): answers { areas, text }, where `areas` names
 * every entry found and `text` is everything they hold, concatenated. */
export async function scanStorage() {
  const parts = [];
  const areas = [];
  const latin1 = new TextDecoder('latin1');
  const asText = (value, seen = new Set()) => {
    if (value === null || value === undefined) return String(value);
    if (typeof value === 'string') return value;
    if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return latin1.decode(value);
    if (typeof CryptoKey === 'function' && value instanceof CryptoKey) return `[CryptoKey extractable=${value.extractable}]`;
    if (typeof value === 'object') {
      if (seen.has(value)) return '';
      seen.add(value);
      return Object.entries(value).map(([k, v]) => k + '=' + asText(v, seen)).join(';');
    }
    return String(value);
  };
  for (const [name, area] of [['localStorage', localStorage], ['sessionStorage', sessionStorage]]) {
    for (let i = 0; i < area.length; i++) {
      const key = area.key(i);
      areas.push(`${name}:${key}`);
      parts.push(key, area.getItem(key));
    }
  }
  for (const { name } of await indexedDB.databases()) {
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open(name);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    for (const store of db.objectStoreNames) {
      const [keys, values] = await new Promise((resolve, reject) => {
        const tx = db.transaction(store, 'readonly');
        const keys = tx.objectStore(store).getAllKeys();
        const values = tx.objectStore(store).getAll();
        tx.oncomplete = () => resolve([keys.result, values.result]);
        tx.onerror = () => reject(tx.error);
      });
      keys.forEach((key, i) => {
        areas.push(`indexedDB:${name}/${store}/${key}`);
        parts.push(String(key), asText(values[i]));
      });
    }
    db.close();
  }
  if (document.cookie) {
    areas.push('cookie');
    parts.push(document.cookie);
  }
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      areas.push(`cache:${name}/${request.url}`);
      parts.push(request.url, await (await cache.match(request)).text());
    }
  }
  return { areas, text: parts.join('\n') };
}
