//! The TCF and GPP decoders over random and hostile input.
//!
//! A test-only encoder writes random TC strings (every segment, vendor sets as bitfields or as
//! ranges, split and overlapping at random, restrictions, custom purposes, TCF v1) and random
//! GPP strings (headers with single ids and groups, every supported section, GPC sub-sections,
//! unsupported sections, the old `usnat` layout). Properties:
//! - decoding what the encoder wrote gives back the model (round trip);
//! - neither decoder panics on any text, on text of their alphabet, or on mutated valid strings;
//! - a refused string is refused with a reason, and the mapping never grants what the string
//!   does not record.
//!
//! Strings the encoder cannot produce from a valid model (the refusals the conformance corpus
//! also has) are written bit by bit in the table tests at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use consentry_core::signals::{
    ccpa_opt_out, tcf_purposes, CcpaSignal, GppError, GppString, IdSet, PublisherTc, Restriction,
    RestrictionType, Section, SectionId, SegmentKind, TcString, TcfError, UsSection, UsValue,
};
use consentry_core::Timestamp;
use proptest::prelude::*;

// ------------------------------------------------------------------------------------------
// Writing bits.

const DICT: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[derive(Default)]
struct Bits(Vec<bool>);

impl Bits {
    fn int(&mut self, value: u64, n: u32) -> &mut Self {
        for i in (0..n).rev() {
            self.0.push(value >> i & 1 == 1);
        }
        self
    }
    fn bit(&mut self, b: bool) -> &mut Self {
        self.0.push(b);
        self
    }
    fn mask(&mut self, mask: u64, n: u32) -> &mut Self {
        for i in 0..n {
            self.0.push(mask >> i & 1 == 1);
        }
        self
    }
    fn fibonacci(&mut self, mut value: u64) -> &mut Self {
        let mut fibs = vec![1u64, 2];
        while let [.., a, b] = fibs[..] {
            match a.checked_add(b) {
                Some(next) if next <= value => fibs.push(next),
                _ => break,
            }
        }
        let mut code = vec![false; fibs.len()];
        for (i, f) in fibs.iter().enumerate().rev() {
            if *f <= value {
                code[i] = true;
                value -= f;
            }
        }
        while code.last() == Some(&false) {
            code.pop();
        }
        self.0.extend(code);
        self.0.push(true);
        self
    }
    /// Base64url, padded with zero bits to a multiple of `pad` bits, then of 6 (as the IAB
    /// encoders pad: TCF to 24, GPP to 8).
    fn text(&self, pad: usize) -> String {
        let mut bits = self.0.clone();
        while bits.len() % pad != 0 {
            bits.push(false);
        }
        while bits.len() % 6 != 0 {
            bits.push(false);
        }
        bits.chunks(6)
            .map(|c| char::from(DICT[c.iter().fold(0, |a, &b| a << 1 | usize::from(b))]))
            .collect()
    }
}

// ------------------------------------------------------------------------------------------
// A test-only TC string encoder.

/// How to write a vendor set.
#[derive(Clone, Debug)]
enum Encoding {
    /// A bitfield `extra` ids longer than needed.
    Bitfield { extra: u16 },
    /// Range entries: the set's ranges, each split in two at `split` (mod its length) when
    /// `split` is set, with `dup` repeated, and MaxVendorId `max_extra` above the largest id.
    Ranges {
        split: Option<u16>,
        dup: bool,
        max_extra: u16,
    },
}

fn write_vendors(w: &mut Bits, set: &IdSet, how: &Encoding, v1: bool) {
    let max = set.ranges().last().map_or(0, |r| r.1);
    match how {
        Encoding::Bitfield { extra } => {
            let max = max.saturating_add(*extra);
            w.int(max.into(), 16).bit(false);
            for id in 1..=max {
                w.bit(set.contains(id));
            }
        }
        Encoding::Ranges {
            split,
            dup,
            max_extra,
        } => {
            let mut entries = Vec::new();
            for &(a, b) in set.ranges() {
                match split {
                    Some(s) if b > a => {
                        let mid = a + s % (b - a);
                        entries.push((a, mid));
                        entries.push((mid + 1, b));
                    }
                    _ => entries.push((a, b)),
                }
            }
            if *dup {
                if let Some(&first) = entries.first() {
                    entries.push(first);
                }
            }
            w.int(max.saturating_add(*max_extra).into(), 16).bit(true);
            if v1 {
                w.bit(false);
            }
            w.int(entries.len() as u64, 12);
            for (a, b) in entries {
                if a == b {
                    w.bit(false).int(a.into(), 16);
                } else {
                    w.bit(true).int(a.into(), 16).int(b.into(), 16);
                }
            }
        }
    }
}

