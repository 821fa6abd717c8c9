// An app as a bundler user writes it: `import ... from 'consentry'`. The bundle test builds this
// with esbuild, resolving 'consentry' to the built package, and serves the wasm next to it.
import { Consentry } from 'consentry';

const params = new URLSearchParams(location.search);
const cx = await Consentry.init({
  endpoint: params.get('endpoint'),
  apiKey: 'pk_test',
  purposes: ['analytics'],
  defaultPurposes: ['analytics'],
});
await cx.setConsent({ analytics: true });
cx.track('from a bundle');
await cx.flush();
document.body.dataset.done = 'yes';
