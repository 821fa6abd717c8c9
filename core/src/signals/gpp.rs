//! IAB GPP strings: the header (`DB…`, a Fibonacci range of section ids) and the `~`-separated
//! sections it lists. `tcfeuv2` goes through the TCF decoder, `uspv1` is the four-character US
//! Privacy string, the US sections are in [`us`](crate::signals::us); every other section is
//! left undecoded and reported as unsupported.
//!
//! `@iabgpp/cmpapi` is the judge of what a string means; the few decisions that differ from it
//! are listed in the [module docs](crate::signals).

use super::bits::{Bits, BitsError};
use super::tcf::{TcString, TcfError};
use super::us::UsSection;
use crate::text::concat;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The sections this decoder reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectionId {
    /// 2: IAB Europe TCF v2 (a TC string).
    TcfEuV2,
    /// 6: the US Privacy string (CCPA), deprecated by the IAB but still sent.
    UspV1,
    /// 7: US national.
    UsNat,
    /// 8: California.
    UsCa,
    /// 9: Virginia.
    UsVa,
    /// 10: Colorado.
    UsCo,
}

impl SectionId {
    /// Every section this decoder reads, by ascending id.
    pub const ALL: [SectionId; 6] = [
        SectionId::TcfEuV2,
        SectionId::UspV1,
        SectionId::UsNat,
        SectionId::UsCa,
        SectionId::UsVa,
        SectionId::UsCo,
    ];

    /// The section's id in the GPP section registry.
    pub fn id(self) -> u16 {
        match self {
            SectionId::TcfEuV2 => 2,
            SectionId::UspV1 => 6,
            SectionId::UsNat => 7,
            SectionId::UsCa => 8,
            SectionId::UsVa => 9,
            SectionId::UsCo => 10,
        }
    }

    /// The section's API prefix (`tcfeuv2`, `uspv1`, `usnat`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SectionId::TcfEuV2 => "tcfeuv2",
            SectionId::UspV1 => "uspv1",
            SectionId::UsNat => "usnat",
            SectionId::UsCa => "usca",
            SectionId::UsVa => "usva",
            SectionId::UsCo => "usco",
        }
    }

    /// The section with registry id `id`, if this decoder reads it.
    pub fn from_id(id: u64) -> Option<SectionId> {
        SectionId::ALL.into_iter().find(|s| u64::from(s.id()) == id)
    }
}

/// The US Privacy string (`uspv1`): a version digit and three one-character fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UspV1 {
    /// The version digit (`1`); `None` when the first character is not an ASCII digit.
    pub version: Option<u8>,
    /// Whether notice was given: `Y`, `N` or `-` (not applicable).
    pub notice: char,
    /// Whether the visitor opted out of the sale of personal data: `Y` is an opt-out.
    pub opt_out_sale: char,
    /// Whether the publisher is a signatory of the LSPA.
    pub lspa_covered: char,
}

/// A decoded section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Section {
    /// `tcfeuv2`: a TCF v2 TC string.
    TcfEuV2(TcString),
    /// `uspv1`.
    UspV1(UspV1),
    /// `usnat`, `usca`, `usva` or `usco`.
    Us(UsSection),
}

impl Section {
    /// Which section this is.
    pub fn id(&self) -> SectionId {
        match self {
            Section::TcfEuV2(_) => SectionId::TcfEuV2,
            Section::UspV1(_) => SectionId::UspV1,
            Section::Us(us) => us.section,
        }
    }
}

/// A decoded GPP string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GppString {
    /// The header's section ids as encoded, unknown ones included; `None` when there is no
    /// header (the empty string, or a bare TC string read as a `tcfeuv2` section).
    pub header_section_ids: Option<Vec<u64>>,
    /// The sections this decoder reads, in string order.
    pub sections: Vec<Section>,
    /// The ids of the sections present but not decoded, in string order.
    pub unsupported: Vec<u64>,
}

