//! The account a service runs as (`--user`): parsed from the option, named for the SCM, and
//! its SID for the ACL entries.

use super::super::acl::Sid;

/// The account a service runs as (`--user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// `LocalSystem` (the default): full access to the machine.
    LocalSystem,
    /// `NT AUTHORITY\LocalService`: few rights, anonymous on the network.
    LocalService,
    /// `NT AUTHORITY\NetworkService`: few rights, the machine's identity on the network.
    NetworkService,
    /// `NT SERVICE\NAME`: the service's own virtual account (no password).
    Virtual(String),
    /// `DOMAIN\user` or `.\user`, with a password (`--password-file`).
    User(String),
}

impl Account {
    /// Parse `--user`; `service` is the service being installed (for `NT SERVICE\NAME`).
    pub fn parse(user: Option<&str>) -> Account {
        let Some(user) = user.map(str::trim) else {
            return Account::LocalSystem;
        };
        let lower = user.to_ascii_lowercase();
        let bare = lower
            .strip_prefix(r"nt authority\")
            .unwrap_or(lower.as_str());
        match bare {
            "localsystem" | "system" | r".\localsystem" => Account::LocalSystem,
            "localservice" | "local service" => Account::LocalService,
            "networkservice" | "network service" => Account::NetworkService,
            _ if lower.starts_with(r"nt service\") => Account::Virtual(user.to_owned()),
            _ => Account::User(user.to_owned()),
        }
    }

    /// The account name given to the SCM (`None` = `LocalSystem`).
    pub fn scm_name(&self) -> Option<String> {
        match self {
            Account::LocalSystem => None,
            Account::LocalService => Some(r"NT AUTHORITY\LocalService".to_owned()),
            Account::NetworkService => Some(r"NT AUTHORITY\NetworkService".to_owned()),
            Account::Virtual(n) | Account::User(n) => Some(n.clone()),
        }
    }

    /// Whether the SCM needs a password for it.
    pub fn needs_password(&self) -> bool {
        matches!(self, Account::User(_))
    }

    /// Its SID, for ACLs: well-known ones by number (account names are localized), others
    /// by lookup (a virtual account exists once its service does).
    pub fn sid(&self) -> std::io::Result<Sid> {
        match self {
            Account::LocalSystem => Sid::from_string("S-1-5-18"),
            Account::LocalService => Sid::from_string("S-1-5-19"),
            Account::NetworkService => Sid::from_string("S-1-5-20"),
            Account::Virtual(n) | Account::User(n) => Sid::lookup(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_to_scm_names() {
        let name = |u: Option<&str>| Account::parse(u).scm_name();
        assert_eq!(name(None), None);
        assert_eq!(name(Some("LocalSystem")), None);
        assert_eq!(
            name(Some("LocalService")).as_deref(),
            Some(r"NT AUTHORITY\LocalService")
        );
        assert_eq!(
            name(Some(r"NT AUTHORITY\NetworkService")).as_deref(),
            Some(r"NT AUTHORITY\NetworkService")
        );
        assert_eq!(
            Account::parse(Some(r"NT SERVICE\sync")),
            Account::Virtual(r"NT SERVICE\sync".into())
        );
        assert_eq!(
            Account::parse(Some(r"CORP\svc-sync")),
            Account::User(r"CORP\svc-sync".into())
        );
        assert!(Account::parse(Some(r".\bob")).needs_password());
        assert!(!Account::parse(Some(r"NT SERVICE\sync")).needs_password());
    }

    #[test]
    fn built_in_accounts_have_well_known_sids() {
        assert_eq!(
            Account::LocalService
                .sid()
                .and_then(|s| s.to_string_sid())
                .expect("sid"),
            "S-1-5-19"
        );
        assert_eq!(
            Account::NetworkService
                .sid()
                .and_then(|s| s.to_string_sid())
                .expect("sid"),
            "S-1-5-20"
        );
    }
}
