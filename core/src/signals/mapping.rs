//! From decoded signals to what they mean for the site: pure functions over plain data.
//!
//! - [`tcf_purposes`]: which of the site's purposes a TC string grants. A site purpose maps to
//!   TCF purpose ids; it is granted only if every one of them has the visitor's consent and,
//!   when the site names its own vendor id, that vendor has consent and no publisher
//!   restriction takes the consent basis away for any of those purposes.
//! - [`ccpa_opt_out`]: whether an applicable US section of a GPP string opts the visitor out of
//!   the sale or sharing of personal data.
//! - [`gpp_tc_string`]: the applicable `tcfeuv2` section, to go through [`tcf_purposes`].
//!
//! Nothing here grants what a string does not say: an empty mapping, a purpose id outside 1 to
//! 24, a TCF v1 string or a string TCF 2.2 calls invalid grant nothing.

use super::gpp::{GppString, Section, SectionId};
use super::tcf::{RestrictionType, TcString};
use alloc::vec::Vec;
use core::fmt;

/// Why a TC string grants nothing at all, whatever it records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcfRefusal {
    /// A TCF v1 string: its five purposes are not v2's, and v1 is no longer in force.
    Version1,
    /// `IsServiceSpecific` is 0, which TCF 2.2 says makes the string invalid.
    NotServiceSpecific,
}

impl TcfRefusal {
    /// A lower-case sentence saying why.
    pub fn message(self) -> &'static str {
        match self {
            TcfRefusal::Version1 => "a TCF v1 string grants nothing under TCF v2.2",
            TcfRefusal::NotServiceSpecific => {
                "a TC string that is not service-specific is invalid under TCF v2.2"
            }
        }
    }
}

impl fmt::Display for TcfRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for TcfRefusal {}

/// For each of the site's purposes, in the order given, whether `tc` grants it.
///
/// `purposes` maps a site purpose to the TCF purpose ids it needs (for example `analytics` to
/// `[1, 7, 8, 9]`). A purpose is granted only if its list is not empty, every id in it has the
/// visitor's consent and, when `vendor_id` is given, the vendor has consent and no publisher
/// restriction of type 0 (not allowed) or 2 (legitimate interest only) names the vendor for one
/// of those purposes.
pub fn tcf_purposes<'a, I>(
    tc: &TcString,
    purposes: I,
    vendor_id: Option<u16>,
) -> Result<Vec<(&'a str, bool)>, TcfRefusal>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    if tc.version != 2 {
        return Err(TcfRefusal::Version1);
    }
    if !tc.is_service_specific {
        return Err(TcfRefusal::NotServiceSpecific);
    }
    let vendor_may = |purpose: u8| match vendor_id {
        None => true,
        Some(vendor) => {
            tc.vendor_consents.contains(vendor)
                && !tc.publisher_restrictions.iter().any(|r| {
                    r.purpose_id == purpose
                        && matches!(
                            r.restriction_type,
                            RestrictionType::NotAllowed
                                | RestrictionType::RequireLegitimateInterest
                        )
                        && r.vendors.contains(vendor)
                })
        }
    };
    Ok(purposes
        .into_iter()
        .map(|(name, ids)| {
            let granted = !ids.is_empty()
                && ids
                    .iter()
                    .all(|&id| tc.purpose_consent(id) && vendor_may(id));
            (name, granted)
        })
        .collect())
}

/// What the applicable US sections of a GPP string say about the CCPA opt-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcpaSignal {
    /// No applicable US section (nor `uspv1`) is in the string.
    Silent,
    /// Applicable US sections are present and none records an opt-out.
    NotOptedOut,
    /// The first applicable section that records an opt-out: `SaleOptOut`, `SharingOptOut` or
    /// `TargetedAdvertisingOptOut` of 1, `Gpc` set, or `uspv1`'s `OptOutSale` of `Y`.
    OptedOut(SectionId),
}

/// Whether `section_id` is among the CMP's `applicableSections` (where `-1` and `0` mean none).
fn applies(section_id: SectionId, applicable_sections: &[i32]) -> bool {
    applicable_sections
        .iter()
        .any(|&id| id > 0 && id == i32::from(section_id.id()))
}

/// Reads the CCPA sale and sharing opt-out from the sections of `gpp` that the CMP reports as
/// applicable (`applicableSections` of the `__gpp` API). Unsupported sections are not read.
pub fn ccpa_opt_out(gpp: &GppString, applicable_sections: &[i32]) -> CcpaSignal {
    let mut signal = CcpaSignal::Silent;
    for section in &gpp.sections {
        if !applies(section.id(), applicable_sections) {
            continue;
        }
        let opted_out = match section {
            Section::TcfEuV2(_) => continue,
            Section::UspV1(usp) => usp.opt_out_sale == 'Y',
            Section::Us(us) => {
                us.sale_opt_out() == Some(1)
                    || us.sharing_opt_out() == Some(1)
                    || us.targeted_advertising_opt_out() == Some(1)
                    || us.gpc()
            }
        };
        if opted_out {
            return CcpaSignal::OptedOut(section.id());
        }
        signal = CcpaSignal::NotOptedOut;
    }
    signal
}