fn write_ranges(w: &mut Bits, set: &IdSet) {
    w.int(set.ranges().len() as u64, 12);
    for &(a, b) in set.ranges() {
        if a == b {
            w.bit(false).int(a.into(), 16);
        } else {
            w.bit(true).int(a.into(), 16).int(b.into(), 16);
        }
    }
}

/// A model plus the choices of how to write it.
#[derive(Clone, Debug)]
struct TcCase {
    tc: TcString,
    encodings: [Encoding; 4],
}

fn encode_tc(case: &TcCase) -> String {
    let tc = &case.tc;
    let mut parts = Vec::new();
    for kind in &tc.segments {
        let mut w = Bits::default();
        match kind {
            SegmentKind::Core => {
                w.int(tc.version.into(), 6)
                    .int(tc.created.as_unix_ms() / 100, 36)
                    .int(tc.last_updated.as_unix_ms() / 100, 36)
                    .int(tc.cmp_id.into(), 12)
                    .int(tc.cmp_version.into(), 12)
                    .int(tc.consent_screen.into(), 6)
                    .int(tc.consent_language[0].into(), 6)
                    .int(tc.consent_language[1].into(), 6)
                    .int(tc.vendor_list_version.into(), 12);
                if tc.version == 1 {
                    w.mask(tc.purpose_consents.into(), 24);
                    write_vendors(&mut w, &tc.vendor_consents, &case.encodings[0], true);
                } else {
                    w.int(tc.policy_version.into(), 6)
                        .bit(tc.is_service_specific)
                        .bit(tc.use_non_standard_texts)
                        .mask(tc.special_feature_optins.into(), 12)
                        .mask(tc.purpose_consents.into(), 24)
                        .mask(tc.purpose_legitimate_interests.into(), 24)
                        .bit(tc.purpose_one_treatment)
                        .int(tc.publisher_country_code[0].into(), 6)
                        .int(tc.publisher_country_code[1].into(), 6);
                    write_vendors(&mut w, &tc.vendor_consents, &case.encodings[0], false);
                    write_vendors(
                        &mut w,
                        &tc.vendor_legitimate_interests,
                        &case.encodings[1],
                        false,
                    );
                    w.int(tc.publisher_restrictions.len() as u64, 12);
                    for r in &tc.publisher_restrictions {
                        w.int(r.purpose_id.into(), 6)
                            .int(r.restriction_type.code().into(), 2);
                        write_ranges(&mut w, &r.vendors);
                    }
                }
            }
            SegmentKind::VendorsDisclosed => {
                w.int(1, 3);
                let set = tc.vendors_disclosed.clone().unwrap_or_default();
                write_vendors(&mut w, &set, &case.encodings[2], false);
            }
            SegmentKind::VendorsAllowed => {
                w.int(2, 3);
                let set = tc.vendors_allowed.clone().unwrap_or_default();
                write_vendors(&mut w, &set, &case.encodings[3], false);
            }
            SegmentKind::PublisherTc => {
                let p = tc.publisher_tc.clone().unwrap_or_default();
                let n = u32::from(p.num_custom_purposes);
                w.int(3, 3)
                    .mask(p.consents.into(), 24)
                    .mask(p.legitimate_interests.into(), 24)
                    .int(n.into(), 6)
                    .mask(p.custom_consents, n)
                    .mask(p.custom_legitimate_interests, n);
            }
        }
        parts.push(w.text(24));
    }
    parts.join(".")
}

// ------------------------------------------------------------------------------------------
// Random models.

