// The site's other tabs: a BroadcastChannel for the core's messages, and Web Locks for the two
// things only the browser can say for sure: which page holds the uploader lock (it sends for
// all), and which pages are still open (each holds its own page lock for its lifetime). Who
// sends what, and which queues to adopt, the core decides; without Web Locks (missing, or
// refused, as in an opaque-origin frame) it elects the leader itself by heartbeats, and without
// a BroadcastChannel, or when the consent record is not shared between tabs, every page sends
// for itself.
//
// Every name carries the configuration's scope (its endpoint and API key), so two SDK
// configurations sharing a storage prefix never relay to, or adopt from, each other.

import { COORDINATE, MESSAGE, ROLE } from './inputs.js';

const ALONE = 0;
const LOCKS = 1;
const HEARTBEATS = 2;
const UNDECIDED = 0;
const LEADER = 1;
const FOLLOWER = 2;

/** Liveness answers for ADOPT_QUEUE. */
const UNKNOWN = 0;
const ALIVE = 1;
const GONE = 2;

/** The site's tabs for the page `pageId` of configuration `scope`; `shared` says whether the
 * consent record is shared between tabs (without it, tabs cannot vouch for each other's
 * batches). `join()` tells the core how they coordinate and starts listening. */
export function joinTabs(host, prefix, scope, pageId, shared) {
  const name = prefix + ':v1:' + scope + ':';
  const channel = shared && typeof BroadcastChannel === 'function' ? new BroadcastChannel(name + 'tabs') : null;
  let locks = globalThis.navigator?.locks?.request ? navigator.locks : null;
  const uploader = name + 'uploader';
  const pageLock = (id) => name + 'page:' + id;
  let stopped = false;
  let releaseLeader = null;
  let releasePage = null;
  let waiting = null; // aborts the queued uploader request

  const tell = (kind, n, text) => host.input((sdk) => sdk.input(kind, Date.now(), n, text));
  const hold = (setRelease) => new Promise((resolve) => setRelease(resolve));

  // The browser refused a lock: the tabs elect among themselves (or this page sends alone).
  function refused() {
    if (!locks || stopped) return;
    locks = null;
    stepDown();
    tell(COORDINATE, channel ? HEARTBEATS : ALONE);
  }

  function lead() {
    if (stopped || !locks || releaseLeader || waiting) return;
    const take = () => {
      if (stopped) return undefined;
      tell(ROLE, LEADER);
      return hold((release) => (releaseLeader = release));
    };
    try {
      locks
        .request(uploader, { ifAvailable: true }, (lock) => {
          if (lock) return take();
          tell(ROLE, FOLLOWER);
          waiting = new AbortController();
          locks
            ?.request(uploader, { signal: waiting.signal }, () => {
              waiting = null;
              return take();
            })
            .catch((error) => error?.name !== 'AbortError' && refused());
          return undefined;
        })
        .catch(refused);
    } catch {
      refused();
    }
  }

  function stepDown() {
    waiting?.abort();
    waiting = null;
    releaseLeader?.();
    releaseLeader = null;
  }

  return {
    join() {
      if (channel) {
        channel.onmessage = (event) => {
          if (typeof event.data === 'string') tell(MESSAGE, 0, event.data);
        };
      }
      if (locks) {
        try {
          locks.request(pageLock(pageId), () => hold((release) => (releasePage = release))).catch(refused);
        } catch {
          refused();
        }
      }
      if (!channel) {
        tell(COORDINATE, ALONE);
      } else if (locks) {
        tell(COORDINATE, LOCKS);
        lead();
      } else {
        tell(COORDINATE, HEARTBEATS);
      }
    },

    /** Posts one of the core's messages to the other tabs. */
    post(text) {
      try {
        channel?.postMessage(text);
      } catch {
        // The channel closed with the page: the other tabs hear its goodbye or its silence.
      }
    },

    /** For each page id, whether that page is still open: its page lock is held. */
    async liveness(owners) {
      if (!locks) return owners.map(() => UNKNOWN);
      try {
        const { held } = await locks.query();
        const names = new Set(held.map((lock) => lock.name));
        return owners.map((owner) => (names.has(pageLock(owner)) ? ALIVE : GONE));
      } catch {
        return owners.map(() => UNKNOWN);
      }
    },

    /** The page froze: a frozen page must not keep the uploader lock from the others. */
    freeze() {
      if (!locks || !channel) return;
      stepDown();
      tell(ROLE, UNDECIDED);
    },

    /** The page resumed: it queues for the uploader lock again. */
    resume() {
      if (channel) lead();
    },

    stop() {
      stopped = true;
      stepDown();
      releasePage?.();
      channel?.close();
    },
  };
}
