//! The `#[wasm_bindgen]` API: one [`Sdk`] per SDK instance in the page, driven by the JavaScript
//! host (`js/host.js`) in the core's loop: hand in one input, then drain [`Sdk::poll`] and re-arm
//! the timer to [`Sdk::deadline`].
//!
//! Every time is the caller's `Date.now()`. Caller mistakes (a bad config, a consent call naming
//! an unknown purpose) throw an `Error` with a clear message; bad event input never throws: it is
//! dropped with a reason the page can see in `stats()` and diagnostics.

use crate::boundary;
use alloc::string::String;
use alloc::vec::Vec;
use consentry_core::{
    parse_retry_after, BatchId, Config, Consentry, DropReason, EventId, EventInput, PageInfo,
    SendOutcome, Timestamp, Uuid,
};
use wasm_bindgen::prelude::*;

/// One running SDK instance: the core and nothing else.
#[wasm_bindgen]
pub struct Sdk {
    core: Consentry,
}

/// A JS millisecond count as a timestamp; negative, NaN or infinite values become the epoch.
fn at(ms: f64) -> Timestamp {
    if ms.is_finite() && ms > 0.0 {
        // `as` saturates for floats: no overflow, no panic.
        Timestamp::from_unix_ms(ms as u64)
    } else {
        Timestamp::ZERO
    }
}

fn event_id(result: Result<EventId, DropReason>) -> Option<String> {
    result.ok().map(|id| id.0.to_hyphenated())
}

