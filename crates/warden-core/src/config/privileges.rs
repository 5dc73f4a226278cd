//! Least privilege and hard limits of a service: `user`, `group`, `umask`, `nice`,
//! `oom_score_adjust`, `no_new_privileges`, `limits = { ... }`, `memory_limit`, `cpu_max`.
//!
//! `user` and `group` must exist when the config is loaded (an unknown one is an error at
//! its key); whether warden may switch to them (it must be root) is decided when the
//! service starts, so that `warden check` works for anyone and only that service fails.

use crate::process::{CpuMax, Credentials, LimitValue, Resource};

use super::limits::{
    MAX_CPU_PERCENT, MAX_LIMIT_VALUE, MAX_MEMORY_LIMIT, MAX_NOFILE, MAX_NPROC, MIN_MEMORY_LIMIT,
};
use super::reader::{Field, Reader, Section};

/// What a service may do and use. The default changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Privileges {
    /// `user`, `group`, `umask`, `nice`, `oom_score_adjust`, `no_new_privileges`, `limits`.
    pub credentials: Credentials,
    /// `memory_limit`: the hard memory limit of the service's cgroup (`memory.max`) or job.
    pub memory_limit: Option<u64>,
    /// `cpu_max = "50%"`: the CPU quota of the service's cgroup (`cpu.max`).
    pub cpu_max: Option<CpuMax>,
}

/// Read these keys (registered in `service.rs`'s `SERVICE_KEYS`) from a service's table; errors are recorded, defaults stand in.
pub(super) fn read(r: &mut Reader<'_>, section: Section<'_>) -> Privileges {
    let field = |key: &str| section.field(key);
    let mut p = Privileges::default();
    let c = &mut p.credentials;
    c.user = field("user").and_then(|f| read_user(r, f));
    c.group = field("group").and_then(|f| read_group(r, f));
    c.umask = field("umask").and_then(|f| read_umask(r, f));
    c.nice = field("nice")
        .filter(|f| unix_only(r, *f))
        .and_then(|f| r.integer_in(f, -20, 19))
        .map(|n| n as i32);
    c.oom_score_adjust = field("oom_score_adjust")
        .filter(|f| linux_only(r, *f))
        .and_then(|f| r.integer_in(f, -1000, 1000))
        .map(|n| n as i32);
    c.no_new_privileges = field("no_new_privileges")
        .filter(|f| linux_only(r, *f))
        .and_then(|f| r.bool(f))
        .unwrap_or(false);
    c.limits = field("limits")
        .filter(|f| unix_only(r, *f))
        .and_then(|f| read_limits(r, f))
        .unwrap_or_default();
    p.memory_limit = field("memory_limit").and_then(|f| read_memory_limit(r, f));
    p.cpu_max = field("cpu_max")
        .filter(|f| linux_only(r, *f))
        .and_then(|f| read_cpu_max(r, f));
    p
}

fn unix_only(r: &mut Reader<'_>, f: Field<'_>) -> bool {
    if cfg!(unix) {
        return true;
    }
    r.error(
        f.key_pos(),
        format!("{} has no meaning on Windows", f.name()),
        Some("a Windows service runs as the account given to `warden install --user`".into()),
    );
    false
}

fn linux_only(r: &mut Reader<'_>, f: Field<'_>) -> bool {
    if cfg!(target_os = "linux") {
        return true;
    }
    r.error(
        f.key_pos(),
        format!("{} is a Linux setting", f.name()),
        None,
    );
    false
}

fn read_user(r: &mut Reader<'_>, f: Field<'_>) -> Option<String> {
    if !unix_only(r, f) {
        return None;
    }
    let name = r.non_empty_string(f)?;
    match crate::process::lookup_account(&name) {
        Ok(Some(_)) => Some(name),
        Ok(None) => {
            r.error(
                f.pos(),
                format!("unknown user \"{name}\""),
                Some(format!(
                    "create the account first (useradd --system {name}) or fix the name"
                )),
            );
            None
        }
        Err(e) => {
            r.error(
                f.pos(),
                format!("cannot look up user \"{name}\": {e}"),
                None,
            );
            None
        }
    }
}

