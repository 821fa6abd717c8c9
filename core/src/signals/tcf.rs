//! IAB TCF TC strings: v2.2 (core segment, vendors disclosed, vendors allowed, publisher TC)
//! and the deprecated v1 (a core segment only).
//!
//! The layout is the one of "Transparency and Consent String with Global Vendor List Format"
//! and of `@iabtechlabtcf/core`'s decoder, which is the judge of what a string means; where that
//! decoder accepts what the specification forbids, this one follows it unless the string would
//! have to be guessed at. The decisions are listed in the [module docs](crate::signals).

use super::bits::{Bits, BitsError};
use super::ids::IdSet;
use crate::time::Timestamp;
use alloc::vec::Vec;
use core::fmt;

/// The kinds of `.`-separated segment a TC string holds, by their 3-bit segment type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// The core segment (type 0: its first bits are the version, below 8).
    Core,
    /// Vendors disclosed to the visitor (type 1).
    VendorsDisclosed,
    /// Vendors the publisher allows to use out-of-band legal bases (type 2).
    VendorsAllowed,
    /// The publisher's own purposes and custom purposes (type 3).
    PublisherTc,
}

impl SegmentKind {
    /// The name `@iabtechlabtcf/core` gives the segment.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::Core => "core",
            SegmentKind::VendorsDisclosed => "vendorsDisclosed",
            SegmentKind::VendorsAllowed => "vendorsAllowed",
            SegmentKind::PublisherTc => "publisherTC",
        }
    }
}

/// What a publisher restriction asks of the vendors it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestrictionType {
    /// 0: the purpose is flatly not allowed.
    NotAllowed,
    /// 1: the vendors need consent for the purpose.
    RequireConsent,
    /// 2: the vendors need legitimate interest for the purpose.
    RequireLegitimateInterest,
    /// 3: undefined; only ever seen on a restriction that names no vendor.
    Undefined,
}

impl RestrictionType {
    /// The 2-bit value in the string.
    pub fn code(self) -> u8 {
        match self {
            RestrictionType::NotAllowed => 0,
            RestrictionType::RequireConsent => 1,
            RestrictionType::RequireLegitimateInterest => 2,
            RestrictionType::Undefined => 3,
        }
    }

    fn from_code(code: u8) -> RestrictionType {
        match code {
            0 => RestrictionType::NotAllowed,
            1 => RestrictionType::RequireConsent,
            2 => RestrictionType::RequireLegitimateInterest,
            _ => RestrictionType::Undefined,
        }
    }
}

/// One publisher restriction entry, as written (entries are neither merged nor dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restriction {
    /// The TCF purpose restricted (6 bits; 0 only on an entry that names no vendor).
    pub purpose_id: u8,
    /// What is asked of the vendors.
    pub restriction_type: RestrictionType,
    /// The vendors restricted.
    pub vendors: IdSet,
}

/// The publisher TC segment: the publisher's own legal bases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublisherTc {
    /// Consent per TCF purpose: bit `i` is purpose `i + 1` (24 purposes).
    pub consents: u32,
    /// Legitimate interest per TCF purpose, as `consents`.
    pub legitimate_interests: u32,
    /// How many custom purposes the publisher defined (0 to 63).
    pub num_custom_purposes: u8,
    /// Consent per custom purpose: bit `i` is custom purpose `i + 1`.
    pub custom_consents: u64,
    /// Legitimate interest per custom purpose, as `custom_consents`.
    pub custom_legitimate_interests: u64,
}

