//! Which purposes an event needs, and whether consent admits it.
//!
//! Purposes come from the call itself, else from the first config rule that matches the event,
//! else from the configured default purposes. An event with none is dropped: deny by default.
//! An event is admitted only if every purpose it needs is granted when it is captured.

use crate::event::{DropReason, EventKind};
use crate::purpose::{PurposeCatalog, PurposeSet};
use alloc::string::String;
use alloc::vec::Vec;

/// How a rule matches event names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamePattern {
    /// Exactly this name.
    Exact(String),
    /// Any name starting with this text (written `prefix*` in config).
    Prefix(String),
}

impl NamePattern {
    /// Reads `checkout*` as a prefix and anything else as an exact name.
    pub fn parse(pattern: &str) -> NamePattern {
        match pattern.strip_suffix("*") {
            Some(prefix) => NamePattern::Prefix(String::from(prefix)),
            None => NamePattern::Exact(String::from(pattern)),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(exact) => exact == name,
            NamePattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
        }
    }
}

/// A config rule: events it matches need `purposes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurposeRule {
    /// Matches only events of this kind, when set.
    pub kind: Option<EventKind>,
    /// Matches only events whose name fits, when set.
    pub name: Option<NamePattern>,
    /// What matching events need.
    pub purposes: PurposeSet,
}

impl PurposeRule {
    fn matches(&self, kind: EventKind, name: &str) -> bool {
        self.kind.is_none_or(|k| k == kind) && self.name.as_ref().is_none_or(|p| p.matches(name))
    }
}

/// The site's purpose policy: its catalog, rules and default purposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The declared purposes.
    pub catalog: PurposeCatalog,
    /// Rules, first match wins.
    pub rules: Vec<PurposeRule>,
    /// What an event needs when neither the call nor a rule says.
    pub default_purposes: PurposeSet,
}

impl Policy {
    /// The purposes an event needs: `explicit` when the call named some, else the first matching
    /// rule's, else the defaults. Unknown names and an empty result are drop reasons.
    pub fn required_purposes(
        &self,
        kind: EventKind,
        name: &str,
        explicit: Option<&[&str]>,
    ) -> Result<PurposeSet, DropReason> {
        let required = match explicit {
            Some(names) => self
                .catalog
                .set_of(names.iter().copied())
                .map_err(|_| DropReason::UnknownPurpose)?,
            None => self
                .rules
                .iter()
                .find(|rule| rule.matches(kind, name))
                .map_or(self.default_purposes, |rule| rule.purposes),
        };
        if required.is_empty() {
            Err(DropReason::NoPurpose)
        } else {
            Ok(required)
        }
    }
}

/// Admits an event that needs `required` when `granted` covers all of it.
pub fn admit(required: PurposeSet, granted: PurposeSet) -> Result<(), DropReason> {
    if required.is_subset_of(granted) {
        Ok(())
    } else {
        Err(DropReason::ConsentDenied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::purpose::Purpose;
    use alloc::vec;

    fn policy(default: &[&str]) -> Policy {
        let p = |n: &str| Purpose::parse(n).unwrap();
        let catalog = PurposeCatalog::new(
            vec![p("necessary")],
            vec![p("analytics"), p("advertising"), p("personalization")],
            &[],
        )
        .unwrap();
        let set = |names: &[&str]| catalog.set_of(names.iter().copied()).unwrap();
        Policy {
            rules: vec![
                PurposeRule {
                    kind: None,
                    name: Some(NamePattern::parse("ad_*")),
                    purposes: set(&["advertising"]),
                },
                PurposeRule {
                    kind: Some(EventKind::Track),
                    name: Some(NamePattern::parse("Recommended")),
                    purposes: set(&["personalization", "analytics"]),
                },
                PurposeRule {
                    kind: Some(EventKind::Page),
                    name: None,
                    purposes: set(&["analytics"]),
                },
            ],
            default_purposes: set(default),
            catalog,
        }
    }

    #[test]
    fn table_of_purpose_resolution() {
        let with_default = policy(&["analytics"]);
        let without_default = policy(&[]);
        let set = |names: &[&str]| with_default.catalog.set_of(names.iter().copied()).unwrap();
        use DropReason::*;
        use EventKind::*;
        type Case<'a> = (
            &'a Policy,
            EventKind,
            &'a str,
            Option<&'a [&'a str]>,
            Result<PurposeSet, DropReason>,
        );
        let cases: &[Case<'_>] = &[
            (
                &with_default,
                Track,
                "ad_click",
                None,
                Ok(set(&["advertising"])),
            ),
            (&with_default, Track, "ad_", None, Ok(set(&["advertising"]))),
            (
                &with_default,
                Track,
                "Recommended",
                None,
                Ok(set(&["personalization", "analytics"])),
            ),
            (
                &with_default,
                Identify,
                "Recommended",
                None,
                Ok(set(&["analytics"])),
            ),
            (
                &with_default,
                Page,
                "page_view",
                None,
                Ok(set(&["analytics"])),
            ),
            (
                &with_default,
                Track,
                "anything",
                None,
                Ok(set(&["analytics"])),
            ),
            (&without_default, Track, "anything", None, Err(NoPurpose)),
            (
                &without_default,
                Track,
                "ad_click",
                Some(&["personalization"]),
                Ok(set(&["personalization"])),
            ),
            (&without_default, Track, "x", Some(&[]), Err(NoPurpose)),
            (
                &without_default,
                Track,
                "x",
                Some(&["analytics", "typo"]),
                Err(UnknownPurpose),
            ),
            (
                &without_default,
                Track,
                "x",
                Some(&["necessary"]),
                Ok(set(&["necessary"])),
            ),
        ];
        for (policy, kind, name, explicit, expected) in cases {
            assert_eq!(
                policy.required_purposes(*kind, name, *explicit),
                *expected,
                "{kind:?} {name} {explicit:?}"
            );
        }
    }

    #[test]
    fn admission_needs_every_purpose() {
        let a = PurposeSet::only(1);
        let ab = a.union(PurposeSet::only(2));
        assert_eq!(admit(a, ab), Ok(()));
        assert_eq!(admit(ab, a), Err(DropReason::ConsentDenied));
        assert_eq!(admit(PurposeSet::EMPTY, PurposeSet::EMPTY), Ok(()));
    }
}
