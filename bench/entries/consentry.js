// Consentry as a site uses it, with its defaults (storage on): init, consent granted, track.
import { Consentry } from '/pkg/consentry.js';

export async function setup(endpoint) {
  const cx = await Consentry.init({
    endpoint,
    apiKey: 'pk_bench',
    purposes: ['analytics'],
    defaultPurposes: ['analytics'],
  });
  await cx.setConsent({ analytics: true });
  return {
    track: (i) => cx.track('Product Viewed', { sku: 'tea-' + i, price: 4.5, currency: 'EUR' }),
    flush: () => cx.flush(),
    retries: () => cx.stats().retries,
  };
}