/// Why a GPP string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GppError {
    /// Neither a GPP string (`DB…`) nor a TC string (`C…`).
    NotGpp,
    /// The header is not base64url, ends inside a field or names an id beyond 64 bits.
    Header,
    /// The header lists a different number of sections than the string holds.
    SectionCount,
    /// A section is empty or only whitespace.
    BlankSection,
    /// A section holds a character outside base64url.
    SectionNotBase64(SectionId),
    /// A section ends inside a field.
    SectionTruncated(SectionId),
    /// The `uspv1` section is not four UTF-16 code units long.
    UspLength,
    /// The `uspv1` section holds a character outside the Basic Multilingual Plane.
    UspCharacter,
    /// The `tcfeuv2` section is not a valid TC string.
    Tcf(TcfError),
    /// The `tcfeuv2` section holds a TCF v1 string.
    TcfVersion1,
}

impl GppError {
    /// A lower-case sentence saying what is wrong.
    pub fn message(&self) -> String {
        let section =
            |prefix: &str, id: SectionId, suffix: &str| concat(&[prefix, id.name(), suffix]);
        match self {
            GppError::NotGpp => {
                String::from("not a GPP string: it starts with neither DB (a header) nor C")
            }
            GppError::Header => String::from("the GPP header cannot be read"),
            GppError::SectionCount => String::from(
                "the GPP header lists a different number of sections than the string holds",
            ),
            GppError::BlankSection => String::from("a GPP section is blank"),
            GppError::SectionNotBase64(id) => section("section ", *id, " is not base64url"),
            GppError::SectionTruncated(id) => section("section ", *id, " ends inside a field"),
            GppError::UspLength => String::from("section uspv1 is not four characters long"),
            GppError::UspCharacter => {
                String::from("section uspv1 holds a character outside the BMP")
            }
            GppError::Tcf(e) => concat(&["section tcfeuv2: ", e.message()]),
            GppError::TcfVersion1 => String::from("section tcfeuv2 holds a TCF v1 string"),
        }
    }
}

impl fmt::Display for GppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for GppError {}

/// Whitespace as JavaScript's `String.prototype.trim` sees it (a section the reference trims to
/// nothing is blank).
fn js_whitespace(c: char) -> bool {
    matches!(c, '\u{2000}'..='\u{200a}')
        || matches!(
            c,
            '\t' | '\n'
                | '\u{b}'
                | '\u{c}'
                | '\r'
                | ' '
                | '\u{a0}'
                | '\u{1680}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
        )
}

impl GppString {
    /// Decodes a GPP string. The empty string decodes to no sections; a string that starts with
    /// `C` is read as a bare TC string (the reference's support for pre-GPP strings).
    pub fn decode(text: &str) -> Result<GppString, GppError> {
        if text.is_empty() {
            return Ok(GppString {
                header_section_ids: None,
                sections: Vec::new(),
                unsupported: Vec::new(),
            });
        }
        if !text.starts_with("DB") {
            if !text.starts_with('C') {
                return Err(GppError::NotGpp);
            }
            return Ok(GppString {
                header_section_ids: None,
                sections: Vec::from([Section::TcfEuV2(tcf_section(text)?)]),
                unsupported: Vec::new(),
            });
        }
        let mut parts = text.split('~');
        // Only the header's first `.`-part is read, as the reference does.
        let header = parts.next().unwrap_or_default();
        let header = header.split('.').next().unwrap_or_default();
        let sections: Vec<&str> = parts.collect();
        let ids = header_ids(header, sections.len())?;
        if ids.len() != sections.len() {
            return Err(GppError::SectionCount);
        }
        let mut decoded = Vec::new();
        let mut unsupported = Vec::new();
        for (&id, &part) in ids.iter().zip(&sections) {
            if part.chars().all(js_whitespace) {
                return Err(GppError::BlankSection);
            }
            match SectionId::from_id(id) {
                Some(SectionId::TcfEuV2) => decoded.push(Section::TcfEuV2(tcf_section(part)?)),
                Some(SectionId::UspV1) => decoded.push(Section::UspV1(uspv1(part)?)),
                Some(us) => decoded.push(Section::Us(UsSection::decode(us, part)?)),
                None => unsupported.push(id),
            }
        }
        Ok(GppString {
            header_section_ids: Some(ids),
            sections: decoded,
            unsupported,
        })
    }