fn id_set(max: u16) -> impl Strategy<Value = IdSet> {
    prop::collection::vec((1..=max, 0u16..40), 0..8).prop_map(move |v| {
        IdSet::from_ranges(
            v.into_iter()
                .map(|(a, len)| (a, a.saturating_add(len).min(max)))
                .collect(),
        )
    })
}

fn wide_id_set() -> impl Strategy<Value = IdSet> {
    prop_oneof![
        3 => id_set(600),
        1 => id_set(u16::MAX),
        1 => Just(IdSet::from_ranges(vec![(1, u16::MAX)])),
    ]
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        (0u16..30).prop_map(|extra| Encoding::Bitfield { extra }),
        (proptest::option::of(any::<u16>()), any::<bool>(), 0u16..30).prop_map(
            |(split, dup, max_extra)| Encoding::Ranges {
                split,
                dup,
                max_extra
            }
        ),
    ]
}

/// Bitfields of 65,535 bits are slow to write and read a thousand times over: ranges for sets
/// that reach beyond 4,000.
fn fit(set: &IdSet, how: Encoding) -> Encoding {
    match how {
        Encoding::Bitfield { .. } if set.ranges().last().is_some_and(|r| r.1 > 4000) => {
            Encoding::Ranges {
                split: None,
                dup: false,
                max_extra: 0,
            }
        }
        how => how,
    }
}

fn restriction() -> impl Strategy<Value = Restriction> {
    prop_oneof![
        (1u8..64, 0u8..3, id_set(800)),
        // With no vendors, purpose 0 and type 3 are allowed (and kept).
        (0u8..64, 0u8..4, Just(IdSet::default())),
    ]
    .prop_map(|(purpose_id, t, vendors)| Restriction {
        purpose_id,
        restriction_type: [
            RestrictionType::NotAllowed,
            RestrictionType::RequireConsent,
            RestrictionType::RequireLegitimateInterest,
            RestrictionType::Undefined,
        ][usize::from(t)],
        vendors,
    })
}

fn publisher_tc() -> impl Strategy<Value = PublisherTc> {
    (
        0u32..1 << 24,
        0u32..1 << 24,
        0u8..64,
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(consents, legitimate_interests, n, c, l)| {
            let keep = if n == 0 { 0 } else { u64::MAX >> (64 - n) };
            PublisherTc {
                consents,
                legitimate_interests,
                num_custom_purposes: n,
                custom_consents: c & keep,
                custom_legitimate_interests: l & keep,
            }
        })
}

prop_compose! {
    fn core_fields()(
        created in 0u64..1 << 36,
        updated in 0u64..1 << 36,
        cmp_id in 2u16..4096,
        cmp_version in 0u16..4096,
        consent_screen in 0u8..64,
        consent_language in [0u8..64, 0u8..64],
        vendor_list_version in 0u16..4096,
    ) -> TcString {
        TcString {
            version: 2,
            created: Timestamp::from_unix_ms(created * 100),
            last_updated: Timestamp::from_unix_ms(updated * 100),
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
            segments: vec![SegmentKind::Core],
        }
    }
}

