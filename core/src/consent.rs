//! The consent model: one record per purpose and one for the CCPA sale opt-out.
//!
//! Every non-essential purpose is denied until the visitor's choice is recorded; essential
//! purposes are always granted and never recorded. Applying the same choice again is not a change.

use crate::json::{write_str, ObjectWriter, Value};
use crate::purpose::{PurposeCatalog, PurposeSet};
use crate::time::Timestamp;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// The longest document, location or hardware id a consent record keeps, in bytes.
pub const MAX_CONSENT_FIELD_BYTES: usize = 256;

/// Who made a choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentSource {
    /// The visitor, in a consent interface.
    User,
    /// The site's code.
    Api,
    /// The site's configuration: essential purposes.
    Default,
}

impl ConsentSource {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::User => "user",
            ConsentSource::Api => "api",
            ConsentSource::Default => "default",
        }
    }

    /// The source named `name` on the wire.
    pub fn from_wire(name: &str) -> Option<ConsentSource> {
        match name {
            "user" => Some(ConsentSource::User),
            "api" => Some(ConsentSource::Api),
            "default" => Some(ConsentSource::Default),
            _ => None,
        }
    }
}

/// Where and under which notice a choice was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentContext {
    /// The notice version the visitor saw.
    pub document: Option<String>,
    /// Where the choice was collected (`banner`, `preference_centre`, ...).
    pub location: Option<String>,
    /// A device id the site chose to attach.
    pub hardware_id: Option<String>,
    /// Who made the choice.
    pub source: ConsentSource,
}

impl ConsentContext {
    /// A choice made by the visitor with no further detail.
    pub fn user() -> Self {
        ConsentContext {
            document: None,
            location: None,
            hardware_id: None,
            source: ConsentSource::User,
        }
    }
}

/// One recorded choice, shaped like mParticle's consent state records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    /// Granted (for a purpose) or opted out (for the CCPA sale opt-out).
    pub consented: bool,
    /// When the choice was made.
    pub timestamp: Timestamp,
    /// Notice version, location, hardware id and source.
    pub context: ConsentContext,
}

impl ConsentRecord {
    /// Whether `self` records the same choice as a new one with `consented` under `context`: a
    /// repeated choice under the same notice changes nothing.
    fn same_choice(&self, consented: bool, context: &ConsentContext) -> bool {
        self.consented == consented && self.context.document == context.document
    }

    /// Writes the record with as much of it as `detail` allows.
    fn write(&self, out: &mut String, detail: Detail) {
        let full = match detail {
            Detail::Summary => false,
            Detail::MadeAfter(since) => self.timestamp > since,
            Detail::Full | Detail::Stored => true,
        };
        let mut record = ObjectWriter::new(out);
        record.bool("consented", self.consented);
        if full {
            record.u64("timestamp_unixtime_ms", self.timestamp.as_unix_ms());
            record.opt_str("document", self.context.document.as_deref());
            record.opt_str("location", self.context.location.as_deref());
            if detail != Detail::Stored {
                record.opt_str("hardware_id", self.context.hardware_id.as_deref());
            }
        }
        record.str("source", self.context.source.as_str());
        record.finish();
    }

    fn read(value: &Value) -> Option<ConsentRecord> {
        let text = |key: &str| -> Option<Option<String>> {
            match value.get(key) {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) if s.len() <= MAX_CONSENT_FIELD_BYTES => {
                    Some(Some(s.clone()))
                }
                Some(_) => None,
            }
        };
        Some(ConsentRecord {
            consented: value.get("consented")?.as_bool()?,
            timestamp: Timestamp::from_unix_ms(value.get("timestamp_unixtime_ms")?.as_u64()?),
            // Stored records never carry one (`Detail::Stored`); read one if an older version
            // wrote it, so the choice survives.
            context: ConsentContext {
                document: text("document")?,
                location: text("location")?,
                hardware_id: text("hardware_id")?,
                source: ConsentSource::from_wire(value.get("source")?.as_str()?)?,
            },
        })
    }
}

/// How much of each record a written consent state carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// `consented` and `source` only: what a batch needs for the endpoint's re-check, and
    /// nothing that stays the same across batches, page loads and rotations of the identity.
    Summary,
    /// Whole records (time, notice, location, hardware id) for choices made after this time;
    /// earlier ones as a summary. A consent change carries records made under the identity it
    /// is sent with, never ones that would link it to an identity before the last rotation.
    MadeAfter(Timestamp),
    /// Whole records, for the page itself.
    Full,
    /// What storage keeps of the choices: no essential purposes (they are configuration) and no
    /// hardware id (the consent record is kept in plain text, so no device id goes into it).
    Stored,
}

