//! Privacy signals a page already carries: IAB TCF v2.2 TC strings and IAB GPP strings, decoded
//! here from their text, and what they mean for the site's purposes.
//!
//! - `bits`: base64url bit reading and Fibonacci integers (crate-private); [`IdSet`]: vendor
//!   sets kept as ranges;
//! - [`tcf`]: TC strings (core, vendors disclosed, vendors allowed, publisher TC; TCF v1 cores);
//! - [`gpp`]: the GPP header and the sections `tcfeuv2` and `uspv1`, and through [`us`],
//!   `usnat`, `usca`, `usva` and `usco` (others are listed as unsupported and not read);
//! - [`mapping`]: the site purposes a TC string grants, the CCPA opt-out of a GPP string.
//!
//! Decoding takes text and returns plain data or a typed error naming the problem. It never
//! panics (property-tested on any text and on mutated valid strings), a refused string grants
//! nothing, and memory is bounded by the text: vendor sets are ranges, and a GPP header may not
//! list more sections than the string holds.
//!
//! # Conformance, and where this decoder decides otherwise
//!
//! `@iabtechlabtcf/core` (TC strings) and `@iabgpp/cmpapi` (GPP strings) are the judges:
//! `tests/iab/conformance.mjs` decodes a seeded corpus with them and with this code and
//! compares every field. Their quirks are followed: bits after the last field are ignored;
//! segments come in any order, the core among them (the specification puts it first); CMP ids 0
//! and 1 are refused; a publisher country code is read as `[A-z]` and upper-cased; vendor ranges
//! may go beyond MaxVendorId; a publisher restriction of purpose 0 or type 3 is accepted when it
//! names no vendor; the empty string and a bare `C…` TC string are GPP strings; only a GPP
//! header's first `.`-part is read and unknown section ids are skipped; `usnat` version 1 is
//! recognised by its length (60 or 66 bits), not by its version field; 2-bit values of 3 and the
//! GPC sub-section type are kept as written; sub-sections beyond those defined are not read; the
//! `uspv1` characters are not checked. Where following a reference would mean guessing at what
//! a string says, the core refuses the string instead:
//!
//! | string | reference | core |
//! | --- | --- | --- |
//! | a TC string without a core segment | decodes, the core defaulted and stamped "now" | [`TcfError::MissingCore`] |
//! | a segment kind twice | the last one wins, field by field | [`TcfError::RepeatedSegment`] |
//! | segments before a v1 core (v1 has none) | decodes them as v2 segments | [`TcfError::SegmentsInVersion1`] |
//! | a vendor range whose end precedes its start | empty (refused in restrictions) | [`TcfError::InvalidRange`] |
//! | vendor 0 in a publisher restriction | kept (refused in vendor ranges) | [`TcfError::InvalidRange`] |
//! | a `tcfeuv2` section the TCF rules refuse | `@iabgpp/cmpapi` reads it leniently | refused as `@iabtechlabtcf/core` and the rows above do ([`GppError::Tcf`]) |
//! | a `tcfeuv2` section holding a v1 string | read with the v2 layout | [`GppError::TcfVersion1`] |
//! | `uspv1` with a character outside the BMP | keeps lone UTF-16 surrogates | [`GppError::UspCharacter`] |
//!
//! (`@iabgpp/cmpapi`'s own `tcfeuv2` reader accepts, among others, CMP ids 0 and 1, any version
//! and country code, empty segments and cut-off restrictions.) And the core reads less than the
//! reference in one case: a section it does not support (`tcfcav1`, `usut`, `usct`, ...) is
//! only checked for being non-blank, so one the reference refuses for its content is accepted
//! and listed as unsupported.
//!
//! The TCF rules apply inside GPP because a `tcfeuv2` section grants consent, and one consent
//! must not be read two ways; the US sections only ever restrict (their signals are opt-outs),
//! so reading them as leniently as the reference can never grant anything. A GPP string is
//! decoded whole or refused whole, like the reference.
//!
//! In the mapping, TCF v1 strings and strings with `IsServiceSpecific = 0` (invalid under TCF
//! 2.2) grant nothing ([`TcfRefusal`]) although they decode.
//!
//! [`tcf`]: crate::signals::tcf
//! [`gpp`]: crate::signals::gpp
//! [`us`]: crate::signals::us
//! [`mapping`]: crate::signals::mapping
//! [`IdSet`]: crate::signals::IdSet
//! [`TcfError::MissingCore`]: crate::signals::TcfError::MissingCore
//! [`TcfError::RepeatedSegment`]: crate::signals::TcfError::RepeatedSegment
//! [`TcfError::SegmentsInVersion1`]: crate::signals::TcfError::SegmentsInVersion1
//! [`TcfError::InvalidRange`]: crate::signals::TcfError::InvalidRange
//! [`GppError::Tcf`]: crate::signals::GppError::Tcf
//! [`GppError::TcfVersion1`]: crate::signals::GppError::TcfVersion1
//! [`GppError::UspCharacter`]: crate::signals::GppError::UspCharacter
//! [`TcfRefusal`]: crate::signals::TcfRefusal

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
