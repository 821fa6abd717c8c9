//! Roles and what each may do: the one permission table every authenticated route is checked
//! against.
//!
//! | permission | admin | editor | viewer | dsr |
//! | --- | --- | --- | --- | --- |
//! | [`Permission::ReadData`] (one visitor's events, stats) | yes | yes | yes | no |
//! | [`Permission::ExportData`] (everyone's events, page by page) | yes | yes | no | no |
//! | [`Permission::ReadMetrics`] | yes | yes | yes | no |
//! | [`Permission::ReadAudit`] | yes | no | no | no |
//! | [`Permission::ManageTokens`] | yes | no | no | no |
//! | [`Permission::TestControls`] (faults, reset) | yes | no | no | no |
//! | [`Permission::ReadUsers`] (one user's data, without exports) | yes | yes | yes | no |
//! | [`Permission::EraseData`] (`DELETE /v1/users/{id}`) | yes | yes | no | no |
//! | [`Permission::RectifyData`] (`PATCH /v1/users/{id}/traits`) | yes | yes | no | no |
//! | [`Permission::ManageSuppressions`] | yes | yes | no | no |
//! | [`Permission::ManageRetention`] (sweeps) | yes | yes | no | no |
//! | [`Permission::OpenDsr`] (the OpenDSR processor API) | yes | no | no | yes |
//!
//! `editor` is the role for data-subject work (erasure, rectification, suppression, retention);
//! `viewer` reads one user's data but never an export of it (exports are made for OpenDSR
//! access and portability requests and fetched by their unguessable link); `dsr` is the role
//! of a controller's OpenDSR client and opens the OpenDSR API and nothing else.

use std::fmt;
use std::str::FromStr;

/// Who a token belongs to, in terms of what it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including tokens and test controls.
    Admin,
    /// Data-subject work (erasure, rectification, suppression, retention) and reads.
    Editor,
    /// Reads only, no exports.
    Viewer,
    /// The OpenDSR API only.
    Dsr,
}

/// What an authenticated route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// One visitor's stored events, and counters.
    ReadData,
    /// Everyone's stored events, page by page: an export.
    ExportData,
    /// The Prometheus metrics.
    ReadMetrics,
    /// The audit log.
    ReadAudit,
    /// Creating, listing and revoking tokens.
    ManageTokens,
    /// Fault injection and reset (with `--fault-injection` only).
    TestControls,
    /// Everything held about one user or anonymous id (`GET /v1/users/{id}`).
    ReadUsers,
    /// Erasing a data subject's data at once.
    EraseData,
    /// Rectifying a user's stored traits.
    RectifyData,
    /// Adding identities to and removing them from the suppression list.
    ManageSuppressions,
    /// Running and reading retention sweeps.
    ManageRetention,
    /// The OpenDSR processor API (requests, status, cancellation).
    OpenDsr,
}

impl Role {
    /// Every role, for tables and tests.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Editor, Role::Viewer, Role::Dsr];

    /// Whether this role has `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::ReadData | Permission::ReadMetrics | Permission::ReadUsers => {
                matches!(self, Role::Admin | Role::Editor | Role::Viewer)
            }
            Permission::ExportData => matches!(self, Role::Admin | Role::Editor),
            Permission::EraseData
            | Permission::RectifyData
            | Permission::ManageSuppressions
            | Permission::ManageRetention => matches!(self, Role::Admin | Role::Editor),
            Permission::OpenDsr => matches!(self, Role::Admin | Role::Dsr),
            Permission::ReadAudit | Permission::ManageTokens | Permission::TestControls => {
                self == Role::Admin
            }
        }
    }

    /// The role's name, as written on the command line and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::Dsr => "dsr",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not a role name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a role: admin, editor, viewer or dsr",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_table() {
        use Permission::*;
        let table = [
            (ReadData, [true, true, true, false]),
            (ExportData, [true, true, false, false]),
            (ReadMetrics, [true, true, true, false]),
            (ReadAudit, [true, false, false, false]),
            (ManageTokens, [true, false, false, false]),
            (TestControls, [true, false, false, false]),
            (ReadUsers, [true, true, true, false]),
            (EraseData, [true, true, false, false]),
            (RectifyData, [true, true, false, false]),
            (ManageSuppressions, [true, true, false, false]),
            (ManageRetention, [true, true, false, false]),
            (OpenDsr, [true, false, false, true]),
        ];
        for (permission, expected) in table {
            for (role, allowed) in Role::ALL.into_iter().zip(expected) {
                assert_eq!(role.allows(permission), allowed, "{role} {permission:?}");
            }
        }
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root"
            .parse::<Role>()
            .unwrap_err()
            .to_string()
            .contains("viewer"));
    }
}