/// A choice the site asks to record, refused as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsentError {
    /// The purpose is not declared in the configuration.
    UnknownPurpose(String),
    /// Essential purposes are always granted; they cannot be set.
    EssentialPurpose(String),
    /// Document, location or hardware id longer than [`MAX_CONSENT_FIELD_BYTES`].
    FieldTooLong(&'static str),
    /// A later call after shutdown.
    ShutDown,
}

impl ConsentError {
    /// A lower-case sentence saying what is wrong.
    pub fn message(&self) -> String {
        match self {
            ConsentError::UnknownPurpose(name) => {
                crate::text::concat(&["purpose `", name, "` is not declared in the config"])
            }
            ConsentError::EssentialPurpose(name) => crate::text::concat(&[
                "purpose `",
                name,
                "` is essential: it is always granted and cannot be set",
            ]),
            ConsentError::FieldTooLong(field) => {
                crate::text::concat(&[field, " is longer than 256 bytes"])
            }
            ConsentError::ShutDown => String::from("the sdk has been shut down"),
        }
    }
}

impl fmt::Display for ConsentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for ConsentError {}

/// Checks the free-text fields of a context against their limits.
pub fn check_context(context: &ConsentContext) -> Result<(), ConsentError> {
    for (field, value) in [
        ("document", &context.document),
        ("location", &context.location),
        ("hardware_id", &context.hardware_id),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| v.len() > MAX_CONSENT_FIELD_BYTES)
        {
            return Err(ConsentError::FieldTooLong(field));
        }
    }
    Ok(())
}

/// The visitor's consent: a record per non-essential purpose once chosen, and the CCPA opt-out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentState {
    /// Indexed by catalog index; essential purposes are never recorded.
    records: Vec<Option<ConsentRecord>>,
    ccpa_opt_out: Option<ConsentRecord>,
}

impl ConsentState {
    /// Nothing chosen yet: only the essential purposes of a catalog of `purposes` are granted.
    pub fn new(purposes: usize) -> Self {
        ConsentState {
            records: vec![None; purposes],
            ccpa_opt_out: None,
        }
    }

