// Randomness for the core, which has no source of its own: 256 fresh bits from the browser's
// cryptographically secure generator, handed in with every input that may rotate the identity.

/** 256 fresh random bits as 64 hex digits. */
export function freshEntropy() {
  return Array.from(crypto.getRandomValues(new Uint32Array(8)), (w) => w.toString(16).padStart(8, '0')).join('');
}
