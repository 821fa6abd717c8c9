//! Privacy signals a page already carries: IAB TCF v2.2 TC strings and IAB GPP strings, decoded
//! here from their text, and what they mean for the site's purposes.
//!
//! - `bits`: base64url bit reading and Fibonacci integers (crate-private);
//! - [`tcf`](crate::signals::tcf): TC strings (core, vendors disclosed, vendors allowed, publisher TC; TCF v1);
//! - [`gpp`](crate::signals::gpp): the GPP header and sections `tcfeuv2`, `uspv1`, and through [`us`](crate::signals::us), `usnat`,
//!   `usca`, `usva`, `usco` (others are reported as unsupported and not read);
//! - [`mapping`](crate::signals::mapping): site purposes granted by a TC string, the CCPA opt-out of a GPP string.
//!
//! Decoding takes text and returns plain data or a typed error naming the problem; it never
//! panics (property-tested on any input and on mutated valid strings) and a refused string
//! grants nothing. Memory is bounded by the text: vendor sets are kept as ranges
//! ([`IdSet`](crate::signals::IdSet)), and a GPP header may not list more sections than the string holds.
//!
//! # Conformance, and where this decoder decides otherwise
//!
//! `@iabtechlabtcf/core` (TC strings) and `@iabgpp/cmpapi` (GPP strings) are the judges:
//! `tests/iab/conformance.mjs` decodes a seeded corpus with them and with this code and
//! compares every field. Their quirks are followed (trailing bits ignored; segments after the
//! core in any order; CMP ids 0 and 1 refused; a publisher country code read as `[A-z]` and
//! upper-cased; vendor ranges beyond MaxVendorId accepted; an empty GPP string or a bare
//! `C…` TC string accepted as GPP; `usnat` version 1 recognised by its length; GPP values of 3
//! kept; `uspv1` characters unchecked), except where following them would mean guessing
//! at what a string says. There the core refuses the string:
//!
//! | string | reference | core |
//! | --- | --- | --- |
//! | TC string without a core segment | decodes, core fields defaulted and stamped "now" | [`TcfError::MissingCore`](crate::signals::TcfError::MissingCore) |
//! | a segment kind twice | the last one wins, field by field | [`TcfError::RepeatedSegment`](crate::signals::TcfError::RepeatedSegment) |
//! | segments *before* a v1 core (v1 has none) | decodes them as v2 segments | [`TcfError::SegmentsInVersion1`](crate::signals::TcfError::SegmentsInVersion1) |
//! | vendor range with end < start (consents, LI, disclosed, allowed) | empty, no error (yet refused in restrictions) | [`TcfError::InvalidRange`](crate::signals::TcfError::InvalidRange) |
//! | vendor id 0 in a publisher restriction | kept as vendor 0 (yet refused in vendor ranges) | [`TcfError::InvalidRange`](crate::signals::TcfError::InvalidRange) |
//! | `tcfeuv2` section the TCF rules refuse (any row above, CMP id 0/1, version ≠ 2, country code, restriction of purpose 0 or type 3, an empty segment, cut-off restrictions) | `@iabgpp/cmpapi` reads it leniently | refused as by `@iabtechlabtcf/core`, because one consent must not be read two ways |
//! | `uspv1` with a character outside the BMP | lone UTF-16 surrogates | [`GppError::UspCharacter`](crate::signals::GppError::UspCharacter) |
//!
//! and it reads less than the reference in one case: a section this decoder does not support
//! (`tcfcav1`, `usut`, `usct`, ...) is only checked for being non-blank, so a malformed one
//! the reference refuses is accepted and listed as unsupported.
//!
//! The TCF rule applies to GPP because a `tcfeuv2` section grants consent; the US sections only
//! ever restrict (their signals are opt-outs), so reading them as leniently as the reference
//! can never grant anything. A GPP string is decoded whole or refused whole, like the
//! reference.
//!
//! In the mapping, TCF v1 strings and strings with `IsServiceSpecific = 0` (invalid under TCF
//! 2.2) grant nothing ([`TcfRefusal`](crate::signals::TcfRefusal)) although they decode.

mod bits;
pub mod gpp;
mod ids;
pub mod mapping;
pub mod tcf;
pub mod us;

pub use gpp::{GppError, GppString, Section, SectionId, UspV1};
pub use ids::IdSet;
pub use mapping::{ccpa_opt_out, gpp_tc_string, tcf_purposes, CcpaSignal, TcfRefusal};
pub use tcf::{PublisherTc, Restriction, RestrictionType, SegmentKind, TcString, TcfError};
pub use us::{Gpc, UsField, UsSection, UsValue};
