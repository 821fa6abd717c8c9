//! The `#[wasm_bindgen]` API: one [`Sdk`] per SDK instance in the page, driven by the JavaScript
//! host (`js/host.js`) in the core's loop: hand in one input with [`Sdk::input`], drain
//! [`Input::Poll`] until it answers nothing, then re-arm the timer to [`Sdk::deadline`].
//!
//! The surface is deliberately three exports rather than one per operation: every export costs
//! the download its own argument-passing shim and glue (about 6 KB of wasm and 0.5 KB gzip of
//! JavaScript for the twenty the API had), and the public, typed API is the facade's
//! (`js/consentry.d.ts`) anyway.
//!
//! Every time is the caller's `Date.now()`. A bad config throws an `Error` naming the field; a
//! consent call the core refuses answers `!` and the message (the facade reports it); bad event
//! input never throws: it is dropped with a reason the page can see in `stats()` and diagnostics.

use crate::boundary;
use alloc::string::String;
use alloc::vec::Vec;
use consentry_core::{
    parse_retry_after, BatchId, Config, Consentry, Coordination, DropReason, Entropy, EventId,
    EventInput, Liveness, PageInfo, PeerId, Persistence, Role, SendOutcome, Timestamp, Uuid,
};
use wasm_bindgen::prelude::*;

/// What [`Sdk::input`] is asked to do, with the arguments each takes (`n` is the number, `a` to
/// `e` the strings) and what it answers. The discriminants are the numbers `js/inputs.js` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Input {
    /// `track`: `a` name, `b` properties JSON, `c` purposes JSON. Answers nothing: what became of
    /// the event is in the counters and diagnostics (an answer would cost every call a string).
    Track = 0,
    /// `page`: `a` URL, `b` title, `c` referrer, `d` properties JSON, `e` purposes JSON.
    Page = 1,
    /// `identify`: `a` user id, `b` traits JSON, `c` purposes JSON.
    Identify = 2,
    /// `setConsent`: `a` the JSON of `{purpose: granted}`, `b` options JSON
    /// (`{document, location, hardwareId, source}`), `e` 256 fresh random bits as 64 hex digits
    /// (used if the choice rotates the identity). Answers `1` changed, `0` unchanged, or `!`
    /// and the reason it was refused.
    SetConsent = 3,
    /// `setCcpaOptOut`: `n` 1 to opt out, 0 to opt in; `b` options JSON; `e` fresh bits.
    /// Answers as `SetConsent`.
    SetCcpaOptOut = 4,
    /// Another tab changed the stored consent: `a` the new document, absent when removed; `e`
    /// fresh bits.
    ConsentSync = 5,
    /// At start: `a` the stored consent document, `b` the stored identity document.
    Restore = 6,
    /// A queue another page stored: `a` its text, `b` that page's id (16 hex digits), `n` 1
    /// when that page is still open, 2 when it is gone, 0 when the host cannot tell. Answers `1`
    /// when the host should remove it.
    AdoptQueue = 7,
    /// The timer fired.
    Timeout = 8,
    /// A send settled: `a` batch id, `n` HTTP status (0: no response), `b` `Retry-After`.
    SendResult = 9,
    /// The page was hidden (`n` 1) or shown (`n` 0).
    Visibility = 10,
    /// The browser went online (`n` 1) or offline (`n` 0).
    Network = 11,
    /// Storage refused to write a document: `a` its name (`c`, `i`, or `q` and the slot digit).
    StorageFailed = 12,
    /// Send everything queued now.
    Flush = 13,
    /// Flush, persist, and refuse everything later.
    Shutdown = 14,
    /// Answers the next output, encoded as `boundary` describes, or nothing when drained.
    Poll = 15,
    /// Answers the consent in force as JSON: `{granted, hasChoices, ccpaOptOut, state}`.
    Consent = 16,
    /// Answers the counters as JSON.
    Stats = 17,
    /// Answers what the host needs: `{batchUrl, storage, storagePrefix, debug, pageId,
    /// maxInputChars}`.
    HostConfig = 18,
    /// Answers `1` when a flush has finished (nothing being flushed or in flight), else `0`.
    IsIdle = 19,
    /// Restoring and the replay of the page's early calls are done: sending may begin.
    Start = 20,
    /// How the host reaches other tabs: `n` 0 it cannot, 1 Web Locks, 2 heartbeats.
    Coordinate = 21,
    /// The browser's election (Web Locks): `n` 0 undecided, 1 leader, 2 follower.
    Role = 22,
    /// A message from another tab: `a` its text.
    Message = 23,
    /// The page is being unloaded (`pagehide`).
    Leaving = 24,
    /// Storage is short: `n` 1 only the consent record can be kept, 0 nothing can.
    StorageUnavailable = 25,
}