prop_compose! {
    fn tc_v2()(
        base in core_fields(),
        policy_version in 0u8..64,
        flags in [any::<bool>(), any::<bool>(), any::<bool>()],
        special in 0u32..1 << 12,
        purposes in [0u32..1 << 24, 0u32..1 << 24],
        country in [0u8..58, 0u8..58],
        vendors in [wide_id_set(), wide_id_set()],
        restrictions in prop::collection::vec(restriction(), 0..5),
        disclosed in proptest::option::of(wide_id_set()),
        allowed in proptest::option::of(id_set(900)),
        publisher in proptest::option::of(publisher_tc()),
        order in any::<prop::sample::Index>(),
        encodings in [encoding(), encoding(), encoding(), encoding()],
    ) -> TcCase {
        let [consents, legitimate] = vendors;
        let mut tc = TcString {
            policy_version,
            is_service_specific: flags[0],
            use_non_standard_texts: flags[1],
            purpose_one_treatment: flags[2],
            special_feature_optins: special,
            purpose_consents: purposes[0],
            purpose_legitimate_interests: purposes[1],
            publisher_country_code: country,
            vendor_consents: consents,
            vendor_legitimate_interests: legitimate,
            publisher_restrictions: restrictions,
            vendors_disclosed: disclosed,
            vendors_allowed: allowed,
            publisher_tc: publisher,
            ..base
        };
        let mut segments = vec![SegmentKind::Core];
        if tc.vendors_disclosed.is_some() { segments.push(SegmentKind::VendorsDisclosed); }
        if tc.vendors_allowed.is_some() { segments.push(SegmentKind::VendorsAllowed); }
        if tc.publisher_tc.is_some() { segments.push(SegmentKind::PublisherTc); }
        // Any order: the core need not come first.
        let n = segments.len();
        segments.rotate_left(order.index(n));
        tc.segments = segments;
        let sets = [
            tc.vendor_consents.clone(),
            tc.vendor_legitimate_interests.clone(),
            tc.vendors_disclosed.clone().unwrap_or_default(),
            tc.vendors_allowed.clone().unwrap_or_default(),
        ];
        let encodings = [0, 1, 2, 3].map(|i| fit(&sets[i], encodings[i].clone()));
        TcCase { tc, encodings }
    }
}

prop_compose! {
    fn tc_v1()(
        base in core_fields(),
        purposes in 0u32..1 << 24,
        vendors in id_set(800),
        how in encoding(),
    ) -> TcCase {
        let tc = TcString {
            version: 1,
            purpose_consents: purposes,
            vendor_consents: vendors,
            ..base
        };
        let how = fit(&tc.vendor_consents, how);
        TcCase { tc, encodings: [how.clone(), how.clone(), how.clone(), how] }
    }
}

fn tc_case() -> impl Strategy<Value = TcCase> {
    prop_oneof![5 => tc_v2(), 1 => tc_v1()]
}

// ------------------------------------------------------------------------------------------
// A test-only GPP encoder.

#[derive(Clone, Debug)]
enum GppSection {
    Tcf(Box<TcCase>),
    Usp(String),
    Us {
        section: SectionId,
        version: u8,
        values: Vec<u8>,
        gpc: Option<(u8, bool)>,
        old_usnat: bool,
    },
    Unsupported(u64, String),
}

impl GppSection {
    fn id(&self) -> u64 {
        match self {
            GppSection::Tcf(_) => 2,
            GppSection::Usp(_) => 6,
            GppSection::Us { section, .. } => section.id().into(),
            GppSection::Unsupported(id, _) => *id,
        }
    }

    fn text(&self) -> String {
        match self {
            GppSection::Tcf(case) => encode_tc(case),
            GppSection::Usp(text) => text.clone(),
            GppSection::Us {
                section,
                version,
                values,
                gpc,
                old_usnat,
            } => {
                let mut w = Bits::default();
                w.int((*version).into(), 6);
                for (i, v) in values.iter().enumerate() {
                    // The old usnat layout has no sensitive-data values 12-15 nor child value 2.
                    let skipped = *old_usnat && ((21..25).contains(&i) || i == 27);
                    if !skipped {
                        w.int((*v).into(), 2);
                    }
                }
                let mut text = w.text(8);
                if *section == SectionId::UsNat && *old_usnat {
                    assert!(matches!(text.len(), 10 | 11));
                }
                if let Some((segment_type, gpc)) = gpc {
                    let mut g = Bits::default();
                    g.int((*segment_type).into(), 2).bit(*gpc);
                    text.push('.');
                    text.push_str(&g.text(8));
                }
                text
            }
            GppSection::Unsupported(_, text) => text.clone(),
        }
    }
}

/// Header and sections; ids ascending, consecutive ones written as groups when `groups`.
fn encode_gpp(sections: &[GppSection], groups: bool) -> String {
    let ids: Vec<u64> = sections.iter().map(GppSection::id).collect();
    let mut entries: Vec<(u64, u64)> = Vec::new();
    for &id in &ids {
        match entries.last_mut() {
            Some(last) if groups && last.1 + 1 == id => last.1 = id,
            _ => entries.push((id, id)),
        }
    }
    let mut w = Bits::default();
    w.int(3, 6).int(1, 6).int(entries.len() as u64, 12);
    let mut last = 0;
    for (start, end) in entries {
        w.bit(start != end).fibonacci(start - last);
        if start != end {
            w.fibonacci(end - start);
        }
        last = end;
    }
    let mut text = w.text(6);
    for s in sections {
        text.push('~');
        text.push_str(&s.text());
    }
    text
}