/// A decoded TC string. In a v1 string the fields v1 does not have are zero, `false` or empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcString {
    /// 1 or 2.
    pub version: u8,
    /// When the string was first created (decoded deciseconds, as milliseconds).
    pub created: Timestamp,
    /// When it was last updated.
    pub last_updated: Timestamp,
    /// The CMP that wrote it (2 or above: 0 and 1 are not CMP ids).
    pub cmp_id: u16,
    /// The CMP's version.
    pub cmp_version: u16,
    /// The screen the choice was made on, as the CMP numbers them.
    pub consent_screen: u8,
    /// The two 6-bit letter codes of the consent language (0 is `A`).
    pub consent_language: [u8; 2],
    /// The global vendor list version.
    pub vendor_list_version: u16,
    /// The TCF policy version (v2).
    pub policy_version: u8,
    /// Whether the string is service-specific (TCF 2.2 requires it).
    pub is_service_specific: bool,
    /// Whether the CMP used non-standard texts.
    pub use_non_standard_texts: bool,
    /// Special feature opt-ins: bit `i` is special feature `i + 1` (12 features).
    pub special_feature_optins: u32,
    /// Consent per TCF purpose: bit `i` is purpose `i + 1` (24 purposes).
    pub purpose_consents: u32,
    /// Legitimate interest per TCF purpose, as `purpose_consents`.
    pub purpose_legitimate_interests: u32,
    /// Whether purpose 1 was not disclosed (the publisher's country rules).
    pub purpose_one_treatment: bool,
    /// The two 6-bit letter codes of the publisher's country (0 is `A`; at most 57).
    pub publisher_country_code: [u8; 2],
    /// Vendors with consent.
    pub vendor_consents: IdSet,
    /// Vendors with legitimate interest established.
    pub vendor_legitimate_interests: IdSet,
    /// Publisher restrictions, in string order.
    pub publisher_restrictions: Vec<Restriction>,
    /// The vendors disclosed segment, when present.
    pub vendors_disclosed: Option<IdSet>,
    /// The vendors allowed segment, when present.
    pub vendors_allowed: Option<IdSet>,
    /// The publisher TC segment, when present.
    pub publisher_tc: Option<PublisherTc>,
    /// The kind of every segment, in string order.
    pub segments: Vec<SegmentKind>,
}

/// Why a TC string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcfError {
    /// The string is empty.
    Empty,
    /// A `.`-separated segment is empty.
    EmptySegment,
    /// A segment holds a character outside base64url (`A–Z a–z 0–9 - _`, no padding).
    NotBase64,
    /// The string ends inside a field.
    Truncated,
    /// A segment's type is 4 to 7.
    UnknownSegment(u8),
    /// Two segments of the same kind.
    RepeatedSegment(SegmentKind),
    /// No core segment.
    MissingCore,
    /// A version other than 1 or 2.
    Version(u8),
    /// A v1 string with more than its core segment.
    SegmentsInVersion1,
    /// A CMP id of 0 or 1.
    CmpId(u16),
    /// A publisher country code whose letters are not letters.
    CountryCode,
    /// A vendor range whose end precedes its start, or that names vendor 0.
    InvalidRange,
    /// A v1 range encoding that grants every vendor it does not name.
    DefaultConsent,
    /// A publisher restriction of vendors for purpose 0 or of restriction type 3.
    InvalidRestriction,
}

impl TcfError {
    /// A lower-case sentence saying what is wrong.
    pub fn message(self) -> &'static str {
        match self {
            TcfError::Empty => "the TC string is empty",
            TcfError::EmptySegment => "a segment of the TC string is empty",
            TcfError::NotBase64 => "the TC string is not base64url",
            TcfError::Truncated => "the TC string ends inside a field",
            TcfError::UnknownSegment(_) => "a segment has an unknown segment type",
            TcfError::RepeatedSegment(_) => "a segment appears twice",
            TcfError::MissingCore => "the TC string has no core segment",
            TcfError::Version(_) => "the TC string's version is neither 1 nor 2",
            TcfError::SegmentsInVersion1 => "a TCF v1 string has segments besides its core",
            TcfError::CmpId(_) => "the CMP id is 0 or 1, which no CMP has",
            TcfError::CountryCode => "the publisher country code is not two letters",
            TcfError::InvalidRange => "a vendor range ends before it starts or names vendor 0",
            TcfError::DefaultConsent => "a TCF v1 range gives consent to every vendor by default",
            TcfError::InvalidRestriction => {
                "a publisher restriction names purpose 0 or restriction type 3"
            }
        }
    }
}

impl fmt::Display for TcfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for TcfError {}