fn read_group(r: &mut Reader<'_>, f: Field<'_>) -> Option<String> {
    if !unix_only(r, f) {
        return None;
    }
    let name = r.non_empty_string(f)?;
    match crate::process::lookup_group(&name) {
        Ok(Some(_)) => Some(name),
        Ok(None) => {
            r.error(f.pos(), format!("unknown group \"{name}\""), None);
            None
        }
        Err(e) => {
            r.error(
                f.pos(),
                format!("cannot look up group \"{name}\": {e}"),
                None,
            );
            None
        }
    }
}

/// `umask = "0027"`: octal digits in a string (an integer would read as decimal).
fn read_umask(r: &mut Reader<'_>, f: Field<'_>) -> Option<u32> {
    if !unix_only(r, f) {
        return None;
    }
    let hint = || Some("write the mask in octal, as a string: umask = \"0027\"".to_owned());
    if f.item.as_str().is_none() {
        r.error(
            f.pos(),
            format!("umask: expected a string, found {}", f.item.type_name()),
            hint(),
        );
        return None;
    }
    let s = r.string(f)?;
    let digits = s.strip_prefix("0o").unwrap_or(&s);
    match u32::from_str_radix(digits, 8) {
        Ok(mask) if mask <= 0o777 && !digits.is_empty() => Some(mask),
        _ => {
            r.error(
                f.pos(),
                format!("umask: expected an octal mask from \"000\" to \"777\", found \"{s}\""),
                hint(),
            );
            None
        }
    }
}

/// `limits = { nofile = 65536, core = 0, stack = "8MiB", memlock = "unlimited" }`.
fn read_limits(r: &mut Reader<'_>, f: Field<'_>) -> Option<Vec<(Resource, LimitValue)>> {
    let section = r.section(f)?;
    let names: Vec<&str> = Resource::ALL.iter().map(|r| r.name()).collect();
    r.check_keys(section, &names, "limits");
    let mut out = Vec::new();
    for field in section.fields() {
        let Some(resource) = Resource::parse(field.name()) else {
            continue;
        };
        if !crate::process::resource_supported(resource) {
            r.error(
                field.key_pos(),
                format!("limits.{resource} is not available on this OS"),
                None,
            );
            continue;
        }
        if let Some(value) = read_limit(r, field, resource) {
            out.push((resource, value));
        }
    }
    Some(out)
}

fn read_limit(r: &mut Reader<'_>, f: Field<'_>, resource: Resource) -> Option<LimitValue> {
    if f.item.as_str() == Some("unlimited") {
        return Some(LimitValue::Unlimited);
    }
    let max = match resource {
        Resource::Nofile => MAX_NOFILE,
        Resource::Nproc => MAX_NPROC,
        Resource::Nice => 40,
        Resource::Rtprio => 99,
        _ => MAX_LIMIT_VALUE,
    };
    let value = if resource.is_bytes() && f.item.is_str() {
        r.size(f)?
    } else if let Some(n) = f.item.as_integer() {
        if n < 0 || n as u64 > max {
            r.error(
                f.pos(),
                format!("limits.{resource} must be between 0 and {max}, found {n}"),
                Some(format!(
                    "write limits.{resource} = \"unlimited\" for no limit"
                )),
            );
            return None;
        }
        n as u64
    } else {
        let what = if resource.is_bytes() {
            "an integer, a size like \"8MiB\" or \"unlimited\""
        } else {
            "an integer or \"unlimited\""
        };
        r.error(
            f.pos(),
            format!(
                "limits.{resource}: expected {what}, found {}",
                describe(f.item)
            ),
            None,
        );
        return None;
    };
    if value > max {
        r.error(
            f.pos(),
            format!("limits.{resource}: at most {max}, found {value}"),
            None,
        );
        return None;
    }
    Some(LimitValue::Value(value))
}

fn describe(item: &toml_edit::Item) -> String {
    match item.as_str() {
        Some(s) => format!("\"{s}\""),
        None => item.type_name().to_owned(),
    }
}

fn read_memory_limit(r: &mut Reader<'_>, f: Field<'_>) -> Option<u64> {
    let bytes = r.size(f)?;
    if (MIN_MEMORY_LIMIT..=MAX_MEMORY_LIMIT).contains(&bytes) {
        return Some(bytes);
    }
    r.error(
        f.pos(),
        format!(
            "memory_limit must be between 1MiB and 1PiB ({MIN_MEMORY_LIMIT} and \
             {MAX_MEMORY_LIMIT} bytes), found {bytes}"
        ),
        None,
    );
    None
}

