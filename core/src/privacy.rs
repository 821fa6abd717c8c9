//! Minimisation applied to what the browser itself reports about a page.
//!
//! Query strings and fragments carry search terms, emails and tokens far too often, so page URLs
//! and referrers keep only origin and path. Long values are cut at a character boundary.

use crate::limits::{MAX_PAGE_TITLE_BYTES, MAX_PAGE_URL_BYTES};
use alloc::string::String;

/// What the shell reports about the page for a page event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageInfo {
    /// `location.href`.
    pub url: Option<String>,
    /// `document.title`.
    pub title: Option<String>,
    /// `document.referrer`.
    pub referrer: Option<String>,
}

impl PageInfo {
    /// The page info with query strings and fragments removed, lengths limited and empty values
    /// dropped.
    pub fn minimised(&self) -> PageInfo {
        let url = |u: &Option<String>| {
            u.as_deref()
                .map(|u| truncate(without_query(u), MAX_PAGE_URL_BYTES))
                .filter(|u| !u.is_empty())
                .map(String::from)
        };
        PageInfo {
            url: url(&self.url),
            title: self
                .title
                .as_deref()
                .map(|t| truncate(t, MAX_PAGE_TITLE_BYTES))
                .filter(|t| !t.is_empty())
                .map(String::from),
            referrer: url(&self.referrer),
        }
    }
}

/// `url` up to its first `?` or `#`.
pub fn without_query(url: &str) -> &str {
    url.get(..crate::endpoint::find_byte(url, b"?#"))
        .unwrap_or_default()
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_query_and_fragment() {
        for (url, expected) in [
            (
                "https://shop.example/tea?email=a@b.example",
                "https://shop.example/tea",
            ),
            (
                "https://shop.example/tea#token=secret",
                "https://shop.example/tea",
            ),
            ("https://shop.example/?q=x#y", "https://shop.example/"),
            ("https://shop.example/tea", "https://shop.example/tea"),
        ] {
            assert_eq!(without_query(url), expected);
        }
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("😀😀", 5), "😀");
    }

    #[test]
    fn page_info_is_minimised() {
        let long_title = "t".repeat(5000);
        let info = PageInfo {
            url: Some("https://s.example/p?session=1".into()),
            title: Some(long_title),
            referrer: Some(String::new()),
        }
        .minimised();
        assert_eq!(info.url.as_deref(), Some("https://s.example/p"));
        assert_eq!(
            info.title.as_ref().map(String::len),
            Some(MAX_PAGE_TITLE_BYTES)
        );
        assert_eq!(info.referrer, None);
    }
}
