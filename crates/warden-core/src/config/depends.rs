//! `depends_on`: what a service needs before it starts, and the check of the whole graph (an
//! unknown service or a cycle is an error at the line of the key, naming the services).

use std::collections::BTreeMap;

use super::ServiceConfig;
use super::parse::choice_hint;
use super::reader::{Field, Reader, Section};

/// At most this many dependencies per service.
const MAX_DEPENDENCIES: usize = 256;
const CONDITIONS: &[&str] = &["started", "ready", "healthy", "completed"];
const LONG_KEYS: &[&str] = &["condition", "restart"];

/// When a dependency lets its dependent start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// It was spawned (the short form's condition).
    Started,
    /// It is up: its ready check passed, READY=1 arrived, or it ran `min_uptime`.
    Ready,
    /// Its health check passed at least once.
    Healthy,
    /// It exited with a success code (a one-shot job).
    Completed,
}

impl Condition {
    pub fn name(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Ready => "ready",
            Condition::Healthy => "healthy",
            Condition::Completed => "completed",
        }
    }
}

/// One entry of `depends_on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
    /// `restart = true`: restart the dependent when this one restarts.
    pub restart: bool,
}

/// `depends_on = ["a", "b"]`, `{ a = "ready" }` or `{ a = { condition = "ready", restart = true } }`.
pub(super) fn read(r: &mut Reader<'_>, section: Section<'_>) -> Vec<Dependency> {
    let Some(field) = section.field("depends_on") else {
        return Vec::new();
    };
    let mut deps = Vec::new();
    if let Some(array) = field.item.as_array() {
        for value in array {
            let pos = value.span().map_or_else(|| field.pos(), |s| s.start);
            match value.as_str() {
                Some(name) if !name.is_empty() => deps.push(Dependency {
                    service: name.to_owned(),
                    condition: Condition::Started,
                    restart: false,
                }),
                _ => r.error(
                    pos,
                    format!(
                        "depends_on: expected a service name, found {}",
                        value.to_string().trim()
                    ),
                    None,
                ),
            }
        }
    } else if let Some(table) = field.item.as_table_like() {
        let table = Section {
            table,
            pos: field.key_pos(),
        };
        for entry in table.fields() {
            if let Some(dep) = read_entry(r, entry) {
                deps.push(dep);
            }
        }
    } else {
        r.error(
            field.pos(),
            format!(
                "depends_on: expected a list of services or a table of conditions, found {}",
                field.item.type_name()
            ),
            Some("depends_on = [\"db\"] or depends_on = { db = \"ready\" }".into()),
        );
    }
    if deps.len() > MAX_DEPENDENCIES {
        r.error(
            field.key_pos(),
            format!("depends_on: at most {MAX_DEPENDENCIES} services"),
            None,
        );
        deps.truncate(MAX_DEPENDENCIES);
    }
    deps
}

fn read_entry(r: &mut Reader<'_>, entry: Field<'_>) -> Option<Dependency> {
    let service = entry.name().to_owned();
    let (condition_field, restart) = if entry.item.is_str() {
        (entry, false)
    } else if let Some(table) = entry.item.as_table_like() {
        let long = Section {
            table,
            pos: entry.key_pos(),
        };
        r.check_keys(long, LONG_KEYS, &format!("depends_on.{service}"));
        let restart = long
            .field("restart")
            .and_then(|f| r.bool(f))
            .unwrap_or(false);
        let Some(cond) = long.field("condition") else {
            r.error(
                entry.key_pos(),
                format!("depends_on.{service} needs condition"),
                Some(format!(
                    "{service} = {{ condition = \"ready\", restart = true }}"
                )),
            );
            return None;
        };
        (cond, restart)
    } else {
        r.error(
            entry.pos(),
            format!(
                "depends_on.{service}: expected a condition (\"started\", \"ready\", \"healthy\", \"completed\") or a table, found {}",
                entry.item.type_name()
            ),
            None,
        );
        return None;
    };
    let word = r.string(condition_field)?;
    let condition = match word.as_str() {
        "started" => Condition::Started,
        "ready" => Condition::Ready,
        "healthy" => Condition::Healthy,
        "completed" => Condition::Completed,
        _ => {
            let hint = choice_hint(&word, CONDITIONS);
            r.error(
                condition_field.pos(),
                format!("depends_on.{service}: unknown condition \"{word}\""),
                Some(hint),
            );
            return None;
        }
    };
    Some(Dependency {
        service,
        condition,
        restart,
    })
}