impl From<BitsError> for TcfError {
    fn from(_: BitsError) -> TcfError {
        // A TC string has no Fibonacci fields, so the only way reading fails is running out.
        TcfError::Truncated
    }
}

/// Whether bit `id - 1` of `mask` is set (ids from 1).
fn mask_has(mask: u64, id: u32) -> bool {
    (1..=64).contains(&id) && (mask >> (id - 1)) & 1 == 1
}

/// A 6-bit letter code as the character it stands for (`A` + code).
fn letter(code: u8) -> char {
    char::from(b'A'.saturating_add(code))
}

impl TcString {
    /// Decodes a TC string (all its segments, in any order after the rules in the module docs).
    pub fn decode(text: &str) -> Result<TcString, TcfError> {
        if text.is_empty() {
            return Err(TcfError::Empty);
        }
        let mut tc: Option<TcString> = None;
        let mut disclosed = None;
        let mut allowed = None;
        let mut publisher = None;
        let mut segments = Vec::new();
        for part in text.split('.') {
            if part.is_empty() {
                return Err(TcfError::EmptySegment);
            }
            let mut bits = Bits::new(part).ok_or(TcfError::NotBase64)?;
            // The core segment has no type: its first 3 bits are the high bits of a version < 8.
            let kind = match bits.clone().u8(3)? {
                0 => SegmentKind::Core,
                1 => SegmentKind::VendorsDisclosed,
                2 => SegmentKind::VendorsAllowed,
                3 => SegmentKind::PublisherTc,
                other => return Err(TcfError::UnknownSegment(other)),
            };
            if segments.contains(&kind) {
                return Err(TcfError::RepeatedSegment(kind));
            }
            segments.push(kind);
            if kind != SegmentKind::Core {
                bits.int(3)?;
            }
            match kind {
                SegmentKind::Core => tc = Some(core(&mut bits)?),
                SegmentKind::VendorsDisclosed => disclosed = Some(vendors(&mut bits, false)?),
                SegmentKind::VendorsAllowed => allowed = Some(vendors(&mut bits, false)?),
                SegmentKind::PublisherTc => publisher = Some(publisher_tc(&mut bits)?),
            }
        }
        let mut tc = tc.ok_or(TcfError::MissingCore)?;
        if tc.version == 1 && segments.len() > 1 {
            return Err(TcfError::SegmentsInVersion1);
        }
        tc.vendors_disclosed = disclosed;
        tc.vendors_allowed = allowed;
        tc.publisher_tc = publisher;
        tc.segments = segments;
        Ok(tc)
    }

    /// Whether the visitor consented to TCF purpose `id` (1 to 24).
    pub fn purpose_consent(&self, id: u8) -> bool {
        (1..=24).contains(&id) && mask_has(u64::from(self.purpose_consents), u32::from(id))
    }

    /// The consent language as two characters (`A` + code, as `@iabtechlabtcf/core` reports it).
    pub fn consent_language_chars(&self) -> [char; 2] {
        self.consent_language.map(letter)
    }

    /// The publisher's country code as two upper-case characters, as the reference reports it.
    pub fn publisher_country_chars(&self) -> [char; 2] {
        self.publisher_country_code
            .map(|code| letter(code).to_ascii_uppercase())
    }
}

fn timestamp(bits: &mut Bits<'_>) -> Result<Timestamp, TcfError> {
    // 36 bits of deciseconds: at most 6.9e12 ms, far below u64::MAX.
    Ok(Timestamp::from_unix_ms(bits.int(36)? * 100))
}

