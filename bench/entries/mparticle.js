// mParticle's web SDK, bundled for its size only (its runtime needs mParticle's identity service).
import mParticle from '@mparticle/web-sdk';

export async function setup() {
  return { track: (i) => mParticle.logEvent('Product Viewed', mParticle.EventType.Navigation, { sku: 'tea-' + i }) };
}