impl Input {
    /// Every input, in discriminant order.
    pub const ALL: [Input; 26] = [
        Input::Track,
        Input::Page,
        Input::Identify,
        Input::SetConsent,
        Input::SetCcpaOptOut,
        Input::ConsentSync,
        Input::Restore,
        Input::AdoptQueue,
        Input::Timeout,
        Input::SendResult,
        Input::Visibility,
        Input::Network,
        Input::StorageFailed,
        Input::Flush,
        Input::Shutdown,
        Input::Poll,
        Input::Consent,
        Input::Stats,
        Input::HostConfig,
        Input::IsIdle,
        Input::Start,
        Input::Coordinate,
        Input::Role,
        Input::Message,
        Input::Leaving,
        Input::StorageUnavailable,
    ];
}

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

fn flag(yes: bool) -> Option<String> {
    Some(String::from(if yes { "1" } else { "0" }))
}

/// A consent call's answer: `1`/`0` for changed or not, `!` and the reason when refused.
fn consent_answer(result: Result<bool, String>) -> Option<String> {
    match result {
        Ok(changed) => flag(changed),
        Err(reason) => Some(consentry_core::text::concat(&["!", &reason])),
    }
}

#[wasm_bindgen]
impl Sdk {
    /// Starts an instance from the JSON text of the page's config, eight random words from
    /// `crypto.getRandomValues` and the time.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &str, seed: &[u32], now: f64) -> Result<Sdk, JsError> {
        let config = Config::from_json(config).map_err(|e| JsError::new(&e.message()))?;
        let mut bytes = [0u8; 32];
        for (i, word) in seed.iter().take(8).enumerate() {
            for (j, byte) in word.to_le_bytes().into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(i * 4 + j) {
                    *slot = byte;
                }
            }
        }
        Ok(Sdk {
            core: Consentry::new(config, at(now), Entropy(bytes)),
        })
    }

    /// Hands the core one input (`kind`, an [`Input`] discriminant) and answers what it
    /// answers. Unknown kinds do nothing. Never throws.
    #[allow(clippy::too_many_arguments)]
    pub fn input(
        &mut self,
        kind: u8,
        now: f64,
        n: f64,
        a: Option<String>,
        b: Option<String>,
        c: Option<String>,
        d: Option<String>,
        e: Option<String>,
    ) -> Option<String> {
        let now = at(now);
        let kind = *Input::ALL.get(usize::from(kind))?;
        let core = &mut self.core;
        match kind {
            Input::Track => match a {
                Some(name) => capture(core, b, c, |core, input| {
                    core.handle_track(now, &name, input)
                }),
                None => reject(core, DropReason::InvalidName),
            },
            Input::Page => {
                let page = PageInfo {
                    url: a,
                    title: b,
                    referrer: c,
                };
                capture(core, d, e, |core, input| {
                    core.handle_page(now, &page, input)
                })
            }
            Input::Identify => match a {
                Some(user_id) => capture(core, b, c, |core, input| {
                    core.handle_identify(now, &user_id, input)
                }),
                None => reject(core, DropReason::InvalidUserId),
            },
            Input::SetConsent => {
                let fresh = boundary::entropy(e.as_deref());
                consent_answer(set_consent(core, now, a.as_deref(), b, &fresh))
            }
            Input::SetCcpaOptOut => {
                let fresh = boundary::entropy(e.as_deref());
                consent_answer(boundary::consent_context(b.as_deref()).and_then(|context| {
                    core.handle_ccpa_opt_out(now, n == 1.0, &context, &fresh)
                        .map_err(|e| e.message())
                }))
            }
            Input::ConsentSync => {
                core.handle_consent_sync(now, a.as_deref(), &boundary::entropy(e.as_deref()));
                None
            }
            Input::Restore => {
                core.restore(now, a.as_deref(), b.as_deref());
                None
            }
            Input::AdoptQueue => {
                let owner = PeerId::parse(b.as_deref().unwrap_or_default())?;
                let liveness = match n as u8 {
                    1 => Liveness::Alive,
                    2 => Liveness::Gone,
                    _ => Liveness::Unknown,
                };
                flag(core.adopt_queue(now, a.as_deref().unwrap_or_default(), owner, liveness))
            }
            Input::Timeout => {
                core.handle_timeout(now);
                None
            }
            Input::SendResult => {
                let batch_id = Uuid::parse(a.as_deref().unwrap_or_default())?;
                // `as` saturates: a status outside 0..=65535 cannot wrap into a valid one.
                let outcome = match n as u16 {
                    0 => SendOutcome::NetworkError,
                    code => SendOutcome::Status {
                        code,
                        retry_after: b.as_deref().and_then(parse_retry_after),
                    },
                };
                core.handle_send_result(now, BatchId(batch_id), outcome);
                None
            }
            Input::Visibility => {
                core.handle_visibility(now, n == 1.0);
                None
            }
            Input::Network => {
                core.handle_network(now, n == 1.0);
                None
            }
            Input::StorageFailed => {
                let key = boundary::storage_key(a.as_deref().unwrap_or_default())?;
                core.handle_storage_failure(now, key);
                None
            }
            Input::Flush => {
                core.handle_flush(now);
                None
            }
            Input::Shutdown => {
                core.handle_shutdown(now);
                None
            }
            Input::Poll => core.poll_output().map(boundary::encode_output),
            Input::Consent => Some(core.consent_json()),
            Input::Stats => Some(core.stats_json()),
            Input::HostConfig => Some(boundary::host_config(core)),
            Input::IsIdle => flag(core.is_idle()),
            Input::Start => {
                core.handle_start(now);
                None
            }
            Input::Coordinate => {
                let coordination = match n as u8 {
                    1 => Coordination::Locks,
                    2 => Coordination::Heartbeats,
                    _ => Coordination::Alone,
                };
                core.handle_coordination(now, coordination);
                None
            }
            Input::Role => {
                let role = match n as u8 {
                    1 => Role::Leader,
                    2 => Role::Follower,
                    _ => Role::Undecided,
                };
                core.handle_role(now, role);
                None
            }
            Input::Message => {
                core.handle_message(now, a.as_deref().unwrap_or_default());
                None
            }
            Input::Leaving => {
                core.handle_leaving(now);
                None
            }
            Input::StorageUnavailable => {
                let keeps = if n == 1.0 {
                    Persistence::ConsentOnly
                } else {
                    Persistence::Nothing
                };
                core.handle_storage_unavailable(now, keeps);
                None
            }
        }
    }

    /// When to hand in [`Input::Timeout`] next (milliseconds since the epoch), or -1 for never.
    pub fn deadline(&self) -> f64 {
        self.core
            .poll_timeout()
            .map_or(-1.0, |t| t.as_unix_ms() as f64)
    }
}