    /// The purposes granted now: the essential ones, plus every one recorded as consented, minus
    /// the sale purposes while the visitor opts out of sale.
    pub fn granted(&self, catalog: &PurposeCatalog) -> PurposeSet {
        let chosen = self
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_ref().is_some_and(|r| r.consented))
            .fold(PurposeSet::EMPTY, |set, (i, _)| {
                set.union(PurposeSet::only(i))
            });
        let granted = chosen
            .difference(catalog.essential())
            .union(catalog.essential());
        if self.opted_out_of_sale() {
            granted.difference(catalog.sale())
        } else {
            granted
        }
    }

    /// Whether any choice at all has been recorded.
    pub fn has_choices(&self) -> bool {
        self.ccpa_opt_out.is_some() || self.records.iter().any(Option::is_some)
    }

    /// Whether the visitor opted out of the sale of their data.
    pub fn opted_out_of_sale(&self) -> bool {
        self.ccpa_opt_out.as_ref().is_some_and(|r| r.consented)
    }

    /// The record for catalog index `index`, if chosen.
    pub fn record(&self, index: usize) -> Option<&ConsentRecord> {
        self.records.get(index).and_then(Option::as_ref)
    }

    /// Records `choices` (catalog index, granted) made at `now`. Returns whether anything
    /// changed; a choice equal to the recorded one under the same notice is not a change.
    pub fn apply(
        &mut self,
        choices: &[(usize, bool)],
        context: &ConsentContext,
        now: Timestamp,
    ) -> bool {
        let mut changed = false;
        for &(index, consented) in choices {
            let Some(slot) = self.records.get_mut(index) else {
                continue;
            };
            if slot
                .as_ref()
                .is_some_and(|r| r.same_choice(consented, context))
            {
                continue;
            }
            *slot = Some(ConsentRecord {
                consented,
                timestamp: now,
                context: context.clone(),
            });
            changed = true;
        }
        changed
    }

    /// Records the CCPA opt-out. Returns whether it changed.
    pub fn apply_ccpa(
        &mut self,
        opted_out: bool,
        context: &ConsentContext,
        now: Timestamp,
    ) -> bool {
        if self
            .ccpa_opt_out
            .as_ref()
            .is_some_and(|r| r.same_choice(opted_out, context))
        {
            return false;
        }
        self.ccpa_opt_out = Some(ConsentRecord {
            consented: opted_out,
            timestamp: now,
            context: context.clone(),
        });
        true
    }

    /// Writes the state in the wire format's `consent_state` shape, with `detail` (storage
    /// takes [`Detail::Stored`]): essential purposes (source `default`, never a time: they are
    /// configuration, not a choice) and every recorded purpose under `gdpr`, the opt-out under
    /// `ccpa`.
    pub fn write_wire(&self, catalog: &PurposeCatalog, out: &mut String, detail: Detail) {
        let mut state = ObjectWriter::new(out);
        let gdpr_out = state.key("gdpr");
        let mut gdpr = ObjectWriter::new(gdpr_out);
        for (index, purpose) in catalog.names_of(catalog.all()).enumerate() {
            if catalog.essential().contains(index) {
                if detail != Detail::Stored {
                    gdpr.raw(purpose.as_str(), r#"{"consented":true,"source":"default"}"#);
                }
            } else if let Some(record) = self.record(index) {
                record.write(gdpr.key(purpose.as_str()), detail);
            }
        }
        gdpr.finish();
        if let Some(record) = &self.ccpa_opt_out {
            let ccpa_out = state.key("ccpa");
            let mut ccpa = ObjectWriter::new(ccpa_out);
            record.write(ccpa.key("data_sale_opt_out"), detail);
            ccpa.finish();
        }
        state.finish();
    }

    /// Reads stored choices (the shape [`Detail::Stored`] writes). Purposes the
    /// catalog no longer declares, essential purposes and malformed records are skipped; `None`
    /// when the value is not a consent state at all.
    pub fn read_stored(value: &Value, catalog: &PurposeCatalog) -> Option<ConsentState> {
        let mut state = ConsentState::new(catalog.len());
        for (name, record) in value.get("gdpr")?.as_object()? {
            let Some(index) = catalog.index_of(name) else {
                continue;
            };
            if catalog.essential().contains(index) {
                continue;
            }
            if let (Some(slot), Some(record)) =
                (state.records.get_mut(index), ConsentRecord::read(record))
            {
                *slot = Some(record);
            }
        }
        state.ccpa_opt_out = value
            .get("ccpa")
            .and_then(|c| c.get("data_sale_opt_out"))
            .and_then(ConsentRecord::read);
        Some(state)
    }
}