    /// The decoded section `id`, if the string has it.
    pub fn section(&self, id: SectionId) -> Option<&Section> {
        self.sections.iter().find(|s| s.id() == id)
    }
}

/// The header: Type (6 bits, 3), Version (6 bits, 1) and SectionIds as a Fibonacci range.
/// Reading stops as soon as the range holds more ids than the string has sections, so a
/// hostile range cannot make it allocate.
fn header_ids(header: &str, sections: usize) -> Result<Vec<u64>, GppError> {
    let mut bits = Bits::new(header).ok_or(GppError::Header)?;
    let error = |_: BitsError| GppError::Header;
    bits.int(12).map_err(error)?;
    let entries = bits.u16(12).map_err(error)?;
    let mut ids = Vec::new();
    let mut last = 0u64;
    for _ in 0..entries {
        let group = bits.bit().map_err(error)?;
        let start = last
            .checked_add(bits.fibonacci().map_err(error)?)
            .ok_or(GppError::Header)?;
        let end = if group {
            start
                .checked_add(bits.fibonacci().map_err(error)?)
                .ok_or(GppError::Header)?
        } else {
            start
        };
        if end - start >= sections.saturating_sub(ids.len()) as u64 {
            return Err(GppError::SectionCount);
        }
        ids.extend(start..=end);
        last = end;
    }
    Ok(ids)
}

fn tcf_section(text: &str) -> Result<TcString, GppError> {
    let tc = TcString::decode(text).map_err(GppError::Tcf)?;
    if tc.version != 2 {
        return Err(GppError::TcfVersion1);
    }
    Ok(tc)
}