fn us_section(section: SectionId) -> impl Strategy<Value = GppSection> {
    let n: usize = UsSection::layout(section)
        .iter()
        .map(|f| usize::from(f.list.unwrap_or(1)))
        .sum();
    let gpc = UsSection::has_gpc(section);
    (
        0u8..64,
        prop::collection::vec(0u8..4, n),
        proptest::option::of((0u8..4, any::<bool>())),
        any::<bool>(),
    )
        .prop_map(move |(version, mut values, g, old)| {
            let old_usnat = section == SectionId::UsNat && old;
            if old_usnat {
                // Values the old layout does not carry read as 0.
                for i in (21..25).chain([27]) {
                    values[i] = 0;
                }
            }
            GppSection::Us {
                section,
                version,
                values,
                gpc: if gpc { g } else { None },
                old_usnat,
            }
        })
}

fn usp() -> impl Strategy<Value = GppSection> {
    (
        prop::sample::select(vec!['1', '2', 'a', ' ']),
        [
            prop::sample::select(vec!['Y', 'N', '-', 'é', '?']),
            prop::sample::select(vec!['Y', 'N', '-']),
            prop::sample::select(vec!['Y', 'N', '-']),
        ],
    )
        .prop_map(|(v, [a, b, c])| GppSection::Usp([v, a, b, c].iter().collect()))
}

fn gpp_sections() -> impl Strategy<Value = Vec<GppSection>> {
    (
        proptest::option::of(tc_v2()),
        proptest::option::of(usp()),
        proptest::option::of(us_section(SectionId::UsNat)),
        proptest::option::of(us_section(SectionId::UsCa)),
        proptest::option::of(us_section(SectionId::UsVa)),
        proptest::option::of(us_section(SectionId::UsCo)),
        proptest::option::of((
            prop::sample::select(vec![1u64, 3, 4, 5, 11, 27, 40, 1 << 40]),
            "[A-Za-z0-9_-]{1,20}",
        )),
    )
        .prop_map(|(tcf, usp, nat, ca, va, co, other)| {
            let mut v: Vec<GppSection> = [
                tcf.map(|case| GppSection::Tcf(Box::new(case))),
                usp,
                nat,
                ca,
                va,
                co,
                other.map(|(id, text)| GppSection::Unsupported(id, text)),
            ]
            .into_iter()
            .flatten()
            .collect();
            v.sort_by_key(GppSection::id);
            v
        })
}

fn check_gpp(sections: &[GppSection], gpp: &GppString) {
    let ids: Vec<u64> = sections.iter().map(GppSection::id).collect();
    assert_eq!(gpp.header_section_ids.as_ref(), Some(&ids));
    let mut decoded = gpp.sections.iter();
    for s in sections {
        match s {
            GppSection::Unsupported(id, _) => assert!(gpp.unsupported.contains(id)),
            GppSection::Tcf(case) => {
                assert_eq!(decoded.next(), Some(&Section::TcfEuV2(case.tc.clone())));
            }
            GppSection::Usp(text) => {
                let Some(Section::UspV1(usp)) = decoded.next() else {
                    panic!("expected uspv1");
                };
                let chars: Vec<char> = text.chars().collect();
                assert_eq!(usp.version, chars[0].to_digit(10).map(|d| d as u8));
                assert_eq!([usp.notice, usp.opt_out_sale, usp.lspa_covered], chars[1..]);
            }
            GppSection::Us {
                section,
                version,
                values,
                gpc,
                ..
            } => {
                let Some(Section::Us(us)) = decoded.next() else {
                    panic!("expected {section:?}");
                };
                assert_eq!((us.section, us.version), (*section, *version));
                assert_eq!(us.gpc.map(|g| (g.segment_type, g.gpc)), *gpc);
                let mut flat = Vec::new();
                for (name, value) in us.fields() {
                    match value {
                        UsValue::One(v) => flat.push(v),
                        UsValue::List(list) => {
                            flat.extend_from_slice(list);
                            // usnat version 1 shows 12 and 2 values: pad back for comparison.
                            let full = UsSection::layout(*section)
                                .iter()
                                .find(|f| f.name == name)
                                .and_then(|f| f.list)
                                .unwrap();
                            flat.resize(flat.len() + usize::from(full) - list.len(), 0);
                        }
                    }
                }
                let shown: Vec<u8> = if *section == SectionId::UsNat && *version == 1 {
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| {
                            if (21..25).contains(&i) || i == 27 {
                                0
                            } else {
                                v
                            }
                        })
                        .collect()
                } else {
                    values.clone()
                };
                assert_eq!(flat, shown);
            }
        }
    }
    assert_eq!(decoded.next(), None);
}

