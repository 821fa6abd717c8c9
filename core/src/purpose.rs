//! Purposes: what a site may use data for, declared in its configuration.
//!
//! A [`Purpose`] is a validated name (`analytics`, `advertising`, ...). The [`PurposeCatalog`]
//! is the site's declared list; inside the core a set of purposes is a [`PurposeSet`], a bit set
//! over the catalog's indices, so checking an event against the granted set costs one `and`.

use crate::json::Value;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The most purposes a site can declare (the width of [`PurposeSet`]).
pub const MAX_PURPOSES: usize = 64;

/// The longest purpose name, in bytes.
pub const MAX_PURPOSE_NAME_BYTES: usize = 64;

/// A purpose name: a lower-case ASCII letter, then up to 63 of `a-z`, `0-9`, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purpose(String);

impl Purpose {
    /// Validates `name` as a purpose name.
    pub fn parse(name: &str) -> Result<Purpose, InvalidPurposeName> {
        if is_valid_name(name) {
            Ok(Purpose(String::from(name)))
        } else {
            Err(InvalidPurposeName)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` is a valid purpose name (see [`Purpose`]).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            first.is_ascii_lowercase()
                && bytes.len() <= MAX_PURPOSE_NAME_BYTES
                && rest.iter().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-'
                })
        }
        None => false,
    }
}

/// A name that is not a valid purpose name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidPurposeName;

impl fmt::Display for InvalidPurposeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a purpose name is a lower-case letter followed by up to 63 of a-z, 0-9, _ and -",
        )
    }
}

impl core::error::Error for InvalidPurposeName {}

/// A set of purposes from one catalog, as a bit set over catalog indices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PurposeSet(u64);

impl PurposeSet {
    /// The empty set.
    pub const EMPTY: PurposeSet = PurposeSet(0);

    /// The set holding only the purpose at catalog index `index` (empty when out of range).
    pub fn only(index: usize) -> PurposeSet {
        match u32::try_from(index).ok().and_then(|i| 1u64.checked_shl(i)) {
            Some(bit) if index < MAX_PURPOSES => PurposeSet(bit),
            _ => PurposeSet::EMPTY,
        }
    }

    /// The set of catalog indices `0..n` (every index when `n` is 64 or more).
    fn below(n: usize) -> PurposeSet {
        PurposeSet(
            match u32::try_from(n).ok().and_then(|n| 1u64.checked_shl(n)) {
                Some(bit) => bit - 1,
                None => u64::MAX,
            },
        )
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the purpose at `index` is in the set.
    pub fn contains(self, index: usize) -> bool {
        !self.intersection(PurposeSet::only(index)).is_empty()
    }

    /// Whether every purpose of `self` is in `other`.
    pub const fn is_subset_of(self, other: PurposeSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether the two sets share a purpose.
    pub const fn intersects(self, other: PurposeSet) -> bool {
        self.0 & other.0 != 0
    }

    /// The purposes in both sets.
    pub const fn intersection(self, other: PurposeSet) -> PurposeSet {
        PurposeSet(self.0 & other.0)
    }

    /// The purposes in either set.
    pub const fn union(self, other: PurposeSet) -> PurposeSet {
        PurposeSet(self.0 | other.0)
    }

    /// The purposes of `self` that are not in `other`.
    pub const fn difference(self, other: PurposeSet) -> PurposeSet {
        PurposeSet(self.0 & !other.0)
    }

    /// Catalog indices in the set, in ascending order.
    pub fn indices(self) -> impl Iterator<Item = usize> {
        (0..MAX_PURPOSES).filter(move |&i| self.contains(i))
    }

    /// How many purposes the set holds.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }
}

/// The purposes a site declared: their names and which of them are essential or count as a sale
/// of data under CCPA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurposeCatalog {
    names: Vec<Purpose>,
    essential: PurposeSet,
    sale: PurposeSet,
}

/// Why a catalog could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogError {
    /// The same name was declared twice.
    Duplicate(String),
    /// More than [`MAX_PURPOSES`] purposes.
    TooMany,
    /// There is no essential purpose to send consent changes under.
    NoEssentialPurpose,
    /// A sale purpose names something not declared as a non-essential purpose.
    UnknownSalePurpose(String),
}

impl CatalogError {
    /// A lower-case sentence saying what is wrong.
    pub fn message(&self) -> String {
        match self {
            CatalogError::Duplicate(name) => {
                crate::text::concat(&["purpose `", name, "` is declared twice"])
            }
            CatalogError::TooMany => String::from("at most 64 purposes can be declared"),
            CatalogError::NoEssentialPurpose => {
                String::from("at least one essential purpose is needed")
            }
            CatalogError::UnknownSalePurpose(name) => crate::text::concat(&[
                "sale purpose `",
                name,
                "` is not a declared non-essential purpose",
            ]),
        }
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for CatalogError {}

impl PurposeCatalog {
    /// Builds a catalog: essential purposes first, then the others. `sale` must name declared
    /// non-essential purposes.
    pub fn new(
        essential: Vec<Purpose>,
        optional: Vec<Purpose>,
        sale: &[Purpose],
    ) -> Result<PurposeCatalog, CatalogError> {
        fn names(list: &[Purpose]) -> Vec<&str> {
            list.iter().map(Purpose::as_str).collect()
        }
        PurposeCatalog::from_names(&names(&essential), &names(&optional), &names(sale))
    }