/// `uspv1`: exactly four UTF-16 code units (the reference measures JavaScript strings). The
/// characters are kept as they are, like the reference, which checks none of them.
fn uspv1(text: &str) -> Result<UspV1, GppError> {
    let text = text.split('.').next().unwrap_or_default();
    if text.encode_utf16().count() != 4 {
        return Err(GppError::UspLength);
    }
    let mut chars = text.chars();
    match (chars.next(), chars.next(), chars.next(), chars.next()) {
        (Some(version), Some(notice), Some(opt_out_sale), Some(lspa_covered)) => Ok(UspV1 {
            version: version.to_digit(10).map(|d| d as u8),
            notice,
            opt_out_sale,
            lspa_covered,
        }),
        // Four code units but fewer characters: a surrogate pair.
        _ => Err(GppError::UspCharacter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::us::UsValue;

    const TC: &str = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA";

    fn decode(text: &str) -> GppString {
        GppString::decode(text).unwrap()
    }

    fn ids(gpp: &GppString) -> Vec<SectionId> {
        gpp.sections.iter().map(Section::id).collect()
    }

    #[test]
    fn the_specification_examples() {
        // "GPP String Examples" 1 and 2 (and 2 with the header padded, as in its URL example).
        let one = decode(&["DBABM~", TC].concat());
        assert_eq!(one.header_section_ids, Some(Vec::from([2])));
        assert_eq!(ids(&one), [SectionId::TcfEuV2]);
        for header in ["DBACNY", "DBACNYA"] {
            let two = decode(&[header, "~", TC, "~1YNN"].concat());
            assert_eq!(two.header_section_ids, Some(Vec::from([2, 6])));
            assert_eq!(ids(&two), [SectionId::TcfEuV2, SectionId::UspV1]);
            let Some(Section::UspV1(usp)) = two.section(SectionId::UspV1) else {
                panic!("no uspv1");
            };
            assert_eq!(
                (usp.version, usp.notice, usp.opt_out_sale, usp.lspa_covered),
                (Some(1), 'Y', 'N', 'N')
            );
            let Some(Section::TcfEuV2(tc)) = two.section(SectionId::TcfEuV2) else {
                panic!("no tcfeuv2");
            };
            assert_eq!(tc.cmp_id, 31);
        }
        // Example 3 puts that TC string in the tcfcav1 slot (5): not read, so not refused.
        let three = decode(&["DBABjw~", TC, "~1YNN"].concat());
        assert_eq!(three.header_section_ids, Some(Vec::from([5, 6])));
        assert_eq!(three.unsupported, [5]);
        assert_eq!(ids(&three), [SectionId::UspV1]);
    }

    /// Written by `@iabgpp/cmpapi` from a model with `uspv1`, `usnat` (with GPC), `usca`
    /// (without), `usva` and `usco` (with an empty GPC sub-section of its defaults).
    const US: &str = "DBABzsA~1YYN~CUAQkAAAAmCA.YA~BAEAAABA~BAIAAFA~BAEAAEA.QA";

    #[test]
    fn us_sections_as_the_reference_reads_them() {
        let gpp = decode(US);
        assert_eq!(gpp.header_section_ids, Some(Vec::from([6, 7, 8, 9, 10])));
        let us = |id| match gpp.section(id) {
            Some(Section::Us(us)) => us,
            _ => panic!("no {id:?}"),
        };
        let nat = us(SectionId::UsNat);
        assert_eq!(nat.version, 2);
        assert_eq!(nat.sale_opt_out(), Some(1));
        assert_eq!(nat.sharing_opt_out(), Some(0));
        assert_eq!(nat.value("SharingNotice"), Some(1));
        assert_eq!(nat.value("MspaCoveredTransaction"), Some(2));
        let lists: Vec<_> = nat
            .fields()
            .filter_map(|(name, v)| match v {
                UsValue::List(values) => Some((name, values.to_vec())),
                UsValue::One(_) => None,
            })
            .collect();
        assert_eq!(
            lists,
            [
                (
                    "SensitiveDataProcessing",
                    Vec::from([2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2])
                ),
                ("KnownChildSensitiveDataConsents", Vec::from([1, 2, 0])),
            ]
        );
        assert!(nat.gpc());
        assert_eq!(nat.gpc.map(|g| g.segment_type), Some(1));
        let ca = us(SectionId::UsCa);
        assert_eq!((ca.sharing_opt_out(), ca.gpc), (Some(1), None));
        assert_eq!(ca.targeted_advertising_opt_out(), None);
        let va = us(SectionId::UsVa);
        assert_eq!(va.targeted_advertising_opt_out(), Some(2));
        assert_eq!(va.value("KnownChildSensitiveDataConsents"), Some(1));
        assert_eq!(va.sharing_opt_out(), None);
        let co = us(SectionId::UsCo);
        assert_eq!(co.targeted_advertising_opt_out(), Some(1));
        assert!(co.gpc.is_some() && !co.gpc());
    }

    #[test]
    fn usnat_version_1_is_told_by_its_length() {
        // 10 characters = 60 bits: the old layout, 12 + 2 list values, whatever the version.
        let old = decode("DBABLA~BVQqAAAAAgA");
        let Some(Section::Us(nat)) = old.section(SectionId::UsNat) else {
            panic!("no usnat");
        };
        assert_eq!(nat.version, 1);
        let sensitive = nat
            .fields()
            .find(|(name, _)| *name == "SensitiveDataProcessing");
        assert_eq!(
            sensitive,
            Some(("SensitiveDataProcessing", UsValue::List(&[0; 12])))
        );
        assert_eq!(nat.value("MspaCoveredTransaction"), Some(2));
    }

    #[test]
    fn lenient_where_the_reference_is() {
        assert_eq!(
            decode(""),
            GppString {
                header_section_ids: None,
                sections: Vec::new(),
                unsupported: Vec::new(),
            }
        );
        assert_eq!(decode("DBAA").header_section_ids, Some(Vec::new()));
        // A bare TC string is a tcfeuv2 section without a header.
        let bare = decode(TC);
        assert_eq!(
            (bare.header_section_ids, ids(&decode(TC))),
            (None, vec_of(SectionId::TcfEuV2))
        );
        // uspv1 characters are not checked; a non-digit version is no version.
        let usp = decode("DBABTA~xé-?");
        let Some(Section::UspV1(usp)) = usp.section(SectionId::UspV1) else {
            panic!("no uspv1");
        };
        assert_eq!(
            (usp.version, usp.notice, usp.opt_out_sale),
            (None, 'é', '-')
        );
        // Only the header's first part is read.
        assert_eq!(decode(&["DBABM.junk~", TC].concat()).sections.len(), 1);
    }

    fn vec_of(id: SectionId) -> Vec<SectionId> {
        Vec::from([id])
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, GppError)] = &[
            ("XYZ", GppError::NotGpp),
            ("1YNN", GppError::NotGpp),
            ("DB", GppError::Header),
            ("DBA!M~1YNN", GppError::Header),
            ("DBABM", GppError::SectionCount),
            ("DBAA~", GppError::SectionCount),
            ("DBABTA~1YNN~1YNN", GppError::SectionCount),
            ("DBABM~", GppError::BlankSection),
            ("DBABM~ \u{a0}\u{feff}", GppError::BlankSection),
            ("DBABTA~1YN", GppError::UspLength),
            ("DBABTA~1YNNN", GppError::UspLength),
            ("DBABTA~1😀N", GppError::UspCharacter),
            (
                "DBABLA~BVQq+AAAAgA",
                GppError::SectionNotBase64(SectionId::UsNat),
            ),
            ("DBABLA~BVQq", GppError::SectionTruncated(SectionId::UsNat)),
            (
                "DBABLA~BVQqAAAAAgA.",
                GppError::SectionTruncated(SectionId::UsNat),
            ),
            ("DBABM~CPXx", GppError::Tcf(TcfError::Truncated)),
            (
                "DBABM~BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA",
                GppError::Tcf(TcfError::DefaultConsent),
            ),
        ];
        for (text, error) in cases {
            assert_eq!(GppString::decode(text), Err(*error), "{text:?}");
            assert!(!error.message().is_empty());
        }
        // NEL is whitespace to Rust but not to JavaScript's trim: not blank, not a section.
        assert_eq!(GppString::decode("DBABTA~\u{85}"), Err(GppError::UspLength));
    }

    #[test]
    fn a_header_range_larger_than_the_string_is_refused_early() {
        // One group from 6 spanning 2^40 ids, with one section: refused before expanding it.
        let text = header_with_group(6, 1 << 40);
        assert_eq!(
            GppString::decode(&[text.as_str(), "~1YNN"].concat()),
            Err(GppError::SectionCount)
        );
    }

    /// A header of one group: Type 3, Version 1, one entry, group flag, offsets Fibonacci-coded.
    fn header_with_group(start: u64, length: u64) -> String {
        let mut bits = String::from("000011000001000000000001");
        bits.push('1');
        for value in [start, length] {
            bits.push_str(&fibonacci(value));
        }
        while bits.len() % 6 != 0 {
            bits.push('0');
        }
        const DICT: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        bits.as_bytes()
            .chunks(6)
            .map(|c| char::from(DICT[c.iter().fold(0, |a, b| a << 1 | usize::from(*b == b'1'))]))
            .collect()
    }

    fn fibonacci(mut value: u64) -> String {
        let mut fibs = Vec::from([1u64, 2]);
        while let [.., a, b] = fibs[..] {
            if a + b > value {
                break;
            }
            fibs.push(a + b);
        }
        let mut code = Vec::from_iter(core::iter::repeat_n('0', fibs.len()));
        for (i, f) in fibs.iter().enumerate().rev() {
            if *f <= value {
                code[i] = '1';
                value -= f;
            }
        }
        while code.last() == Some(&'0') {
            code.pop();
        }
        code.push('1');
        code.into_iter().collect()
    }
}