#[wasm_bindgen]
impl Sdk {
    /// Starts an instance from the JSON text of the page's config, eight random words from
    /// `crypto.getRandomValues` and the time.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &str, seed: &[u32], now: f64) -> Result<Sdk, JsError> {
        let config = Config::from_json(config).map_err(|e| JsError::new(&e.message()))?;
        let mut words = [0u64; 4];
        for (i, word) in seed.iter().take(8).enumerate() {
            if let Some(slot) = words.get_mut(i / 2) {
                *slot = (*slot << 32) | u64::from(*word);
            }
        }
        Ok(Sdk {
            core: Consentry::new(config, at(now), words),
        })
    }

    /// What the host needs from the config: `{batchUrl, storage, storagePrefix, debug}` as JSON.
    #[wasm_bindgen(js_name = hostConfig)]
    pub fn host_config(&self) -> String {
        let config = self.core.config();
        let mut out = String::new();
        let mut object = consentry_core::json::ObjectWriter::new(&mut out);
        object.str("batchUrl", &config.endpoint.batch_url());
        object.str(
            "storage",
            match config.storage {
                consentry_core::StorageMode::Local => "local",
                consentry_core::StorageMode::Memory => "memory",
            },
        );
        object.str("storagePrefix", &config.storage_prefix);
        object.bool("debug", config.debug);
        object.finish();
        out
    }

    /// Restores the stored consent and identity documents (what storage holds, if anything).
    pub fn restore(&mut self, now: f64, consent: Option<String>, identity: Option<String>) {
        self.core
            .restore(at(now), consent.as_deref(), identity.as_deref());
    }

    /// Offers a queue another page stored; `true` when the host should remove that key.
    #[wasm_bindgen(js_name = adoptQueue)]
    pub fn adopt_queue(&mut self, now: f64, text: &str) -> bool {
        self.core.adopt_queue(at(now), text)
    }

    /// Records choices given as the JSON of `{purpose: granted}`, with optional options JSON
    /// (`{document, location, hardwareId, source}`). Returns whether anything changed.
    #[wasm_bindgen(js_name = setConsent)]
    pub fn set_consent(
        &mut self,
        now: f64,
        choices: &str,
        options: Option<String>,
    ) -> Result<bool, JsError> {
        let choices = boundary::consent_choices(choices).map_err(|e| JsError::new(&e))?;
        let context =
            boundary::consent_context(options.as_deref()).map_err(|e| JsError::new(&e))?;
        let pairs: Vec<(&str, bool)> = choices
            .iter()
            .map(|(name, granted)| (name.as_str(), *granted))
            .collect();
        self.core
            .handle_consent(at(now), &pairs, &context)
            .map_err(|e| JsError::new(&e.message()))
    }

    /// Records the CCPA choice: `true` opts out of the sale of the visitor's data.
    #[wasm_bindgen(js_name = setCcpaOptOut)]
    pub fn set_ccpa_opt_out(
        &mut self,
        now: f64,
        opted_out: bool,
        options: Option<String>,
    ) -> Result<bool, JsError> {
        let context =
            boundary::consent_context(options.as_deref()).map_err(|e| JsError::new(&e))?;
        self.core
            .handle_ccpa_opt_out(at(now), opted_out, &context)
            .map_err(|e| JsError::new(&e.message()))
    }

    /// Another tab changed the stored consent (`None`: it was removed).
    #[wasm_bindgen(js_name = consentSync)]
    pub fn consent_sync(&mut self, now: f64, text: Option<String>) {
        self.core.handle_consent_sync(at(now), text.as_deref());
    }

    /// `track(name, properties, {purposes})`: `name` is `None` when the page passed a non-string,
    /// `properties` and `purposes` are JSON text (an empty string when serialising failed).
    /// Returns the event id when admitted.
    pub fn track(
        &mut self,
        now: f64,
        name: Option<String>,
        properties: Option<String>,
        purposes: Option<String>,
    ) -> Option<String> {
        let Some(name) = name else {
            return self.reject(DropReason::InvalidName);
        };
        self.capture(properties, purposes, |core, input| {
            core.handle_track(at(now), &name, input)
        })
    }

    /// `page(properties, {purposes})`, with what the browser reports of the page.
    pub fn page(
        &mut self,
        now: f64,
        url: Option<String>,
        title: Option<String>,
        referrer: Option<String>,
        properties: Option<String>,
        purposes: Option<String>,
    ) -> Option<String> {
        let page = PageInfo {
            url,
            title,
            referrer,
        };
        self.capture(properties, purposes, |core, input| {
            core.handle_page(at(now), &page, input)
        })
    }

    /// `identify(userId, traits, {purposes})`; `user_id` is `None` when the page passed a
    /// non-string.
    pub fn identify(
        &mut self,
        now: f64,
        user_id: Option<String>,
        traits: Option<String>,
        purposes: Option<String>,
    ) -> Option<String> {
        let Some(user_id) = user_id else {
            return self.reject(DropReason::InvalidUserId);
        };
        self.capture(traits, purposes, |core, input| {
            core.handle_identify(at(now), &user_id, input)
        })
    }

    /// The timer fired.
    pub fn timeout(&mut self, now: f64) {
        self.core.handle_timeout(at(now));
    }

    /// A send settled: `status` 0 means no response (network error, CORS, abort).
    #[wasm_bindgen(js_name = sendResult)]
    pub fn send_result(
        &mut self,
        now: f64,
        batch_id: &str,
        status: u16,
        retry_after: Option<String>,
    ) {
        let Some(batch_id) = Uuid::parse(batch_id) else {
            return;
        };
        let outcome = if status == 0 {
            SendOutcome::NetworkError
        } else {
            SendOutcome::Status {
                code: status,
                retry_after: retry_after.as_deref().and_then(parse_retry_after),
            }
        };
        self.core
            .handle_send_result(at(now), BatchId(batch_id), outcome);
    }

    /// The page was hidden (`visibilitychange`, `pagehide`) or shown again.
    pub fn visibility(&mut self, now: f64, hidden: bool) {
        self.core.handle_visibility(at(now), hidden);
    }

    /// The browser went online or offline.
    pub fn network(&mut self, now: f64, online: bool) {
        self.core.handle_network(at(now), online);
    }

    /// Storage refused to write a document (`c`, `i` or `q`).
    #[wasm_bindgen(js_name = storageFailed)]
    pub fn storage_failed(&mut self, now: f64, key: &str) {
        if let Some(key) = boundary::storage_key(key) {
            self.core.handle_storage_failure(at(now), key);
        }
    }

    /// Sends everything queued now.
    pub fn flush(&mut self, now: f64) {
        self.core.handle_flush(at(now));
    }

    /// Flushes, persists and refuses everything later.
    pub fn shutdown(&mut self, now: f64) {
        self.core.handle_shutdown(at(now));
    }

    /// The next output for the host, encoded as described in `boundary`, or `None` when drained.
    pub fn poll(&mut self) -> Option<String> {
        self.core.poll_output().map(boundary::encode_output)
    }

    /// When to call [`Sdk::timeout`] next (milliseconds since the epoch), or -1 for never.
    pub fn deadline(&self) -> f64 {
        self.core
            .poll_timeout()
            .map_or(-1.0, |t| t.as_unix_ms() as f64)
    }

    /// Whether a flush has finished: nothing is being flushed or is in flight.
    #[wasm_bindgen(js_name = isIdle)]
    pub fn is_idle(&self) -> bool {
        self.core.is_idle()
    }

    /// The consent in force as JSON: `{granted, hasChoices, ccpaOptOut, state}`.
    pub fn consent(&self) -> String {
        self.core.consent_json()
    }

    /// The counters as JSON.
    pub fn stats(&self) -> String {
        self.core.stats_json()
    }
}

impl Sdk {
    fn reject(&mut self, reason: DropReason) -> Option<String> {
        self.core.handle_rejected_input(reason);
        None
    }

    fn capture(
        &mut self,
        properties: Option<String>,
        purposes: Option<String>,
        handle: impl FnOnce(&mut Consentry, EventInput<'_>) -> Result<EventId, DropReason>,
    ) -> Option<String> {
        let purposes = match boundary::purposes(purposes.as_deref()) {
            Ok(purposes) => purposes,
            Err(reason) => return self.reject(reason),
        };
        let names: Option<Vec<&str>> = purposes
            .as_ref()
            .map(|p| p.iter().map(String::as_str).collect());
        let input = EventInput {
            properties: properties.as_deref(),
            purposes: names.as_deref(),
        };
        event_id(handle(&mut self.core, input))
    }
}
