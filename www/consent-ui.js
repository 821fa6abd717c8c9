// The consent banner and the preference centre. Both are modal <dialog>s: keyboard reachable,
// focus kept inside while open (Tab and Shift+Tab wrap), Escape closes the preference centre but
// never dismisses the banner without a choice, and focus returns to what opened them. Every
// choice goes through the SDK with the notice version and where it was made.

const PURPOSES = ['analytics', 'personalization', 'advertising'];

const all = (value) => Object.fromEntries(PURPOSES.map((purpose) => [purpose, value]));

/** Focusable, enabled controls of `dialog`, in tab order. */
function focusables(dialog) {
  return [...dialog.querySelectorAll('button, input, select, textarea, a[href], [tabindex]')].filter(
    (node) => !node.disabled && node.tabIndex >= 0 && node.getClientRects().length > 0,
  );
}

/** Keeps Tab and Shift+Tab inside `dialog` while it is open. */
function trapFocus(dialog) {
  dialog.addEventListener('keydown', (event) => {
    if (event.key !== 'Tab') return;
    const nodes = focusables(dialog);
    if (nodes.length === 0) return;
    const first = nodes[0];
    const last = nodes[nodes.length - 1];
    const inside = dialog.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  });
}

/** Shows the banner when no choice is recorded, and opens the preference centre on request. */
export function startConsentUi(cx, noticeVersion, onChange) {
  const banner = document.getElementById('banner');
  const preferences = document.getElementById('preferences');
  const form = document.getElementById('preferences-form');
  let returnFocus = null;

  const open = (dialog) => {
    if (!dialog.open) {
      returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;
      dialog.showModal();
    }
    focusables(dialog)[0]?.focus();
  };
  const close = (dialog) => {
    if (dialog.open) dialog.close();
    if (!banner.open && !preferences.open) returnFocus?.focus();
  };

  async function record(choices, ccpaOptOut, location) {
    const options = { document: noticeVersion, location };
    await cx.setConsent(choices, options);
    const current = cx.consent();
    if (ccpaOptOut !== undefined && current && current.ccpaOptOut !== ccpaOptOut) {
      await cx.setCcpaOptOut(ccpaOptOut, options);
    }
    onChange();
  }

  function openPreferences({ focus } = {}) {
    const current = cx.consent();
    for (const purpose of PURPOSES) form.elements[purpose].checked = current?.granted.includes(purpose) ?? false;
    form.elements.ccpa.checked = current?.ccpaOptOut ?? false;
    if (banner.open) banner.close();
    open(preferences);
    if (focus) form.elements[focus].focus();
  }

  banner.addEventListener('click', async (event) => {
    const choice = event.target.closest('button')?.dataset.choice;
    if (choice === 'customise') return openPreferences();
    if (choice !== 'accept' && choice !== 'reject') return;
    close(banner);
    await record(all(choice === 'accept'), undefined, 'banner');
  });
  // The banner asks for a choice: Escape does not make one. (Chromium lets a page keep a dialog
  // open on Escape only after a user activation, so a banner closed without a choice reopens.)
  banner.addEventListener('cancel', (event) => event.preventDefault());
  banner.addEventListener('close', () => {
    if (!cx.consent()?.hasChoices && !preferences.open) open(banner);
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const action = event.submitter?.value ?? 'save';
    const choices = action === 'save'
      ? Object.fromEntries(PURPOSES.map((purpose) => [purpose, form.elements[purpose].checked]))
      : all(action === 'accept');
    close(preferences);
    await record(choices, form.elements.ccpa.checked, 'preference_centre');
  });
  // Escape leaves the preference centre; without a recorded choice the banner comes back.
  preferences.addEventListener('cancel', (event) => {
    event.preventDefault();
    close(preferences);
    if (!cx.consent()?.hasChoices) open(banner);
  });

  trapFocus(banner);
  trapFocus(preferences);
  document.getElementById('open-preferences').addEventListener('click', () => openPreferences());
  document.getElementById('open-ccpa').addEventListener('click', () => openPreferences({ focus: 'ccpa' }));

  if (!cx.consent()?.hasChoices) open(banner);
}
