//! The GPP US sections this decoder reads: `usnat` (7), `usca` (8), `usva` (9) and `usco` (10).
//!
//! Each is a core sub-section of 2-bit fields after a 6-bit version, and (except `usva`) an
//! optional GPC sub-section after a `.`. One table per section names the fields in string order
//! with `@iabgpp/cmpapi`'s names, so decoding, reporting and the opt-out reader share it.
//!
//! Values are kept raw: for notices and opt-outs 0 is not applicable, 1 yes (opted out, notice
//! given) and 2 no; for consents 0 is not applicable, 1 no consent and 2 consent; 3 is undefined
//! but, like the reference, read as it is. A US section only ever restricts (its signals are
//! opt-outs), so reading leniently can never grant anything.

use super::bits::{Bits, BitsError};
use super::gpp::{GppError, SectionId};
use alloc::vec::Vec;

/// A field of a US section: a name and how many 2-bit values it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsField {
    /// The field name, as `@iabgpp/cmpapi` reports it.
    pub name: &'static str,
    /// How many values: `None` for a single value, `Some(n)` for a list of `n`.
    pub list: Option<u8>,
}

const fn one(name: &'static str) -> UsField {
    UsField { name, list: None }
}

const fn list(name: &'static str, n: u8) -> UsField {
    UsField {
        name,
        list: Some(n),
    }
}

const SALE: &str = "SaleOptOut";
const SHARING: &str = "SharingOptOut";
const TARGETED: &str = "TargetedAdvertisingOptOut";
const SENSITIVE: &str = "SensitiveDataProcessing";
const CHILD: &str = "KnownChildSensitiveDataConsents";

const USNAT: &[UsField] = &[
    one("SharingNotice"),
    one("SaleOptOutNotice"),
    one("SharingOptOutNotice"),
    one("TargetedAdvertisingOptOutNotice"),
    one("SensitiveDataProcessingOptOutNotice"),
    one("SensitiveDataLimitUseNotice"),
    one(SALE),
    one(SHARING),
    one(TARGETED),
    list(SENSITIVE, 16),
    list(CHILD, 3),
    one("PersonalDataConsents"),
    one("MspaCoveredTransaction"),
    one("MspaOptOutOptionMode"),
    one("MspaServiceProviderMode"),
];

const USCA: &[UsField] = &[
    one("SaleOptOutNotice"),
    one("SharingOptOutNotice"),
    one("SensitiveDataLimitUseNotice"),
    one(SALE),
    one(SHARING),
    list(SENSITIVE, 9),
    list(CHILD, 2),
    one("PersonalDataConsents"),
    one("MspaCoveredTransaction"),
    one("MspaOptOutOptionMode"),
    one("MspaServiceProviderMode"),
];

const USVA: &[UsField] = &[
    one("SharingNotice"),
    one("SaleOptOutNotice"),
    one("TargetedAdvertisingOptOutNotice"),
    one(SALE),
    one(TARGETED),
    list(SENSITIVE, 8),
    one(CHILD),
    one("MspaCoveredTransaction"),
    one("MspaOptOutOptionMode"),
    one("MspaServiceProviderMode"),
];

const USCO: &[UsField] = &[
    one("SharingNotice"),
    one("SaleOptOutNotice"),
    one("TargetedAdvertisingOptOutNotice"),
    one(SALE),
    one(TARGETED),
    list(SENSITIVE, 7),
    one(CHILD),
    one("MspaCoveredTransaction"),
    one("MspaOptOutOptionMode"),
    one("MspaServiceProviderMode"),
];

/// The GPC sub-section of a US section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gpc {
    /// The 2-bit sub-section type (1 by the specification; read as written).
    pub segment_type: u8,
    /// Whether the visitor's browser sent Global Privacy Control.
    pub gpc: bool,
}

/// A value of a US section field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsValue<'a> {
    /// A single 2-bit value.
    One(u8),
    /// A list of 2-bit values.
    List(&'a [u8]),
}

/// A decoded `usnat`, `usca`, `usva` or `usco` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsSection {
    /// Which section.
    pub section: SectionId,
    /// The 6-bit version.
    pub version: u8,
    /// Every 2-bit value in table order (lists at their full length).
    values: Vec<u8>,
    /// The GPC sub-section, when the string has one.
    pub gpc: Option<Gpc>,
}