fn core(bits: &mut Bits<'_>) -> Result<TcString, TcfError> {
    let version = bits.u8(6)?;
    if version != 1 && version != 2 {
        return Err(TcfError::Version(version));
    }
    let created = timestamp(bits)?;
    let last_updated = timestamp(bits)?;
    let cmp_id = bits.u16(12)?;
    if cmp_id < 2 {
        return Err(TcfError::CmpId(cmp_id));
    }
    let cmp_version = bits.u16(12)?;
    let consent_screen = bits.u8(6)?;
    let consent_language = [bits.u8(6)?, bits.u8(6)?];
    let vendor_list_version = bits.u16(12)?;
    let mut tc = TcString {
        version,
        created,
        last_updated,
        cmp_id,
        cmp_version,
        consent_screen,
        consent_language,
        vendor_list_version,
        policy_version: 0,
        is_service_specific: false,
        use_non_standard_texts: false,
        special_feature_optins: 0,
        purpose_consents: 0,
        purpose_legitimate_interests: 0,
        purpose_one_treatment: false,
        publisher_country_code: [0, 0],
        vendor_consents: IdSet::default(),
        vendor_legitimate_interests: IdSet::default(),
        publisher_restrictions: Vec::new(),
        vendors_disclosed: None,
        vendors_allowed: None,
        publisher_tc: None,
        segments: Vec::new(),
    };
    if version == 1 {
        tc.purpose_consents = bits.mask(24)? as u32;
        tc.vendor_consents = vendors(bits, true)?;
        return Ok(tc);
    }
    tc.policy_version = bits.u8(6)?;
    tc.is_service_specific = bits.bit()?;
    tc.use_non_standard_texts = bits.bit()?;
    tc.special_feature_optins = bits.mask(12)? as u32;
    tc.purpose_consents = bits.mask(24)? as u32;
    tc.purpose_legitimate_interests = bits.mask(24)? as u32;
    tc.purpose_one_treatment = bits.bit()?;
    tc.publisher_country_code = [bits.u8(6)?, bits.u8(6)?];
    // `@iabtechlabtcf/core` accepts `[A-z]` and upper-cases: codes 0 to 57 (`A` to `z`).
    if tc.publisher_country_code.iter().any(|&code| code > 57) {
        return Err(TcfError::CountryCode);
    }
    tc.vendor_consents = vendors(bits, false)?;
    tc.vendor_legitimate_interests = vendors(bits, false)?;
    let entries = bits.u16(12)?;
    for _ in 0..entries {
        let purpose_id = bits.u8(6)?;
        let restriction_type = RestrictionType::from_code(bits.u8(2)?);
        let vendors = ranges(bits)?;
        if !vendors.is_empty()
            && (purpose_id == 0 || restriction_type == RestrictionType::Undefined)
        {
            return Err(TcfError::InvalidRestriction);
        }
        tc.publisher_restrictions.push(Restriction {
            purpose_id,
            restriction_type,
            vendors,
        });
    }
    Ok(tc)
}

/// A vendor vector: MaxVendorId, then a bitfield of that many vendors or range entries.
fn vendors(bits: &mut Bits<'_>, v1: bool) -> Result<IdSet, TcfError> {
    let max_id = bits.u16(16)?;
    if !bits.bit()? {
        if usize::from(max_id) > bits.remaining() {
            return Err(TcfError::Truncated);
        }
        let mut set = IdSet::default();
        let mut run_start = None;
        for id in 1..=max_id {
            match (bits.bit()?, run_start) {
                (true, None) => run_start = Some(id),
                (false, Some(start)) => {
                    set.insert(start, id - 1);
                    run_start = None;
                }
                _ => {}
            }
        }
        if let Some(start) = run_start {
            set.insert(start, max_id);
        }
        return Ok(set);
    }
    // v1 range encodings carry a default for the vendors they do not name; 1 would grant them.
    if v1 && bits.bit()? {
        return Err(TcfError::DefaultConsent);
    }
    ranges(bits)
}

/// NumEntries, then per entry IsRange, StartOrOnlyVendorId and, for a range, EndVendorId.
fn ranges(bits: &mut Bits<'_>) -> Result<IdSet, TcfError> {
    let entries = bits.u16(12)?;
    let mut set = IdSet::default();
    for _ in 0..entries {
        let is_range = bits.bit()?;
        let start = bits.u16(16)?;
        let end = if is_range { bits.u16(16)? } else { start };
        if start == 0 || end < start {
            return Err(TcfError::InvalidRange);
        }
        set.insert(start, end);
    }
    Ok(set)
}

