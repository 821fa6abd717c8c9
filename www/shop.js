// The shop's buttons, each reporting an event through the SDK, and the activity list that says
// what the SDK did with each call: admitted (queued to send) or withheld, with the reason. The
// outcome is read from the SDK's own counters before and after the call; the demo decides nothing.

const MAX_ACTIVITY = 30;

/** The reasons whose counters grew between two `stats()` readings. */
function newReasons(before, after) {
  return Object.keys(after.dropped).filter((reason) => after.dropped[reason] > (before.dropped[reason] ?? 0));
}

/** Wires the shop's buttons to `cx`; `onChange` refreshes the inspector. */
export function startShop(cx, onChange) {
  const activity = document.getElementById('activity');
  const recommendations = document.getElementById('recommendations');

  function report(label, call) {
    const before = cx.stats();
    call();
    const after = cx.stats();
    const item = document.createElement('li');
    const reasons = newReasons(before, after);
    if (after.admitted > before.admitted) {
      item.className = 'admitted';
      item.textContent = `${label}: admitted`;
    } else {
      item.className = 'withheld';
      item.textContent = `${label}: withheld (${reasons.join(', ') || 'dropped'})`;
    }
    activity.prepend(item);
    while (activity.children.length > MAX_ACTIVITY) activity.lastElementChild.remove();
    onChange();
  }

  const actions = {
    view: (product) => report(`Product Viewed ${product.sku}`, () => cx.track('Product Viewed', product)),
    add: (product) => report(`Product Added ${product.sku}`, () => cx.track('Product Added', product)),
    recommend: () => {
      report('recommendation_shown', () => cx.track('recommendation_shown', { slot: 'picked_for_you' }));
      const allowed = cx.consent()?.granted.includes('personalization');
      recommendations.textContent = allowed
        ? 'Because you looked at green tea: Gyokuro, Genmaicha.'
        : 'Personalisation is off: here are our best sellers instead.';
    },
    ad: () => report('ad_click', () => cx.track('ad_click', { campaign: 'spring_sale' })),
    identify: () => report('identify user-42', () => cx.identify('user-42', { plan: 'tea-club' })),
  };

  document.getElementById('shop').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const card = button.closest('.product');
    const product = card ? { sku: card.dataset.sku, price: Number(card.dataset.price) } : undefined;
    actions[button.dataset.action]?.(product);
  });

  return {
    /** Reports this page view (URL and referrer leave the browser without query or fragment). */
    viewPage: () => report('page view', () => cx.page({ section: 'teas' })),
  };
}
