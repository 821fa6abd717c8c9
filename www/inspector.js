// The live inspector: the consent in force and the SDK's counters (what it admitted, delivered,
// queued and withheld, by reason), beside what the collector stored, read through this site's
// /inspector/api/ proxy (the server adds the admin token; the page never sees it).

const POLL_MS = 1000;
const MAX_ROWS = 40;

function facts(list, entries) {
  list.replaceChildren(
    ...entries.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = String(value);
      dd.dataset.fact = term;
      return [dt, dd];
    }),
  );
}

function row(cells, className) {
  const tr = document.createElement('tr');
  if (className) tr.className = className;
  for (const cell of cells) {
    const td = document.createElement('td');
    td.textContent = cell;
    tr.append(td);
  }
  return tr;
}

/** Starts polling; returns `refresh()` for when the page knows something changed. */
export function startInspector(cx) {
  const consentState = document.getElementById('consent-state');
  const counters = document.getElementById('sdk-counters');
  const withheld = document.getElementById('withheld');
  const collectorCounters = document.getElementById('collector-counters');
  const storedEvents = document.getElementById('stored-events');
  const collectorStatus = document.getElementById('collector-status');
  const stored = [];
  let since = 0;
  let polling = false;

  function showSdk() {
    const consent = cx.consent();
    const stats = cx.stats();
    if (!consent || !stats) return;
    facts(consentState, [
      ['granted', consent.granted.join(', ')],
      ['choice recorded', consent.hasChoices ? 'yes' : 'no'],
      ['CCPA opt-out', consent.ccpaOptOut ? 'yes' : 'no'],
    ]);
    facts(counters, [
      ['admitted', stats.admitted],
      ['delivered', stats.delivered],
      ['queued', stats.queued],
      ['in flight', stats.inFlight],
      ['retries', stats.retries],
    ]);
    const reasons = Object.entries(stats.dropped).filter(([, count]) => count > 0);
    withheld.replaceChildren(
      ...(reasons.length ? reasons.map(([reason, count]) => row([reason, String(count)])) : [row(['none', '0'])]),
    );
  }

  async function pollCollector() {
    if (polling) return;
    polling = true;
    try {
      for (;;) {
        const page = await fetch(`/inspector/api/v1/events?since=${since}&limit=200`).then(ok);
        stored.push(...page.events);
        since = page.next_since;
        if (page.events.length < 200) break;
      }
      stored.splice(0, Math.max(0, stored.length - MAX_ROWS));
      storedEvents.replaceChildren(
        ...stored
          .slice()
          .reverse()
          .map((e) => row([String(e.seq), e.type, e.name ?? '', e.purposes.join(', ')], e.type)),
      );
      const stats = await fetch('/inspector/api/v1/stats').then(ok);
      facts(collectorCounters, [
        ['events stored', stats.events],
        ['consent changes', stats.consent_changes],
        ['duplicates ignored', stats.duplicates],
        ['refused (consent re-check)', stats.refused],
      ]);
      collectorStatus.textContent = '';
    } catch (error) {
      collectorStatus.textContent = 'Collector unreachable: ' + error.message;
    } finally {
      polling = false;
    }
  }

  const refresh = () => {
    showSdk();
    pollCollector();
  };
  for (const type of ['drop', 'deliver', 'retry', 'consent', 'storage']) cx.on(type, showSdk);
  refresh();
  setInterval(refresh, POLL_MS);
  return { refresh };
}

async function ok(response) {
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}