/// The `tcfeuv2` section of `gpp` when it is applicable.
pub fn gpp_tc_string<'g>(gpp: &'g GppString, applicable_sections: &[i32]) -> Option<&'g TcString> {
    if !applies(SectionId::TcfEuV2, applicable_sections) {
        return None;
    }
    match gpp.section(SectionId::TcfEuV2) {
        Some(Section::TcfEuV2(tc)) => Some(tc),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::ids::IdSet;
    use crate::signals::tcf::Restriction;
    use alloc::vec;

    /// Consent to purposes 1, 2, 7, 8, 9, 10; vendors 2, 755, 1000-1002, 40000 consent; purpose
    /// 2 not allowed for vendor 755, purpose 7 LI-only for vendors 3 and 4.
    const TC: &str = "CP1R2oAP1R23oEsAHDFRCWFoAMPAAEIAAAqM4gQBAABALzgfQB9ScQAAMf_gBBAAIC8x4AGAAYACAAAA.QF5wAQF5gAAA.dAAAAAAAAaoA";

    fn tc() -> TcString {
        TcString::decode(TC).unwrap()
    }

    const SITE: [(&str, &[u8]); 5] = [
        ("analytics", &[1, 7, 8, 9]),
        ("advertising", &[1, 2, 3, 4]),
        ("measurement", &[1, 2, 10]),
        ("nothing", &[]),
        ("nonsense", &[1, 25]),
    ];

    #[test]
    fn a_purpose_needs_every_tcf_purpose() {
        let grants = tcf_purposes(&tc(), SITE, None).unwrap();
        assert_eq!(
            grants,
            [
                ("analytics", true),
                ("advertising", false),
                ("measurement", true),
                ("nothing", false),
                ("nonsense", false),
            ]
        );
    }

    #[test]
    fn a_vendor_needs_its_consent_and_no_restriction() {
        let for_vendor = |vendor| {
            tcf_purposes(&tc(), SITE, Some(vendor))
                .unwrap()
                .into_iter()
                .filter(|(_, granted)| *granted)
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
        };
        assert_eq!(for_vendor(2), ["analytics", "measurement"]);
        assert_eq!(for_vendor(1001), ["analytics", "measurement"]);
        // No consent for vendor 3 (it only has legitimate interest).
        assert!(for_vendor(3).is_empty());
        // Purpose 2 is not allowed for vendor 755.
        assert_eq!(for_vendor(755), ["analytics"]);
    }

    #[test]
    fn restrictions_that_take_consent_away() {
        let mut tc = tc();
        let restrict = |t| Restriction {
            purpose_id: 7,
            restriction_type: t,
            vendors: IdSet::from_ranges(vec![(2, 2)]),
        };
        for (t, analytics) in [
            (RestrictionType::NotAllowed, false),
            (RestrictionType::RequireConsent, true),
            (RestrictionType::RequireLegitimateInterest, false),
        ] {
            tc.publisher_restrictions = vec![restrict(t)];
            let grants = tcf_purposes(&tc, [("analytics", &[1u8, 7][..])], Some(2)).unwrap();
            assert_eq!(grants, [("analytics", analytics)], "{t:?}");
        }
    }

    #[test]
    fn strings_that_grant_nothing() {
        let mut global = tc();
        global.is_service_specific = false;
        assert_eq!(
            tcf_purposes(&global, SITE, None),
            Err(TcfRefusal::NotServiceSpecific)
        );
        let mut v1 = tc();
        v1.version = 1;
        assert_eq!(tcf_purposes(&v1, SITE, None), Err(TcfRefusal::Version1));
        assert!(!TcfRefusal::Version1.message().is_empty());
    }

    /// `uspv1` opted out, `usnat` sale opt-out and GPC, `usca` sharing opt-out, `usva` not
    /// opted out, `usco` targeted-advertising opt-out.
    const US: &str = "DBABzsA~1YYN~CUAQkAAAAmCA.YA~BAEAAABA~BAIAAFA~BAEAAEA.QA";

    #[test]
    fn the_ccpa_opt_out_of_each_applicable_section() {
        let gpp = GppString::decode(US).unwrap();
        let cases: [(&[i32], CcpaSignal); 9] = [
            (&[], CcpaSignal::Silent),
            (&[-1], CcpaSignal::Silent),
            (&[0], CcpaSignal::Silent),
            (&[2], CcpaSignal::Silent),
            (&[6], CcpaSignal::OptedOut(SectionId::UspV1)),
            (&[7], CcpaSignal::OptedOut(SectionId::UsNat)),
            (&[8], CcpaSignal::OptedOut(SectionId::UsCa)),
            (&[9], CcpaSignal::NotOptedOut),
            (&[9, 10], CcpaSignal::OptedOut(SectionId::UsCo)),
        ];
        for (applicable, signal) in cases {
            assert_eq!(ccpa_opt_out(&gpp, applicable), signal, "{applicable:?}");
        }
    }

    #[test]
    fn gpc_alone_is_an_opt_out() {
        // usnat (7) with every opt-out 2 (did not opt out), then a GPC sub-section with Gpc set.
        let gpp = GppString::decode("DBABLA~BqqqqqqqqqqqqqqqqA.YA").unwrap();
        let Some(Section::Us(nat)) = gpp.section(SectionId::UsNat) else {
            panic!("no usnat");
        };
        assert_eq!(nat.sale_opt_out(), Some(2));
        assert!(nat.gpc());
        assert_eq!(
            ccpa_opt_out(&gpp, &[7]),
            CcpaSignal::OptedOut(SectionId::UsNat)
        );
    }

    #[test]
    fn the_tc_string_of_a_gpp_string_when_it_applies() {
        let text = ["DBABM~", TC].concat();
        let gpp = GppString::decode(&text).unwrap();
        assert_eq!(gpp_tc_string(&gpp, &[2]), Some(&tc()));
        assert_eq!(gpp_tc_string(&gpp, &[7]), None);
        assert_eq!(gpp_tc_string(&gpp, &[-1]), None);
        let us = GppString::decode(US).unwrap();
        assert_eq!(gpp_tc_string(&us, &[2]), None);
    }
}
