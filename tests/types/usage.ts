// Compiles only if the published declarations support what a TypeScript user writes.
import Consentry, { type ConsentSnapshot, type Diagnostics, type Stats } from '../../pkg/consentry.js';

async function main(): Promise<void> {
  const cx = await Consentry.init({
    endpoint: 'https://collect.example.com',
    apiKey: 'pk_live_123',
    purposes: ['analytics', 'advertising'],
    salePurposes: ['advertising'],
    defaultPurposes: ['analytics'],
    rules: [{ event: 'ad_*', purposes: ['advertising'] }, { type: 'page', purposes: ['analytics'] }],
    flushAt: 10,
    retry: { maxAttempts: 5 },
    storage: 'local',
  });
  const changed: boolean = await cx.setConsent({ analytics: true }, { document: 'notice-v3', location: 'banner' });
  await cx.setCcpaOptOut(true, { source: 'api' });
  cx.track('Product Viewed', { sku: 'tea-001', price: 4.5 }, { purposes: ['analytics'] });
  cx.page();
  cx.identify('user-42', { plan: 'pro' });
  const stop = cx.on('drop', (detail: Diagnostics['drop']) => console.log(detail.reason, detail.count));
  stop();
  const consent: ConsentSnapshot | null = cx.consent();
  const stats: Stats | null = cx.stats();
  console.log(changed, consent?.granted, stats?.dropped.consent_denied);
  await cx.flush();
  await cx.shutdown();
  const early = Consentry.create({ endpoint: 'https://c.example', apiKey: 'k', purposes: [] });
  await early.ready;
  // @ts-expect-error: storage must be 'local' or 'memory'
  Consentry.create({ endpoint: 'https://c.example', apiKey: 'k', purposes: [], storage: 'cookie' });
}

void main;