    /// [`PurposeCatalog::new`] from names the caller has checked with [`is_valid_name`]: the
    /// config reads them as borrowed text, which leaves no owned lists to drop on its error paths.
    pub(crate) fn from_names(
        essential: &[&str],
        optional: &[&str],
        sale: &[&str],
    ) -> Result<PurposeCatalog, CatalogError> {
        if essential.is_empty() {
            return Err(CatalogError::NoEssentialPurpose);
        }
        let mut catalog = PurposeCatalog {
            names: Vec::with_capacity(essential.len() + optional.len()),
            essential: PurposeSet::below(essential.len()),
            sale: PurposeSet::EMPTY,
        };
        for list in [essential, optional] {
            for &name in list {
                if catalog.index_of(name).is_some() {
                    return Err(CatalogError::Duplicate(String::from(name)));
                }
                catalog.names.push(Purpose(String::from(name)));
            }
        }
        if catalog.names.len() > MAX_PURPOSES {
            return Err(CatalogError::TooMany);
        }
        for &name in sale {
            match catalog.index_of(name) {
                Some(i) if i >= essential.len() => {
                    catalog.sale = catalog.sale.union(PurposeSet::only(i))
                }
                _ => return Err(CatalogError::UnknownSalePurpose(String::from(name))),
            }
        }
        Ok(catalog)
    }

    /// The catalog index of `name`, if declared.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|p| p.as_str() == name)
    }

    /// The name at catalog index `index`.
    pub fn name(&self, index: usize) -> Option<&Purpose> {
        self.names.get(index)
    }

    /// How many purposes are declared.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no purpose is declared (never true for a built catalog).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The set of every declared purpose.
    pub fn all(&self) -> PurposeSet {
        PurposeSet::below(self.names.len())
    }

    /// The essential purposes: always granted, never recorded.
    pub fn essential(&self) -> PurposeSet {
        self.essential
    }

    /// The purposes denied while the visitor opts out of the sale of their data (CCPA).
    pub fn sale(&self) -> PurposeSet {
        self.sale
    }

    /// The set named by `names`, or the first name that is not declared.
    pub fn set_of<'a, I>(&self, names: I) -> Result<PurposeSet, &'a str>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut set = PurposeSet::EMPTY;
        for name in names {
            set = set.union(PurposeSet::only(self.index_of(name).ok_or(name)?));
        }
        Ok(set)
    }

    /// The set named by the JSON strings `items` (anything else names nothing), or the first name
    /// that is not declared.
    pub fn set_of_values<'a>(&self, items: &'a [Value]) -> Result<PurposeSet, &'a str> {
        let mut set = PurposeSet::EMPTY;
        for item in items {
            let name = item.as_str().unwrap_or_default();
            set = set.union(PurposeSet::only(self.index_of(name).ok_or(name)?));
        }
        Ok(set)
    }

    /// The names of the purposes in `set`, in catalog order.
    pub fn names_of(&self, set: PurposeSet) -> impl Iterator<Item = &Purpose> {
        self.names
            .iter()
            .enumerate()
            .filter(move |(i, _)| set.contains(*i))
            .map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn p(name: &str) -> Purpose {
        Purpose::parse(name).unwrap()
    }

    #[test]
    fn purpose_names_follow_the_documented_pattern() {
        let long_ok = "a".repeat(64);
        let too_long = "a".repeat(65);
        for (name, ok) in [
            ("analytics", true),
            ("ad_storage", true),
            ("a-b-9", true),
            (long_ok.as_str(), true),
            ("", false),
            ("Analytics", false),
            ("9lives", false),
            ("_x", false),
            ("has space", false),
            ("émoji", false),
            (too_long.as_str(), false),
        ] {
            assert_eq!(Purpose::parse(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn catalog_puts_essential_purposes_first_and_marks_sale_purposes() {
        let catalog = PurposeCatalog::new(
            vec![p("necessary")],
            vec![p("analytics"), p("advertising")],
            &[p("advertising")],
        )
        .unwrap();
        assert_eq!(catalog.index_of("necessary"), Some(0));
        assert_eq!(catalog.essential(), PurposeSet::only(0));
        assert_eq!(catalog.sale(), PurposeSet::only(2));
        assert_eq!(
            catalog.set_of(["analytics", "advertising"]),
            Ok(catalog.all().difference(catalog.essential()))
        );
        assert_eq!(catalog.set_of(["analytics", "nope"]), Err("nope"));
        let names: Vec<&str> = catalog
            .names_of(catalog.all())
            .map(Purpose::as_str)
            .collect();
        assert_eq!(names, ["necessary", "analytics", "advertising"]);
    }

    #[test]
    fn catalog_refuses_bad_declarations() {
        assert_eq!(
            PurposeCatalog::new(vec![], vec![p("a")], &[]),
            Err(CatalogError::NoEssentialPurpose)
        );
        assert_eq!(
            PurposeCatalog::new(vec![p("a")], vec![p("a")], &[]),
            Err(CatalogError::Duplicate("a".into()))
        );
        assert_eq!(
            PurposeCatalog::new(vec![p("a")], vec![p("b")], &[p("a")]),
            Err(CatalogError::UnknownSalePurpose("a".into()))
        );
        let many: Vec<Purpose> = (0..64).map(|i| p(&alloc::format!("p{i}"))).collect();
        assert_eq!(
            PurposeCatalog::new(vec![p("e")], many, &[]),
            Err(CatalogError::TooMany)
        );
    }

    #[test]
    fn set_operations() {
        let a = PurposeSet::only(1).union(PurposeSet::only(3));
        let b = PurposeSet::only(3);
        assert!(b.is_subset_of(a));
        assert!(!a.is_subset_of(b));
        assert!(a.intersects(b));
        assert_eq!(a.difference(b), PurposeSet::only(1));
        assert_eq!(a.indices().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(a.len(), 2);
        assert!(PurposeSet::only(64).is_empty());
        assert!(PurposeSet::only(63).contains(63));
    }
}
