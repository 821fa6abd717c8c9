// Snowplow's browser tracker with a structured event per call, posting to the local sink.
import { newTracker, trackStructEvent } from '@snowplow/browser-tracker';

export async function setup(endpoint) {
  newTracker('bench', endpoint, { appId: 'bench', eventMethod: 'post', bufferSize: 20, stateStorageStrategy: 'none', anonymousTracking: true });
  return {
    track: (i) => trackStructEvent({ category: 'shop', action: 'Product Viewed', label: 'tea-' + i, property: 'EUR', value: 4.5 }),
  };
}
