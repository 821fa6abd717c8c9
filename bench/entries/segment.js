// Segment's analytics-next with settings given inline (no CDN fetch), posting to the local sink.
import { AnalyticsBrowser } from '@segment/analytics-next';

export async function setup(endpoint) {
  const host = new URL(endpoint).host;
  const [analytics] = await AnalyticsBrowser.load(
    {
      writeKey: 'bench',
      cdnSettings: { integrations: { 'Segment.io': { apiKey: 'bench', apiHost: host + '/v1', protocol: 'http' } } },
    },
    { disableClientPersistence: true },
  );
  return { track: (i) => void analytics.track('Product Viewed', { sku: 'tea-' + i, price: 4.5, currency: 'EUR' }) };
}