/// Writes a JSON string list of the purposes in `set`, in catalog order.
pub fn write_purpose_names(catalog: &PurposeCatalog, set: PurposeSet, out: &mut String) {
    out.push('[');
    for (i, purpose) in catalog.names_of(set).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, purpose.as_str());
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;
    use crate::purpose::Purpose;

    fn catalog() -> PurposeCatalog {
        let p = |n: &str| Purpose::parse(n).unwrap();
        PurposeCatalog::new(
            vec![p("necessary")],
            vec![p("analytics"), p("advertising")],
            &[p("advertising")],
        )
        .unwrap()
    }

    fn banner(document: &str) -> ConsentContext {
        ConsentContext {
            document: Some(document.into()),
            location: Some("banner".into()),
            hardware_id: None,
            source: ConsentSource::User,
        }
    }

    #[test]
    fn everything_but_essential_is_denied_until_chosen() {
        let catalog = catalog();
        let state = ConsentState::new(catalog.len());
        assert_eq!(state.granted(&catalog), catalog.essential());
        assert!(!state.has_choices());
    }

    #[test]
    fn the_same_choice_twice_is_not_a_change_but_a_new_notice_is() {
        let catalog = catalog();
        let mut state = ConsentState::new(catalog.len());
        let t = Timestamp::from_unix_ms(10);
        assert!(state.apply(&[(1, true)], &banner("v1"), t));
        assert!(!state.apply(&[(1, true)], &banner("v1"), Timestamp::from_unix_ms(20)));
        assert_eq!(state.record(1).unwrap().timestamp, t);
        assert!(state.apply(&[(1, true)], &banner("v2"), t));
        assert!(state.apply(&[(1, false)], &banner("v2"), t));
        assert!(!state.granted(&catalog).contains(1));
        assert!(!state.apply(&[(99, true)], &banner("v2"), t));
    }

    #[test]
    fn ccpa_opt_out_denies_sale_purposes_only() {
        let catalog = catalog();
        let mut state = ConsentState::new(catalog.len());
        state.apply(&[(1, true), (2, true)], &banner("v1"), Timestamp::ZERO);
        assert_eq!(state.granted(&catalog), catalog.all());
        assert!(state.apply_ccpa(true, &banner("v1"), Timestamp::ZERO));
        assert!(!state.apply_ccpa(true, &banner("v1"), Timestamp::ZERO));
        assert_eq!(
            state.granted(&catalog),
            catalog.all().difference(catalog.sale())
        );
        assert!(state.apply_ccpa(false, &banner("v1"), Timestamp::ZERO));
        assert_eq!(state.granted(&catalog), catalog.all());
    }

    #[test]
    fn wire_form_lists_essential_purposes_and_stored_form_does_not() {
        let catalog = catalog();
        let mut state = ConsentState::new(catalog.len());
        state.apply(&[(2, false)], &banner("v1"), Timestamp::from_unix_ms(7));
        state.apply_ccpa(true, &ConsentContext::user(), Timestamp::from_unix_ms(8));
        let write = |detail| {
            let mut out = String::new();
            state.write_wire(&catalog, &mut out, detail);
            out
        };
        assert_eq!(
            write(Detail::Full),
            concat!(
                r#"{"gdpr":{"necessary":{"consented":true,"source":"default"},"#,
                r#""advertising":{"consented":false,"timestamp_unixtime_ms":7,"document":"v1","location":"banner","hardware_id":null,"source":"user"}},"#,
                r#""ccpa":{"data_sale_opt_out":{"consented":true,"timestamp_unixtime_ms":8,"document":null,"location":null,"hardware_id":null,"source":"user"}}}"#
            )
        );
        assert_eq!(
            write(Detail::Summary),
            concat!(
                r#"{"gdpr":{"necessary":{"consented":true,"source":"default"},"#,
                r#""advertising":{"consented":false,"source":"user"}},"#,
                r#""ccpa":{"data_sale_opt_out":{"consented":true,"source":"user"}}}"#
            )
        );
        // Records made at or before the last rotation are summaries; later ones whole.
        assert_eq!(
            write(Detail::MadeAfter(Timestamp::from_unix_ms(7))),
            concat!(
                r#"{"gdpr":{"necessary":{"consented":true,"source":"default"},"#,
                r#""advertising":{"consented":false,"source":"user"}},"#,
                r#""ccpa":{"data_sale_opt_out":{"consented":true,"timestamp_unixtime_ms":8,"document":null,"location":null,"hardware_id":null,"source":"user"}}}"#
            )
        );
        let stored = write(Detail::Stored);
        assert!(!stored.contains("necessary"));
        assert!(!stored.contains("hardware_id"));
        let back = ConsentState::read_stored(&parse(&stored, 8).unwrap(), &catalog).unwrap();
        assert_eq!(back, state);
        // A hardware id is kept in memory and sent, never stored.
        let mut with_device = state.clone();
        let device = ConsentContext {
            hardware_id: Some("IDFA-1".into()),
            ..banner("v2")
        };
        with_device.apply(&[(1, true)], &device, Timestamp::from_unix_ms(9));
        let mut full = String::new();
        with_device.write_wire(&catalog, &mut full, Detail::Full);
        assert!(full.contains("IDFA-1"));
        let mut kept = String::new();
        with_device.write_wire(&catalog, &mut kept, Detail::Stored);
        assert!(!kept.contains("IDFA-1"));
    }

    #[test]
    fn reading_stored_state_skips_what_does_not_fit_the_catalog() {
        let catalog = catalog();
        let text = r#"{"gdpr":{"necessary":{"consented":false,"timestamp_unixtime_ms":1,"document":null,"location":null,"hardware_id":null,"source":"user"},
            "gone":{"consented":true,"timestamp_unixtime_ms":1,"document":null,"location":null,"hardware_id":null,"source":"user"},
            "analytics":{"consented":"yes"},
            "advertising":{"consented":true,"timestamp_unixtime_ms":1,"document":null,"location":null,"hardware_id":null,"source":"user"}}}"#;
        let state = ConsentState::read_stored(&parse(text, 8).unwrap(), &catalog).unwrap();
        assert_eq!(
            state.granted(&catalog),
            catalog.essential().union(PurposeSet::only(2))
        );
        assert!(ConsentState::read_stored(&parse("[]", 8).unwrap(), &catalog).is_none());
    }
}
