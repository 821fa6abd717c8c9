// The demo's entry point: reads where the collector is (/demo-config.json, written by the server
// that serves this page), starts Consentry from the built npm package, and wires the consent UI,
// the shop and the inspector to it. The SDK is `window.consentry` for the browser's console.

import { Consentry } from '/pkg/consentry.js';
import { startConsentUi } from './consent-ui.js';
import { startShop } from './shop.js';
import { startInspector } from './inspector.js';

/** The notice the banner and the preference centre show; every choice records it. */
const NOTICE_VERSION = 'notice-v1';

const status = document.getElementById('sdk-status');

async function main() {
  const where = await fetch('/demo-config.json', { cache: 'no-store' }).then((r) => r.json());
  const cx = await Consentry.init({
    endpoint: where.endpoint,
    apiKey: where.apiKey,
    purposes: ['analytics', 'personalization', 'advertising'],
    salePurposes: ['advertising'],
    defaultPurposes: ['analytics'],
    rules: [
      { event: 'ad_*', purposes: ['advertising'] },
      { event: 'recommendation_*', purposes: ['personalization'] },
    ],
    flushIntervalMs: 1000,
  });
  window.consentry = cx;
  for (const node of document.querySelectorAll('.notice-version')) node.textContent = NOTICE_VERSION;
  const inspector = startInspector(cx);
  const shop = startShop(cx, inspector.refresh);
  startConsentUi(cx, NOTICE_VERSION, inspector.refresh);
  shop.viewPage();
  status.textContent = 'Consentry is ready.';
  document.body.dataset.ready = 'yes';
}

main().catch((error) => {
  status.textContent = 'Consentry did not start: ' + error.message;
  document.body.dataset.ready = 'failed';
});