fn publisher_tc(bits: &mut Bits<'_>) -> Result<PublisherTc, TcfError> {
    let consents = bits.mask(24)? as u32;
    let legitimate_interests = bits.mask(24)? as u32;
    let num_custom_purposes = bits.u8(6)?;
    let n = u32::from(num_custom_purposes);
    Ok(PublisherTc {
        consents,
        legitimate_interests,
        num_custom_purposes,
        custom_consents: bits.mask(n)?,
        custom_legitimate_interests: bits.mask(n)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// From the TCF specification ("Consent string and vendor list formats v2"), the string it
    /// shows with all three segments; the fields as `@iabtechlabtcf/core` decodes them.
    const SPEC: &str =
        "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA";
    /// From the GPP specification's examples (its `tcfeuv2` section).
    const GPP_SPEC: &str = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA";
    /// Written by `@iabtechlabtcf/core`'s SegmentEncoder from a model with every kind of field
    /// set: range-encoded consents, bitfield LI, two restrictions, vendors allowed, custom
    /// purposes.
    const ENCODED: &str = "CP1R2oAP1R23oEsAHDFRCWFoAMPAAEIAAAqM4gQBAABALzgfQB9ScQAAMf_gBBAAIC8x4AGAAYACAAAA.QF5wAQF5gAAA.dAAAAAAAAaoA";

    fn ids(set: &IdSet) -> Vec<u16> {
        set.iter().collect()
    }

    #[test]
    fn the_specification_example() {
        let tc = TcString::decode(SPEC).unwrap();
        assert_eq!(tc.version, 2);
        assert_eq!(tc.created.as_unix_ms(), 1_748_908_800_000);
        assert_eq!(tc.last_updated, tc.created);
        assert_eq!((tc.cmp_id, tc.cmp_version, tc.consent_screen), (880, 0, 0));
        assert_eq!(tc.consent_language_chars(), ['E', 'N']);
        assert_eq!((tc.vendor_list_version, tc.policy_version), (48, 2));
        assert!(tc.is_service_specific);
        assert_eq!(tc.publisher_country_chars(), ['D', 'E']);
        assert_eq!(tc.purpose_consents, 0);
        assert_eq!(ids(&tc.vendor_consents), [1, 2, 3, 4]);
        assert!(tc.vendor_legitimate_interests.is_empty());
        assert!(tc.publisher_restrictions.is_empty());
        assert_eq!(
            tc.segments,
            [
                SegmentKind::Core,
                SegmentKind::VendorsDisclosed,
                SegmentKind::PublisherTc
            ]
        );
        assert_eq!(
            tc.vendors_disclosed.as_ref().map(ids),
            Some(vec![1, 2, 3, 4, 5, 100, 404])
        );
        assert_eq!(tc.vendors_allowed, None);
        assert_eq!(tc.publisher_tc, Some(PublisherTc::default()));
    }

    #[test]
    fn the_gpp_specification_example() {
        let tc = TcString::decode(GPP_SPEC).unwrap();
        assert_eq!(tc.created.as_unix_ms(), 1_650_492_000_000);
        assert_eq!((tc.cmp_id, tc.cmp_version, tc.consent_screen), (31, 640, 1));
        assert_eq!((tc.vendor_list_version, tc.policy_version), (126, 2));
        assert_eq!(tc.segments, [SegmentKind::Core]);
        assert_eq!(tc.publisher_tc, None);
    }

    #[test]
    fn every_kind_of_field() {
        let tc = TcString::decode(ENCODED).unwrap();
        assert_eq!(tc.created.as_unix_ms(), 1_700_000_000_000);
        assert_eq!(tc.last_updated.as_unix_ms(), 1_700_000_100_000);
        assert_eq!((tc.cmp_id, tc.cmp_version, tc.consent_screen), (300, 7, 3));
        assert_eq!(tc.consent_language_chars(), ['F', 'R']);
        assert_eq!(tc.publisher_country_chars(), ['F', 'R']);
        assert_eq!((tc.vendor_list_version, tc.policy_version), (150, 5));
        for (purpose, consent) in [(1, true), (2, true), (3, false), (7, true), (10, true)] {
            assert_eq!(tc.purpose_consent(purpose), consent, "purpose {purpose}");
        }
        assert!(!tc.purpose_consent(0) && !tc.purpose_consent(25));
        assert_eq!(tc.purpose_legitimate_interests, 1 << 1 | 1 << 6);
        assert_eq!(tc.special_feature_optins, 1);
        assert_eq!(ids(&tc.vendor_consents), [2, 755, 1000, 1001, 1002, 40000]);
        assert_eq!(
            tc.vendor_legitimate_interests.ranges(),
            &[(1, 12)],
            "a bitfield becomes one range"
        );
        assert_eq!(
            tc.publisher_restrictions,
            [
                Restriction {
                    purpose_id: 2,
                    restriction_type: RestrictionType::NotAllowed,
                    vendors: IdSet::from_ranges(vec![(755, 755)]),
                },
                Restriction {
                    purpose_id: 7,
                    restriction_type: RestrictionType::RequireLegitimateInterest,
                    vendors: IdSet::from_ranges(vec![(3, 4)]),
                },
            ]
        );
        assert_eq!(tc.vendors_allowed.as_ref().map(ids), Some(vec![755]));
        assert_eq!(tc.vendors_disclosed, None);
        assert_eq!(
            tc.publisher_tc,
            Some(PublisherTc {
                consents: 0b101,
                legitimate_interests: 0,
                num_custom_purposes: 3,
                custom_consents: 0b010,
                custom_legitimate_interests: 0b101,
            })
        );
    }

    #[test]
    fn segments_after_the_core_in_any_order() {
        let (core, rest) = SPEC.split_once('.').unwrap();
        let (disclosed, publisher) = rest.split_once('.').unwrap();
        let swapped = [publisher, core, disclosed].join(".");
        let tc = TcString::decode(&swapped).unwrap();
        assert_eq!(
            tc.segments,
            [
                SegmentKind::PublisherTc,
                SegmentKind::Core,
                SegmentKind::VendorsDisclosed
            ]
        );
        assert_eq!(
            tc.vendors_disclosed,
            TcString::decode(SPEC).unwrap().vendors_disclosed
        );
    }

    #[test]
    fn refusals() {
        let (core, rest) = SPEC.split_once('.').unwrap();
        let (disclosed, publisher) = rest.split_once('.').unwrap();
        let cases: &[(&str, TcfError)] = &[
            ("", TcfError::Empty),
            (".", TcfError::EmptySegment),
            (&[GPP_SPEC, ""].join("."), TcfError::EmptySegment),
            (&GPP_SPEC.replace('-', "+"), TcfError::NotBase64),
            (&[GPP_SPEC, "="].concat(), TcfError::NotBase64),
            (&[" ", GPP_SPEC].concat(), TcfError::NotBase64),
            ("Cé", TcfError::NotBase64),
            (&GPP_SPEC[..20], TcfError::Truncated),
            (disclosed, TcfError::MissingCore),
            (&[disclosed, publisher].join("."), TcfError::MissingCore),
            (
                &[core, core].join("."),
                TcfError::RepeatedSegment(SegmentKind::Core),
            ),
            (
                &[core, disclosed, disclosed].join("."),
                TcfError::RepeatedSegment(SegmentKind::VendorsDisclosed),
            ),
            // 'g' = 100000: segment type 4.
            (&[core, "gAAAAAAA"].join("."), TcfError::UnknownSegment(4)),
            // Versions 0 and 3: 'A' = 000000, 'D' = 000011.
            ("AAAAAAAAAAAAAAAAAAAAAAAAAAAA", TcfError::Version(0)),
            ("DAAAAAAAAAAAAAAAAAAAAAAAAAAA", TcfError::Version(3)),
            // Version 2 with everything zero: CMP id 0.
            (
                "CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                TcfError::CmpId(0),
            ),
        ];
        for (text, error) in cases {
            assert_eq!(TcString::decode(text), Err(*error), "{text:?}");
            assert!(!error.message().is_empty());
        }
    }
}