/// `cpu_max = "50%"` (of one CPU; `"200%"` is two).
fn read_cpu_max(r: &mut Reader<'_>, f: Field<'_>) -> Option<CpuMax> {
    let hint = || Some("write a share of one CPU: cpu_max = \"50%\" (\"200%\" is two CPUs)".into());
    if f.item.as_str().is_none() {
        r.error(
            f.pos(),
            format!(
                "cpu_max: expected a string like \"50%\", found {}",
                f.item.type_name()
            ),
            hint(),
        );
        return None;
    }
    let s = r.string(f)?;
    match s.trim().strip_suffix('%').map(|n| n.trim().parse::<u32>()) {
        Some(Ok(percent)) if (1..=MAX_CPU_PERCENT).contains(&percent) => Some(CpuMax { percent }),
        Some(Ok(percent)) => {
            r.error(
                f.pos(),
                format!("cpu_max must be between 1% and {MAX_CPU_PERCENT}%, found {percent}%"),
                None,
            );
            None
        }
        _ => {
            r.error(
                f.pos(),
                format!("cpu_max: expected a percentage like \"50%\", found \"{s}\""),
                hint(),
            );
            None
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::config::load_str;

    fn load(body: &str) -> Result<Privileges, Vec<String>> {
        let toml = format!("[services.s]\ncommand = [\"true\"]\n{body}\n");
        let env: BTreeMap<String, String> = BTreeMap::new();
        load_str(&toml, Path::new("/tmp/warden.toml"), &env)
            .map(|c| c.services[0].privileges.clone())
            .map_err(|e| e.errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn by_default_nothing_changes() {
        let p = load("").expect("valid");
        assert_eq!(p, Privileges::default());
        assert!(p.credentials.is_default());
    }

    #[test]
    fn every_key_is_read_into_its_typed_value() {
        let p = load(
            "user = \"root\"\ngroup = \"root\"\numask = \"0o027\"\nnice = -5\n\
             oom_score_adjust = -1000\nno_new_privileges = true\n\
             limits = { nofile = 65536, core = 0, stack = \"8MiB\", memlock = \"unlimited\" }\n\
             memory_limit = \"1GiB\"\ncpu_max = \"250%\"",
        )
        .expect("valid");
        let c = &p.credentials;
        assert_eq!(c.user.as_deref(), Some("root"));
        assert_eq!(c.group.as_deref(), Some("root"));
        assert_eq!(c.umask, Some(0o027));
        assert_eq!(c.nice, Some(-5));
        assert_eq!(c.oom_score_adjust, Some(-1000));
        assert!(c.no_new_privileges);
        assert_eq!(
            c.limits,
            vec![
                (Resource::Nofile, LimitValue::Value(65_536)),
                (Resource::Core, LimitValue::Value(0)),
                (Resource::Stack, LimitValue::Value(8 << 20)),
                (Resource::Memlock, LimitValue::Unlimited),
            ]
        );
        assert_eq!(p.memory_limit, Some(1 << 30));
        assert_eq!(p.cpu_max, Some(CpuMax { percent: 250 }));
    }

    #[test]
    fn out_of_bounds_values_are_errors_at_their_place() {
        let errors = load(
            "nice = 20\noom_score_adjust = 1001\numask = 27\n\
             limits = { nofile = 2000000000, nproc = \"many\" }\ncpu_max = \"0%\"\n\
             no_new_privileges = \"yes\"",
        )
        .expect_err("invalid");
        let expected = [
            "warden.toml:3:8: nice must be between -20 and 19, found 20",
            "warden.toml:4:20: oom_score_adjust must be between -1000 and 1000, found 1001",
            "warden.toml:5:9: umask: expected a string, found integer",
            "warden.toml:6:21: limits.nofile must be between 0 and 1073741824, found 2000000000",
            "warden.toml:6:41: limits.nproc: expected an integer or \"unlimited\", found \"many\"",
            "warden.toml:7:11: cpu_max must be between 1% and 100000%, found 0%",
            "warden.toml:8:21: no_new_privileges: expected a boolean",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (e, want) in errors.iter().zip(expected) {
            assert!(e.contains(want), "{e:?} does not contain {want:?}");
        }
    }
}