impl UsSection {
    /// The fields of `section` in string order; empty for a section that is not a US one.
    pub fn layout(section: SectionId) -> &'static [UsField] {
        match section {
            SectionId::UsNat => USNAT,
            SectionId::UsCa => USCA,
            SectionId::UsVa => USVA,
            SectionId::UsCo => USCO,
            SectionId::TcfEuV2 | SectionId::UspV1 => &[],
        }
    }

    /// Whether `section` may carry a GPC sub-section.
    pub fn has_gpc(section: SectionId) -> bool {
        matches!(
            section,
            SectionId::UsNat | SectionId::UsCa | SectionId::UsCo
        )
    }

    /// Decodes the text of a US section (`section` must be one).
    pub(crate) fn decode(section: SectionId, text: &str) -> Result<UsSection, GppError> {
        let mut parts = text.split('.');
        let mut bits = Bits::new(parts.next().unwrap_or_default())
            .ok_or(GppError::SectionNotBase64(section))?;
        let truncated = |_: BitsError| GppError::SectionTruncated(section);
        let version = bits.u8(6).map_err(truncated)?;
        // `usnat` version 1 had 12 sensitive-data and 2 child-consent values, not 16 and 3. Like
        // `@iabgpp/cmpapi`, tell the layouts apart by length: 60 or 66 bits is the old one.
        let old_usnat = section == SectionId::UsNat && matches!(bits.len(), 60 | 66);
        let mut values = Vec::new();
        for field in Self::layout(section) {
            let n = field.list.unwrap_or(1);
            let present = match field.name {
                SENSITIVE if old_usnat => 12,
                CHILD if old_usnat => 2,
                _ => n,
            };
            for i in 0..n {
                values.push(if i < present {
                    bits.u8(2).map_err(truncated)?
                } else {
                    0
                });
            }
        }
        let gpc = match parts.next() {
            Some(sub) if Self::has_gpc(section) => {
                let mut bits = Bits::new(sub).ok_or(GppError::SectionNotBase64(section))?;
                Some(Gpc {
                    segment_type: bits.u8(2).map_err(truncated)?,
                    gpc: bits.bit().map_err(truncated)?,
                })
            }
            // Further sub-sections are not defined; like the reference, they are not read.
            _ => None,
        };
        Ok(UsSection {
            section,
            version,
            values,
            gpc,
        })
    }

    /// Every field with its value, in string order. A `usnat` section of version 1 reports 12
    /// sensitive-data and 2 child-consent values, as the reference does.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, UsValue<'_>)> + '_ {
        let old_usnat = self.section == SectionId::UsNat && self.version == 1;
        let mut rest: &[u8] = &self.values;
        Self::layout(self.section).iter().map(move |field| {
            let n = usize::from(field.list.unwrap_or(1));
            let (this, after) = rest.split_at(n.min(rest.len()));
            rest = after;
            let value = match field.list {
                None => UsValue::One(this.first().copied().unwrap_or_default()),
                Some(_) => {
                    let shown = match field.name {
                        SENSITIVE if old_usnat => 12,
                        CHILD if old_usnat => 2,
                        _ => this.len(),
                    };
                    UsValue::List(this.get(..shown).unwrap_or(this))
                }
            };
            (field.name, value)
        })
    }

    /// The value of the single-valued field `name`, when the section has one.
    pub fn value(&self, name: &str) -> Option<u8> {
        self.fields().find_map(|(field, value)| match value {
            UsValue::One(v) if field == name => Some(v),
            _ => None,
        })
    }

    /// `SaleOptOut` (1: opted out of the sale of personal data).
    pub fn sale_opt_out(&self) -> Option<u8> {
        self.value(SALE)
    }

    /// `SharingOptOut` (1: opted out of sharing; `usnat` and `usca`).
    pub fn sharing_opt_out(&self) -> Option<u8> {
        self.value(SHARING)
    }

    /// `TargetedAdvertisingOptOut` (1: opted out; `usnat`, `usva` and `usco`).
    pub fn targeted_advertising_opt_out(&self) -> Option<u8> {
        self.value(TARGETED)
    }

    /// Whether the GPC sub-section is present and says the browser sent Global Privacy Control.
    pub fn gpc(&self) -> bool {
        self.gpc.is_some_and(|g| g.gpc)
    }
}