/// Every dependency names a known service other than itself, and there is no cycle. Errors
/// are at each service's `depends_on` key (`services` is the `[services]` table).
pub(super) fn check_graph(r: &mut Reader<'_>, services: Section<'_>, all: &[ServiceConfig]) {
    let key_pos = |name: &str| {
        services
            .field(name)
            .and_then(|s| s.item.as_table_like())
            .and_then(|t| t.get_key_value("depends_on"))
            .map_or(services.pos, |(key, item)| Field { key, item }.key_pos())
    };
    let known: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in all {
        let mut edges = Vec::new();
        for d in &s.depends_on {
            if d.service == s.name {
                r.error(
                    key_pos(&s.name),
                    format!("depends_on: {} depends on itself", s.name),
                    None,
                );
            } else if let Some(dep) = all.iter().find(|c| c.name == d.service) {
                edges.push(d.service.as_str());
                if d.condition == Condition::Healthy && dep.health.health.is_none() {
                    r.error(
                        key_pos(&s.name),
                        format!(
                            "depends_on: {} waits for {} to be healthy, but {} has no health check",
                            s.name, d.service, d.service
                        ),
                        Some(format!(
                            "give {} a health check, or use \"ready\"",
                            d.service
                        )),
                    );
                }
            } else {
                let hint = super::diag::did_you_mean(&d.service, &known)
                    .unwrap_or_else(|| format!("known services: {}", known.join(", ")));
                r.error(
                    key_pos(&s.name),
                    format!(
                        "depends_on: {} depends on \"{}\", which is not a service",
                        s.name, d.service
                    ),
                    Some(hint),
                );
            }
        }
        graph.insert(s.name.as_str(), edges);
    }
    // Each cycle once, reported at the first of its services in file order.
    let mut reported: Vec<Vec<&str>> = Vec::new();
    for s in all {
        if let Some(cycle) = find_cycle(&graph, &s.name) {
            let mut key = cycle.clone();
            key.sort_unstable();
            key.dedup();
            if reported.contains(&key) {
                continue;
            }
            reported.push(key);
            r.error(
                key_pos(&s.name),
                format!("depends_on: a cycle: {}", cycle.join(" -> ")),
                Some("a service cannot wait for itself, even through others".into()),
            );
        }
    }
}

/// A path `start -> ... -> start` if `start` is on a cycle (iterative DFS).
fn find_cycle<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>, start: &'a str) -> Option<Vec<&'a str>> {
    let mut path: Vec<(&'a str, usize)> = vec![(start, 0)];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((node, next)) = path.last().copied() {
        let edges = graph.get(node).map_or(&[][..], Vec::as_slice);
        if let Some(&to) = edges.get(next) {
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            if to == start {
                let mut cycle: Vec<&str> = path.iter().map(|(n, _)| *n).collect();
                cycle.push(start);
                return Some(cycle);
            }
            if seen.insert(to) {
                path.push((to, 0));
            }
        } else {
            path.pop();
        }
    }
    None
}

/// The services in start order: each after what it depends on (file order otherwise).
/// Services on a cycle or with unknown dependencies (a config never valid) come last.
pub fn start_levels(all: &[ServiceConfig]) -> Vec<Vec<String>> {
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds <= all.len() {
        changed = false;
        rounds += 1;
        for s in all {
            let l = s
                .depends_on
                .iter()
                .filter_map(|d| level.get(d.service.as_str()).map(|l| l + 1))
                .max()
                .unwrap_or(0);
            if level.get(s.name.as_str()) != Some(&l) {
                level.insert(s.name.as_str(), l);
                changed = true;
            }
        }
    }
    let depth = level.values().copied().max().map_or(0, |m| m + 1);
    let mut levels = vec![Vec::new(); depth];
    for s in all {
        levels[level[s.name.as_str()]].push(s.name.clone());
    }
    levels
}
