// Snowplow's browser tracker with a structured event per call, posting to the local sink. Its
// queue holds 1,000 events by default and drops the rest; it is raised so every event is sent.
import { newTracker, trackStructEvent } from '@snowplow/browser-tracker';

export async function setup(endpoint) {
  newTracker('bench', endpoint, { appId: 'bench', eventMethod: 'post', bufferSize: 20, stateStorageStrategy: 'none', anonymousTracking: true, maxLocalStorageQueueSize: 100000 });
  return {
    track: (i) => trackStructEvent({ category: 'shop', action: 'Product Viewed', label: 'tea-' + i, property: 'EUR', value: 4.5 }),
  };
}