fn reject(core: &mut Consentry, reason: DropReason) -> Option<String> {
    core.handle_rejected_input(reason);
    None
}

fn set_consent(
    core: &mut Consentry,
    now: Timestamp,
    choices: Option<&str>,
    options: Option<String>,
    fresh: &Entropy,
) -> Result<bool, String> {
    let choices = boundary::consent_choices(choices.unwrap_or_default())?;
    let context = boundary::consent_context(options.as_deref())?;
    let pairs: Vec<(&str, bool)> = choices
        .iter()
        .map(|(name, granted)| (name.as_str(), *granted))
        .collect();
    core.handle_consent(now, &pairs, &context, fresh)
        .map_err(|e| e.message())
}

/// Reads an event call's properties and purposes and hands them to `handle`.
fn capture(
    core: &mut Consentry,
    properties: Option<String>,
    purposes: Option<String>,
    handle: impl FnOnce(&mut Consentry, EventInput<'_>) -> Result<EventId, DropReason>,
) -> Option<String> {
    let purposes = match boundary::purposes(purposes.as_deref()) {
        Ok(purposes) => purposes,
        Err(reason) => return reject(core, reason),
    };
    let names: Option<Vec<&str>> = purposes
        .as_ref()
        .map(|p| p.iter().map(String::as_str).collect());
    let input = EventInput {
        properties: properties.as_deref(),
        purposes: names.as_deref(),
    };
    // The outcome is counted (and a drop reported) by the core; the page needs no answer.
    let _ = handle(core, input);
    None
}

#[cfg(test)]
mod tests {
    use super::Input;
    use alloc::format;
    use alloc::string::String;

    #[test]
    fn inputs_are_numbered_in_order() {
        for (number, input) in Input::ALL.iter().enumerate() {
            assert_eq!(*input as usize, number, "{input:?}");
        }
    }

    #[test]
    fn the_published_declarations_list_every_drop_reason() {
        let declarations = include_str!("../js/consentry.d.ts");
        for reason in consentry_core::DropReason::ALL {
            let line = format!("| '{}'", reason.as_str());
            assert!(
                declarations.contains(&line),
                "js/consentry.d.ts lacks `{line}`"
            );
        }
    }

    #[test]
    fn the_javascript_host_numbers_inputs_the_same_way() {
        let host = include_str!("../js/inputs.js");
        for input in Input::ALL {
            let mut constant = String::new();
            for (i, c) in format!("{input:?}").chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    constant.push('_');
                }
                constant.push(c.to_ascii_uppercase());
            }
            let line = format!("export const {constant} = {};", input as u8);
            assert!(host.contains(&line), "js/inputs.js lacks `{line}`");
        }
        assert_eq!(host.matches("export const").count(), Input::ALL.len());
    }
}
