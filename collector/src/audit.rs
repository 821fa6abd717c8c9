//! The audit trail's entries and their SHA-256 chain: what one entry says, how its hash is made,
//! and how a whole log is verified.
//!
//! Entry `n`'s hash is SHA-256 over its sequence number, time, actor, role, action, target,
//! outcome and entry `n - 1`'s hash (64 zeros for the first), each field length-prefixed so no
//! two different entries encode alike. Editing an entry changes its hash; deleting or reordering
//! entries breaks the sequence or the link to the previous hash. Cutting entries off the end
//! leaves a valid shorter chain: every append is also written to the JSON log with its hash
//! (`audit` lines), so the head can be compared with a copy kept elsewhere.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// The previous hash of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The actor of what the collector does by itself (start, stop).
pub const SYSTEM_ACTOR: &str = "system";

/// An entry to append: everything but its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewAuditEntry {
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// Who: a token's name, `admin-token`, `system`, or `cli:<user>`.
    pub actor: String,
    /// Their role (`system` for the collector itself).
    pub role: String,
    /// What, e.g. `events.read`, `token.create`, `collector.start`.
    pub action: String,
    /// On what: a query, a token id, a path.
    pub target: String,
    /// How it ended: the HTTP status, or `ok`.
    pub outcome: String,
}

/// A stored entry: its place, its fields, and the chain's two hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Its place: 1, 2, 3, … without gaps.
    pub seq: i64,
    /// What it records.
    #[serde(flatten)]
    pub fields: NewAuditEntry,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

impl NewAuditEntry {
    /// The entry as stored at `seq` after an entry whose hash is `prev_hash`.
    pub fn chain(self, seq: i64, prev_hash: &str) -> AuditEntry {
        let hash = entry_hash(seq, &self, prev_hash);
        AuditEntry {
            seq,
            fields: self,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }
}

/// The hash of an entry with these fields at `seq` after `prev_hash`.
pub fn entry_hash(seq: i64, entry: &NewAuditEntry, prev_hash: &str) -> String {
    let mut hasher = Sha256::new();
    let seq = seq.to_string();
    let at = entry.at_ms.to_string();
    for field in [
        seq.as_str(),
        at.as_str(),
        &entry.actor,
        &entry.role,
        &entry.action,
        &entry.target,
        &entry.outcome,
        prev_hash,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    crate::tokens::hex(&hasher.finalize())
}

/// Where and why a chain is broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenChain {
    /// The sequence number of the first entry that does not verify.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for BrokenChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "audit entry {} is broken: {}", self.seq, self.reason)
    }
}

impl std::error::Error for BrokenChain {}

/// Checks entries given in stored order (by `seq`), continuing from `expected_seq` and
/// `prev_hash` (1 and [`GENESIS_HASH`] for the start of the log). Returns the last seq and hash.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    mut expected_seq: i64,
    prev_hash: &str,
) -> Result<(i64, String), BrokenChain> {
    let mut prev = prev_hash.to_owned();
    let mut last = expected_seq - 1;
    for entry in entries {
        let broken = |reason| BrokenChain {
            seq: entry.seq.min(expected_seq),
            reason,
        };
        if entry.seq != expected_seq {
            return Err(broken("an entry before it is missing or out of order"));
        }
        if entry.prev_hash != prev {
            return Err(broken(
                "its previous hash is not the hash of the entry before it",
            ));
        }
        if entry_hash(entry.seq, &entry.fields, &prev) != entry.hash {
            return Err(broken("its content does not match its hash"));
        }
        prev.clone_from(&entry.hash);
        last = entry.seq;
        expected_seq += 1;
    }
    Ok((last, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> NewAuditEntry {
        NewAuditEntry {
            at_ms: 1,
            actor: "alice".to_owned(),
            role: "admin".to_owned(),
            action: action.to_owned(),
            target: "/v1/events".to_owned(),
            outcome: "200".to_owned(),
        }
    }

    fn log(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out
                .last()
                .map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone());
            out.push(entry(&format!("a{seq}")).chain(seq, &prev));
        }
        out
    }

    #[test]
    fn an_untouched_log_verifies() {
        let entries = log(5);
        assert_eq!(
            verify(&entries, 1, GENESIS_HASH),
            Ok((5, entries[4].hash.clone()))
        );
        assert_eq!(
            verify(&[], 1, GENESIS_HASH),
            Ok((0, GENESIS_HASH.to_owned()))
        );
    }

    #[test]
    fn edits_deletions_and_reorders_are_found_at_the_entry() {
        let mut edited = log(5);
        edited[2].fields.target = "/v1/stats".to_owned();
        assert_eq!(verify(&edited, 1, GENESIS_HASH).unwrap_err().seq, 3);

        let mut deleted = log(5);
        deleted.remove(1);
        assert_eq!(verify(&deleted, 1, GENESIS_HASH).unwrap_err().seq, 2);

        let mut swapped = log(5);
        swapped.swap(1, 3);
        assert_eq!(verify(&swapped, 1, GENESIS_HASH).unwrap_err().seq, 2);

        let mut renumbered = log(5);
        renumbered[3].seq = 3;
        assert_eq!(verify(&renumbered, 1, GENESIS_HASH).unwrap_err().seq, 3);
    }

    #[test]
    fn fields_are_length_prefixed() {
        let mut a = entry("x");
        a.actor = "ab".to_owned();
        a.role = "c".to_owned();
        let mut b = entry("x");
        b.actor = "a".to_owned();
        b.role = "bc".to_owned();
        assert_ne!(
            entry_hash(1, &a, GENESIS_HASH),
            entry_hash(1, &b, GENESIS_HASH)
        );
    }
}