// ------------------------------------------------------------------------------------------
// Properties.

/// Text of the decoders' alphabets, with the characters that split and break them.
const ALPHABET: &str = "[A-Za-z0-9_.~=+/ -]{0,200}";

fn mutate(text: &str, edits: &[(prop::sample::Index, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, op, c) in edits {
        if chars.is_empty() {
            break;
        }
        let i = at.index(chars.len());
        match op % 3 {
            0 => chars[i] = *c,
            1 => {
                chars.remove(i);
            }
            _ => chars.insert(i, *c),
        }
    }
    chars.into_iter().collect()
}

fn edit() -> impl Strategy<Value = (prop::sample::Index, u8, char)> {
    (
        any::<prop::sample::Index>(),
        any::<u8>(),
        prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+ é"
                .chars()
                .collect::<Vec<_>>(),
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn tc_strings_round_trip(case in tc_case()) {
        let text = encode_tc(&case);
        prop_assert_eq!(TcString::decode(&text), Ok(case.tc));
    }

    #[test]
    fn gpp_strings_round_trip(sections in gpp_sections(), groups in any::<bool>()) {
        let text = encode_gpp(&sections, groups);
        let gpp = GppString::decode(&text).unwrap();
        check_gpp(&sections, &gpp);
    }

    #[test]
    fn id_sets_hold_exactly_the_ranges_inserted(
        ranges in prop::collection::vec((0u16..300, 0u16..300), 0..40),
    ) {
        let mut set = IdSet::default();
        let mut model = std::collections::BTreeSet::new();
        for &(a, b) in &ranges {
            set.insert(a, b);
            model.extend(a..=b);
        }
        prop_assert_eq!(set.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
        prop_assert_eq!(set.len(), model.len());
        for pair in set.ranges().windows(2) {
            prop_assert!(u32::from(pair[0].1) + 1 < u32::from(pair[1].0), "{:?}", pair);
        }
        for id in 0..=301 {
            prop_assert_eq!(set.contains(id), model.contains(&id));
        }
        prop_assert_eq!(IdSet::from_ranges(ranges), set);
    }

    #[test]
    fn no_panic_on_any_text(text in any::<String>()) {
        let _ = TcString::decode(&text);
        let _ = GppString::decode(&text);
    }

    #[test]
    fn no_panic_on_text_of_their_alphabet(
        text in ALPHABET,
        prefix in prop::sample::select(vec!["", "C", "DB", "DBA"]),
    ) {
        let text = [prefix, text.as_str()].concat();
        let errors = [TcString::decode(&text).err().map(|e| e.message().to_owned()),
                      GppString::decode(&text).err().map(|e| e.message())];
        for message in errors.into_iter().flatten() {
            prop_assert!(!message.is_empty());
        }
    }

    #[test]
    fn no_panic_on_mutated_strings(
        case in tc_case(),
        sections in gpp_sections(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let tc = mutate(&encode_tc(&case), &edits);
        if let Ok(decoded) = TcString::decode(&tc) {
            // Whatever a mutated string decodes to, the mapping reads only what it records.
            let map: [(&str, &[u8]); 2] = [("a", &[1, 2]), ("b", &[7])];
            if let Ok(grants) = tcf_purposes(&decoded, map, Some(7)) {
                for ((_, ids), (_, granted)) in map.iter().zip(grants) {
                    prop_assert_eq!(
                        granted,
                        ids.iter().all(|&p| decoded.purpose_consent(p))
                            && decoded.vendor_consents.contains(7)
                            && !decoded.publisher_restrictions.iter().any(|r| {
                                ids.contains(&r.purpose_id)
                                    && r.restriction_type != RestrictionType::RequireConsent
                                    && r.vendors.contains(7)
                            })
                    );
                }
            }
        }
        let gpp = mutate(&encode_gpp(&sections, true), &edits);
        if let Ok(decoded) = GppString::decode(&gpp) {
            let applicable: Vec<i32> =
                decoded.sections.iter().map(|s| i32::from(s.id().id())).collect();
            let _ = ccpa_opt_out(&decoded, &applicable);
        }
    }

    #[test]
    fn a_site_purpose_is_granted_only_when_every_tcf_purpose_is(
        case in tc_v2(),
        map in prop::collection::vec(prop::collection::vec(0u8..30, 0..5), 1..6),
        vendor in proptest::option::of(1u16..800),
    ) {
        let mut tc = case.tc;
        tc.is_service_specific = true;
        let names: Vec<String> = (0..map.len()).map(|i| format!("p{i}")).collect();
        let purposes = names.iter().map(String::as_str).zip(map.iter().map(Vec::as_slice));
        let grants = tcf_purposes(&tc, purposes, vendor).unwrap();
        prop_assert_eq!(grants.len(), map.len());
        for ((_, granted), ids) in grants.into_iter().zip(&map) {
            if granted {
                prop_assert!(!ids.is_empty());
                prop_assert!(ids.iter().all(|&p| (1..=24).contains(&p) && tc.purpose_consent(p)));
                if let Some(v) = vendor {
                    prop_assert!(tc.vendor_consents.contains(v));
                }
            }
        }
    }

    #[test]
    fn an_opt_out_is_read_only_from_applicable_sections(sections in gpp_sections()) {
        let gpp = GppString::decode(&encode_gpp(&sections, false)).unwrap();
        prop_assert_eq!(ccpa_opt_out(&gpp, &[]), CcpaSignal::Silent);
        prop_assert_eq!(ccpa_opt_out(&gpp, &[-1, 0, 2]), CcpaSignal::Silent);
        for section in &gpp.sections {
            let id = section.id();
            let signal = ccpa_opt_out(&gpp, &[i32::from(id.id())]);
            let expected = match section {
                Section::TcfEuV2(_) => CcpaSignal::Silent,
                Section::UspV1(usp) if usp.opt_out_sale == 'Y' => CcpaSignal::OptedOut(id),
                Section::Us(us) if us.sale_opt_out() == Some(1)
                    || us.sharing_opt_out() == Some(1)
                    || us.targeted_advertising_opt_out() == Some(1)
                    || us.gpc() => CcpaSignal::OptedOut(id),
                _ => CcpaSignal::NotOptedOut,
            };
            prop_assert_eq!(signal, expected);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Refusals only hand-written strings reach.

fn core_bits(version: u64, cmp_id: u64, country: [u64; 2]) -> Bits {
    let mut w = Bits::default();
    w.int(version, 6)
        .int(16_000_000_000, 36)
        .int(16_000_000_000, 36)
        .int(cmp_id, 12)
        .int(1, 12)
        .int(1, 6)
        .int(4, 6)
        .int(13, 6)
        .int(150, 12);
    if version == 1 {
        w.int(0, 24);
        return w;
    }
    w.int(5, 6)
        .bit(true)
        .bit(false)
        .int(0, 12)
        .int(0xff_ff00, 24)
        .int(0, 24)
        .bit(false)
        .int(country[0], 6)
        .int(country[1], 6);
    w
}

/// A publisher restriction written by hand: purpose, type and range entries (start, end).
type HandRestriction<'a> = (u64, u64, &'a [(u64, u64)]);

/// A v2 core with `consents` as range entries (start, end), no LI and the given restrictions.
fn core_with(consents: &[(u64, u64)], restrictions: &[HandRestriction<'_>]) -> String {
    let mut w = core_bits(2, 300, [3, 4]);
    w.int(10, 16).bit(true).int(consents.len() as u64, 12);
    for &(a, b) in consents {
        w.bit(true).int(a, 16).int(b, 16);
    }
    w.int(0, 16).bit(false);
    w.int(restrictions.len() as u64, 12);
    for (purpose, t, ranges) in restrictions {
        w.int(*purpose, 6).int(*t, 2).int(ranges.len() as u64, 12);
        for &(a, b) in *ranges {
            w.bit(true).int(a, 16).int(b, 16);
        }
    }
    w.text(24)
}

fn disclosed() -> String {
    let mut w = Bits::default();
    w.int(1, 3).int(3, 16).bit(false).int(0b101, 3);
    w.text(24)
}

#[test]
fn refusals_written_by_hand() {
    let v1 = {
        let mut w = core_bits(1, 300, [0, 0]);
        w.int(8, 16)
            .bit(true)
            .bit(true)
            .int(1, 12)
            .bit(false)
            .int(3, 16);
        w.text(6)
    };
    let cases: Vec<(String, TcfError)> = vec![
        (core_bits(2, 1, [3, 4]).text(24), TcfError::CmpId(1)),
        (core_bits(2, 300, [58, 4]).text(24), TcfError::CountryCode),
        (core_bits(2, 300, [3, 63]).text(24), TcfError::CountryCode),
        (core_with(&[(9, 3)], &[]), TcfError::InvalidRange),
        (core_with(&[(0, 3)], &[]), TcfError::InvalidRange),
        (core_with(&[], &[(2, 0, &[(0, 0)])]), TcfError::InvalidRange),
        (core_with(&[], &[(2, 0, &[(7, 5)])]), TcfError::InvalidRange),
        (
            core_with(&[], &[(0, 1, &[(3, 3)])]),
            TcfError::InvalidRestriction,
        ),
        (
            core_with(&[], &[(2, 3, &[(3, 3)])]),
            TcfError::InvalidRestriction,
        ),
        (v1.clone(), TcfError::DefaultConsent),
        (
            [core_with(&[], &[]), disclosed(), disclosed()].join("."),
            TcfError::RepeatedSegment(SegmentKind::VendorsDisclosed),
        ),
        (
            [disclosed(), disclosed()].join("."),
            TcfError::RepeatedSegment(SegmentKind::VendorsDisclosed),
        ),
        (disclosed(), TcfError::MissingCore),
    ];
    for (text, error) in &cases {
        assert_eq!(TcString::decode(text), Err(*error), "{text}");
    }
    let v1_plain = {
        let mut w = core_bits(1, 300, [0, 0]);
        w.int(3, 16).bit(false).int(0b101, 3);
        w.text(6)
    };
    assert_eq!(TcString::decode(&v1_plain).map(|t| t.version), Ok(1));
    for text in [
        [v1_plain.clone(), disclosed()].join("."),
        [disclosed(), v1_plain.clone()].join("."),
    ] {
        assert_eq!(TcString::decode(&text), Err(TcfError::SegmentsInVersion1));
    }
    // Empty restrictions of purpose 0 or type 3 are kept as written, like every entry.
    let kept = TcString::decode(&core_with(&[], &[(0, 1, &[]), (2, 3, &[])])).unwrap();
    assert_eq!(kept.publisher_restrictions.len(), 2);
    // In GPP, a tcfeuv2 section is refused by the same rules, and must be TCF v2.
    let header = |id: u64| {
        let mut w = Bits::default();
        w.int(3, 6).int(1, 6).int(1, 12).bit(false).fibonacci(id);
        w.text(6)
    };
    for (text, error) in &cases {
        let gpp = [header(2), text.clone()].join("~");
        assert_eq!(GppString::decode(&gpp), Err(GppError::Tcf(*error)), "{gpp}");
    }
    assert_eq!(
        GppString::decode(&[header(2), v1_plain].join("~")),
        Err(GppError::TcfVersion1)
    );
}
