//! Defence in depth on consent: the SDK only sends events whose purposes are granted, and the
//! collector checks again against the batch's own `consent_state` before storing anything.
//!
//! An event is refused when one of its purposes is absent from `gdpr` or recorded with
//! `consented: false`, or when the visitor opted out of the sale of their data
//! (`ccpa.data_sale_opt_out.consented: true`) and one of its purposes counts as a sale.
//! Refusals are counted and reported by id and reason; their content is never logged.

use crate::wire::ConsentState;
use std::collections::BTreeSet;

/// Why an event was not stored although its batch was valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// A purpose the event needs is not granted in the batch's consent state.
    PurposeNotGranted,
    /// The visitor opted out of the sale of their data and the event needs a sale purpose.
    SaleOptedOut,
}

impl RefusalReason {
    /// The snake_case name used in responses and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::PurposeNotGranted => "purpose_not_granted",
            RefusalReason::SaleOptedOut => "sale_opted_out",
        }
    }
}

/// The purposes that count as a sale of data under CCPA (`--sale-purposes`).
#[derive(Clone, Debug, Default)]
pub struct SalePurposes(BTreeSet<String>);

impl SalePurposes {
    /// The given purpose names.
    pub fn new<I: IntoIterator<Item = String>>(names: I) -> Self {
        SalePurposes(names.into_iter().collect())
    }

    /// Whether `purpose` counts as a sale.
    pub fn contains(&self, purpose: &str) -> bool {
        self.0.contains(purpose)
    }
}

/// Whether an event needing `purposes` may be stored under `state`.
pub fn check_event(
    purposes: &[String],
    state: &ConsentState,
    sale: &SalePurposes,
) -> Result<(), RefusalReason> {
    let granted = |p: &String| state.gdpr.get(p).is_some_and(|record| record.consented);
    if !purposes.iter().all(granted) {
        return Err(RefusalReason::PurposeNotGranted);
    }
    let opted_out = state
        .ccpa
        .as_ref()
        .and_then(|c| c.data_sale_opt_out.as_ref())
        .is_some_and(|record| record.consented);
    if opted_out && purposes.iter().any(|p| sale.contains(p)) {
        return Err(RefusalReason::SaleOptedOut);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Ccpa, ConsentRecord, ConsentSource};

    fn record(consented: bool) -> ConsentRecord {
        ConsentRecord {
            consented,
            timestamp_unixtime_ms: Some(1),
            document: None,
            location: None,
            hardware_id: None,
            source: ConsentSource::User,
        }
    }

    fn state(gdpr: &[(&str, bool)], sale_opt_out: Option<bool>) -> ConsentState {
        ConsentState {
            gdpr: gdpr
                .iter()
                .map(|&(name, consented)| (name.to_owned(), record(consented)))
                .collect(),
            ccpa: sale_opt_out.map(|c| Ccpa {
                data_sale_opt_out: Some(record(c)),
            }),
        }
    }

    #[test]
    fn purposes_are_checked_against_the_batch_consent() {
        let sale = SalePurposes::new(["advertising".to_owned()]);
        let granted = [
            ("necessary", true),
            ("analytics", true),
            ("advertising", true),
        ];
        let denied_ads = [
            ("necessary", true),
            ("analytics", true),
            ("advertising", false),
        ];
        type Case<'a> = (
            &'a [&'a str],
            &'a [(&'a str, bool)],
            Option<bool>,
            Result<(), RefusalReason>,
        );
        let cases: &[Case] = &[
            (&["analytics"], &granted, None, Ok(())),
            (&["necessary", "analytics"], &granted, Some(false), Ok(())),
            (&["advertising"], &granted, Some(false), Ok(())),
            (
                &["advertising"],
                &denied_ads,
                None,
                Err(RefusalReason::PurposeNotGranted),
            ),
            (
                &["analytics", "advertising"],
                &denied_ads,
                None,
                Err(RefusalReason::PurposeNotGranted),
            ),
            (
                &["personalization"],
                &granted,
                None,
                Err(RefusalReason::PurposeNotGranted),
            ),
            (
                &["advertising"],
                &granted,
                Some(true),
                Err(RefusalReason::SaleOptedOut),
            ),
            (&["analytics"], &granted, Some(true), Ok(())),
        ];
        for (purposes, gdpr, opt_out, expected) in cases {
            let purposes: Vec<String> = purposes.iter().map(|p| (*p).to_owned()).collect();
            assert_eq!(
                check_event(&purposes, &state(gdpr, *opt_out), &sale),
                *expected,
                "{purposes:?} {gdpr:?} {opt_out:?}"
            );
        }
    }
}
