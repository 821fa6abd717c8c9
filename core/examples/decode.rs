//! The TCF and GPP decoders on the command line, as `/work/shared/iab-decoder-protocol.md`
//! (the IAB decoder protocol) describes, so any corpus can be checked against the IAB
//! reference libraries without a browser:
//!
//! ```text
//! cargo run --release -p consentry-core --example decode -- tcf < strings.txt
//! cargo run --release -p consentry-core --example decode -- gpp < strings.txt
//! ```
//!
//! One input per `\n`-terminated line of stdin (never trimmed: spaces, `\r` and non-ASCII text
//! are part of the input), one line of JSON per input on stdout: the decoded fields, or
//! `{"error": "..."}`. A GPP line also carries `unsupportedSections`, the ids of the sections
//! present that this decoder does not read (`sectionList` lists only those it decoded).
#![allow(missing_docs)]

use consentry_core::signals::{GppString, IdSet, Section, SectionId, TcString, UsSection, UsValue};
use serde_json::{json, Map, Value};
use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let kind = std::env::args().nth(1).unwrap_or_default();
    let decode: fn(&str) -> Value = match kind.as_str() {
        "tcf" => tcf,
        "gpp" => gpp,
        _ => {
            eprintln!("usage: decode tcf|gpp < lines");
            return ExitCode::from(2);
        }
    };
    let mut out = BufWriter::new(io::stdout().lock());
    for line in io::stdin().lock().split(b'\n') {
        let value = match line {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => decode(&text),
                Err(_) => json!({ "error": "the line is not UTF-8" }),
            },
            Err(e) => {
                eprintln!("reading stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        if writeln!(out, "{value}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn ids(set: &IdSet) -> Value {
    set.iter().collect::<Vec<_>>().into()
}

/// Positions (from 1) of the set bits among the first `n` of `mask`.
fn positions(mask: u64, n: u32) -> Value {
    (1..=n)
        .filter(|i| mask >> (i - 1) & 1 == 1)
        .collect::<Vec<_>>()
        .into()
}

/// The first `n` bits of `mask` as booleans.
fn bools(mask: u64, n: u32) -> Value {
    (0..n)
        .map(|i| mask >> i & 1 == 1)
        .collect::<Vec<_>>()
        .into()
}

fn text(chars: [char; 2]) -> String {
    chars.iter().collect()
}

fn tcf(line: &str) -> Value {
    match TcString::decode(line) {
        Ok(tc) => tcf_fields(&tc),
        Err(e) => json!({ "error": e.message() }),
    }
}

fn tcf_fields(tc: &TcString) -> Value {
    let mut o = Map::new();
    o.insert("version".into(), tc.version.into());
    o.insert("created".into(), tc.created.as_unix_ms().into());
    o.insert("lastUpdated".into(), tc.last_updated.as_unix_ms().into());
    o.insert("cmpId".into(), tc.cmp_id.into());
    o.insert("cmpVersion".into(), tc.cmp_version.into());
    o.insert("consentScreen".into(), tc.consent_screen.into());
    o.insert(
        "consentLanguage".into(),
        text(tc.consent_language_chars()).into(),
    );
    o.insert("vendorListVersion".into(), tc.vendor_list_version.into());
    o.insert(
        "purposeConsents".into(),
        positions(tc.purpose_consents.into(), 24),
    );
    o.insert("vendorConsents".into(), ids(&tc.vendor_consents));
    if tc.version == 2 {
        o.insert("tcfPolicyVersion".into(), tc.policy_version.into());
        o.insert("isServiceSpecific".into(), tc.is_service_specific.into());
        o.insert(
            "useNonStandardTexts".into(),
            tc.use_non_standard_texts.into(),
        );
        o.insert(
            "purposeOneTreatment".into(),
            tc.purpose_one_treatment.into(),
        );
        o.insert(
            "specialFeatureOptins".into(),
            positions(tc.special_feature_optins.into(), 12),
        );
        o.insert(
            "purposeLegitimateInterests".into(),
            positions(tc.purpose_legitimate_interests.into(), 24),
        );
        o.insert(
            "publisherCountryCode".into(),
            text(tc.publisher_country_chars()).into(),
        );
        o.insert(
            "vendorLegitimateInterests".into(),
            ids(&tc.vendor_legitimate_interests),
        );
        let restrictions: Vec<Value> = tc
            .publisher_restrictions
            .iter()
            .map(|r| {
                json!({
                    "purposeId": r.purpose_id,
                    "restrictionType": r.restriction_type.code(),
                    "vendorIds": ids(&r.vendors),
                })
            })
            .collect();
        o.insert("publisherRestrictions".into(), restrictions.into());
    }
    let segments: Vec<&str> = tc.segments.iter().map(|s| s.as_str()).collect();
    o.insert("segments".into(), segments.into());
    o.insert(
        "vendorsDisclosed".into(),
        tc.vendors_disclosed.as_ref().map(ids).into(),
    );
    o.insert(
        "vendorsAllowed".into(),
        tc.vendors_allowed.as_ref().map(ids).into(),
    );
    let p = tc.publisher_tc.as_ref();
    let n = p.map_or(0, |p| u32::from(p.num_custom_purposes));
    o.insert(
        "publisherConsents".into(),
        p.map(|p| positions(p.consents.into(), 24)).into(),
    );
    o.insert(
        "publisherLegitimateInterests".into(),
        p.map(|p| positions(p.legitimate_interests.into(), 24))
            .into(),
    );
    o.insert(
        "numCustomPurposes".into(),
        p.map(|p| p.num_custom_purposes).into(),
    );
    o.insert(
        "publisherCustomConsents".into(),
        p.map(|p| positions(p.custom_consents, n)).into(),
    );
    o.insert(
        "publisherCustomLegitimateInterests".into(),
        p.map(|p| positions(p.custom_legitimate_interests, n))
            .into(),
    );
    o.into()
}

fn gpp(line: &str) -> Value {
    let gpp = match GppString::decode(line) {
        Ok(gpp) => gpp,
        Err(e) => return json!({ "error": e.message() }),
    };
    let mut list: Vec<SectionId> = gpp.sections.iter().map(Section::id).collect();
    list.sort();
    let mut parsed = Map::new();
    for section in &gpp.sections {
        let fields = match section {
            Section::TcfEuV2(tc) => tcfeuv2_fields(tc),
            Section::UspV1(usp) => json!({
                "Version": usp.version,
                "Notice": usp.notice.to_string(),
                "OptOutSale": usp.opt_out_sale.to_string(),
                "LspaCovered": usp.lspa_covered.to_string(),
            }),
            Section::Us(us) => us_fields(us),
        };
        parsed.insert(section.id().name().into(), fields);
    }
    json!({
        "sectionList": list.iter().map(|s| s.id()).collect::<Vec<_>>(),
        "sectionNames": list.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "headerSectionIds": gpp.header_section_ids,
        "unsupportedSections": gpp.unsupported,
        "parsedSections": parsed,
    })
}

fn us_fields(us: &UsSection) -> Value {
    let mut o = Map::new();
    o.insert("Version".into(), us.version.into());
    for (name, value) in us.fields() {
        let value: Value = match value {
            UsValue::One(v) => v.into(),
            UsValue::List(values) => values.into(),
        };
        o.insert(name.into(), value);
    }
    if UsSection::has_gpc(us.section) {
        // Without the sub-section the reference reports its defaults: type 1, no GPC.
        o.insert(
            "GpcSegmentType".into(),
            us.gpc.map_or(1, |g| g.segment_type).into(),
        );
        o.insert("Gpc".into(), us.gpc().into());
        o.insert("GpcSegmentIncluded".into(), us.gpc.is_some().into());
    }
    o.into()
}

/// `@iabgpp/cmpapi`'s FixedString: code 63 is a space, the others `A` + code, then trimmed.
fn fixed_string(codes: [u8; 2]) -> String {
    let text: String = codes
        .iter()
        .map(|&c| if c == 63 { ' ' } else { char::from(b'A' + c) })
        .collect();
    text.trim_matches(' ').to_owned()
}

/// A TC string as `@iabgpp/cmpapi` reports a `tcfeuv2` section (absent segments as defaults).
fn tcfeuv2_fields(tc: &TcString) -> Value {
    let p = tc.publisher_tc.clone().unwrap_or_default();
    let n = u32::from(p.num_custom_purposes);
    let empty = IdSet::default();
    json!({
        "Version": tc.version,
        "Created": tc.created.as_unix_ms(),
        "LastUpdated": tc.last_updated.as_unix_ms(),
        "CmpId": tc.cmp_id,
        "CmpVersion": tc.cmp_version,
        "ConsentScreen": tc.consent_screen,
        "ConsentLanguage": fixed_string(tc.consent_language),
        "VendorListVersion": tc.vendor_list_version,
        "PolicyVersion": tc.policy_version,
        "IsServiceSpecific": tc.is_service_specific,
        "UseNonStandardStacks": tc.use_non_standard_texts,
        "SpecialFeatureOptins": bools(tc.special_feature_optins.into(), 12),
        "PurposeConsents": bools(tc.purpose_consents.into(), 24),
        "PurposeLegitimateInterests": bools(tc.purpose_legitimate_interests.into(), 24),
        "PurposeOneTreatment": tc.purpose_one_treatment,
        "PublisherCountryCode": fixed_string(tc.publisher_country_code),
        "VendorConsents": ids(&tc.vendor_consents),
        "VendorLegitimateInterests": ids(&tc.vendor_legitimate_interests),
        "PublisherRestrictions": tc.publisher_restrictions.iter().map(|r| json!({
            "key": r.purpose_id,
            "type": r.restriction_type.code(),
            "ids": ids(&r.vendors),
        })).collect::<Vec<_>>(),
        "PublisherPurposesSegmentType": 3,
        "PublisherConsents": bools(p.consents.into(), 24),
        "PublisherLegitimateInterests": bools(p.legitimate_interests.into(), 24),
        "NumCustomPurposes": p.num_custom_purposes,
        "PublisherCustomConsents": bools(p.custom_consents, n),
        "PublisherCustomLegitimateInterests": bools(p.custom_legitimate_interests, n),
        "VendorsAllowedSegmentType": 2,
        "VendorsAllowed": ids(tc.vendors_allowed.as_ref().unwrap_or(&empty)),
        "VendorsDisclosedSegmentType": 1,
        "VendorsDisclosed": ids(tc.vendors_disclosed.as_ref().unwrap_or(&empty)),
    })
}
