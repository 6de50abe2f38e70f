//! Finding the snapshot a command names, without ever taking another
//! server's by surprise.
//!
//! A snapshot is named by its id, a unique prefix of it, or `latest`, and
//! `--instance` narrows the choice to one Prometheus (an instance name, or
//! an HA group, whose replicas take turns). During an incident, the wrong
//! server's data restored without a word is worse than an error, so:
//!
//! - `latest` in a repository that holds several instances (or HA groups)
//!   needs `--instance`; the error lists them.
//! - An `--instance` that matches no snapshot is an error that lists the
//!   instances there are, never an empty result.
//! - An id that exists but belongs to another instance is named as such.
//! - An id that is not found gets the nearest ids as suggestions; the name
//!   of a Prometheus *local* snapshot (which looks much like a promsnap id)
//!   is recognised and the promsnap snapshot that recorded it is named; an
//!   ambiguous prefix lists its matches.
//!
//! [`find`] is a pure function of the manifests, tested on its own.

use std::collections::BTreeMap;

use anyhow::Result;

use super::manifest::Manifest;
use crate::error::Hinted;

/// How many candidates an error lists at most.
const SHOWN: usize = 8;

/// The name a manifest is grouped under: its HA group, else its instance.
pub fn group_of(m: &Manifest) -> &str {
    m.ha_group.as_deref().unwrap_or(&m.instance)
}

/// Whether `m` belongs to `instance` (an instance name or an HA group).
pub fn belongs_to(m: &Manifest, instance: &str) -> bool {
    m.instance == instance || m.ha_group.as_deref() == Some(instance)
}

/// `name (N snapshots), ...` for every group in `manifests`.
pub fn describe_instances(manifests: &[Manifest]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for m in manifests {
        *counts.entry(group_of(m)).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(name, n)| format!("{name} ({n} snapshot{})", if *n == 1 { "" } else { "s" }))
        .collect();
    parts.join(", ")
}

/// The manifests of `instance` (all without one); none is an error that
/// lists the instances the repository holds.
pub fn of_instance<'m>(
    manifests: &'m [Manifest],
    instance: Option<&str>,
    location: &str,
) -> Result<Vec<&'m Manifest>> {
    let Some(instance) = instance else {
        return Ok(manifests.iter().collect());
    };
    let found: Vec<&Manifest> = manifests
        .iter()
        .filter(|m| belongs_to(m, instance))
        .collect();
    if found.is_empty() {
        return Err(no_such_instance(manifests, instance, location));
    }
    Ok(found)
}

fn no_such_instance(manifests: &[Manifest], instance: &str, location: &str) -> anyhow::Error {
    let held = match manifests.is_empty() {
        true => "it holds no snapshots yet".to_string(),
        false => format!("it holds {}", describe_instances(manifests)),
    };
    Hinted::usage(
        format!("{location} has no snapshot of instance {instance:?}"),
        format!("{held}; check --instance"),
    )
    .into()
}

/// The snapshot `spec` names (`latest`, an id or a unique prefix), within
/// `instance` when given. `manifests` are oldest first.
pub fn find<'m>(
    manifests: &'m [Manifest],
    spec: &str,
    instance: Option<&str>,
    location: &str,
) -> Result<&'m Manifest> {
    if spec == "latest" {
        return latest(manifests, instance, location);
    }
    if let Some(exact) = manifests.iter().find(|m| m.id == spec) {
        return match instance {
            Some(i) if !belongs_to(exact, i) => Err(Hinted::usage(
                format!(
                    "snapshot {spec} is of instance {}, not of {i:?}",
                    describe_owner(exact)
                ),
                "leave out --instance, or pick a snapshot of that instance (`promsnap list \
                 --instance NAME`)",
            )
            .into()),
            _ => Ok(exact),
        };
    }
    let candidates = of_instance(manifests, instance, location)?;
    let matches: Vec<&Manifest> = candidates
        .iter()
        .copied()
        .filter(|m| m.id.starts_with(spec))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(not_found(manifests, &candidates, spec, instance, location)),
        many => Err(Hinted::usage(
            format!(
                "{spec:?} matches {} snapshots: {}",
                many.len(),
                listed(many)
            ),
            "give more characters of the snapshot id",
        )
        .into()),
    }
}

fn latest<'m>(
    manifests: &'m [Manifest],
    instance: Option<&str>,
    location: &str,
) -> Result<&'m Manifest> {
    let candidates = of_instance(manifests, instance, location)?;
    let Some(newest) = candidates.last() else {
        return Err(Hinted::usage(
            format!("{location} has no snapshots yet"),
            "`promsnap list` shows what a repository holds; `promsnap backup` stores a snapshot",
        )
        .into());
    };
    if instance.is_none() {
        let groups: std::collections::BTreeSet<&str> =
            candidates.iter().map(|m| group_of(m)).collect();
        if groups.len() > 1 {
            return Err(Hinted::usage(
                format!(
                    "`latest` is ambiguous: {location} holds snapshots of {} instances: {}",
                    groups.len(),
                    describe_instances(manifests)
                ),
                "say whose: --instance NAME (an instance or an HA group)",
            )
            .into());
        }
    }
    Ok(newest)
}

fn not_found(
    all: &[Manifest],
    candidates: &[&Manifest],
    spec: &str,
    instance: Option<&str>,
    location: &str,
) -> anyhow::Error {
    // The name Prometheus gave its local snapshot looks like an id.
    if let Some(m) = all
        .iter()
        .find(|m| m.source.snapshot_name.as_deref() == Some(spec))
    {
        return Hinted::usage(
            format!(
                "{spec} is the name of the local snapshot Prometheus made for promsnap \
                 snapshot {}, not a promsnap snapshot id",
                m.id
            ),
            format!("use the promsnap id: {}", m.id),
        )
        .into();
    }
    if let Some(i) = instance {
        let elsewhere: Vec<&Manifest> = all.iter().filter(|m| m.id.starts_with(spec)).collect();
        if !elsewhere.is_empty() {
            return Hinted::usage(
                format!(
                    "no snapshot {spec:?} of instance {i:?}; of other instances: {}",
                    listed(&elsewhere)
                ),
                "leave out --instance, or check it",
            )
            .into();
        }
    }
    let hint = match nearest(candidates, spec).as_slice() {
        [] => "`promsnap list` shows the snapshots in a repository".to_string(),
        near => format!(
            "the nearest are {}; `promsnap list` shows them all",
            listed(near)
        ),
    };
    let looks_local = is_local_snapshot_name(spec);
    let message = match looks_local {
        true => format!(
            "no snapshot {spec:?} in {location} (this looks like the name of a Prometheus \
             local snapshot, <time>-<16 hex digits>; promsnap ids end in 8 hex digits)"
        ),
        false => format!("no snapshot {spec:?} in {location}"),
    };
    Hinted::usage(message, hint).into()
}

/// Prometheus names its snapshots `<UTC time>-<16 hex digits>`; promsnap
/// ids have 8.
fn is_local_snapshot_name(s: &str) -> bool {
    s.split_once('-').is_some_and(|(time, hex)| {
        time.len() == 16 && hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Up to three ids closest to `spec`: by time when `spec` starts with one
/// (ids start with their UTC time), else by the longest common prefix.
fn nearest<'m>(candidates: &[&'m Manifest], spec: &str) -> Vec<&'m Manifest> {
    let time =
        chrono::NaiveDateTime::parse_from_str(spec.get(..16).unwrap_or(""), "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|t| t.and_utc());
    let mut ranked: Vec<(i64, &Manifest)> = candidates
        .iter()
        .map(|m| {
            let rank = match time {
                Some(t) => (m.created - t).num_seconds().abs(),
                None => -(common_prefix(&m.id, spec) as i64),
            };
            (rank, *m)
        })
        .filter(|(rank, _)| time.is_some() || *rank < 0)
        .collect();
    ranked.sort_by_key(|(rank, m)| (*rank, m.id.clone()));
    ranked.into_iter().take(3).map(|(_, m)| m).collect()
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

fn describe_owner(m: &Manifest) -> String {
    match &m.ha_group {
        Some(g) => format!("{:?} (HA group {g:?})", m.instance),
        None => format!("{:?}", m.instance),
    }
}

/// `id (instance), ...`, at most [`SHOWN`] of them.
fn listed(ms: &[&Manifest]) -> String {
    let mut parts: Vec<String> = ms
        .iter()
        .take(SHOWN)
        .map(|m| format!("{} ({})", m.id, group_of(m)))
        .collect();
    if ms.len() > SHOWN {
        parts.push(format!("and {} more", ms.len() - SHOWN));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{hint_of, status_of, ExitStatus};
    use crate::repo::manifest::tests::sample_manifest;

    fn snap(id: &str, instance: &str, group: Option<&str>) -> Manifest {
        let mut m = sample_manifest();
        m.id = id.into();
        m.created = chrono::NaiveDateTime::parse_from_str(&id[..16], "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc();
        m.instance = instance.into();
        m.ha_group = group.map(str::to_string);
        m.source.snapshot_name = Some(format!("{}-{:016x}", &id[..16], id.len() * 7919));
        m
    }

    fn repo() -> Vec<Manifest> {
        vec![
            snap("20261120T030000Z-aaaa0001", "eu1", None),
            snap("20261121T030000Z-aaaa0002", "eu1", None),
            snap("20261121T040000Z-bbbb0001", "us1-a", Some("us1")),
            snap("20261122T030000Z-bbbb0002", "us1-b", Some("us1")),
        ]
    }

    fn err(r: Result<&Manifest>) -> (String, String) {
        let e = r.unwrap_err();
        assert_eq!(status_of(&e), ExitStatus::Usage, "{e:#}");
        (
            format!("{e:#}"),
            hint_of(&e).unwrap_or_default().to_string(),
        )
    }

    #[test]
    fn latest_needs_an_instance_when_there_are_several() {
        let all = repo();
        let (msg, hint) = err(find(&all, "latest", None, "R"));
        assert!(
            msg.contains("2 instances: eu1 (2 snapshots), us1 (2 snapshots)"),
            "{msg}"
        );
        assert!(hint.contains("--instance"));
        assert_eq!(
            find(&all, "latest", Some("eu1"), "R").unwrap().id,
            "20261121T030000Z-aaaa0002"
        );
        // An HA group is one instance: its replicas take turns.
        let group: Vec<Manifest> = all[2..].to_vec();
        assert_eq!(find(&group, "latest", None, "R").unwrap().instance, "us1-b");
        assert_eq!(
            find(&all, "latest", Some("us1-a"), "R").unwrap().id,
            "20261121T040000Z-bbbb0001"
        );
    }

    #[test]
    fn an_instance_without_snapshots_lists_the_ones_there_are() {
        let all = repo();
        let (msg, hint) = err(find(&all, "latest", Some("eu2"), "R"));
        assert!(msg.contains("no snapshot of instance \"eu2\""), "{msg}");
        assert!(
            hint.contains("eu1 (2 snapshots), us1 (2 snapshots)"),
            "{hint}"
        );
        assert!(of_instance(&all, Some("nope"), "R").is_err());
        assert_eq!(of_instance(&all, Some("us1"), "R").unwrap().len(), 2);
        let (msg, _) = err(find(&[], "latest", None, "R"));
        assert!(msg.contains("no snapshots yet"));
    }

    #[test]
    fn an_id_of_another_instance_is_named_as_such() {
        let all = repo();
        let (msg, _) = err(find(&all, "20261120T030000Z-aaaa0001", Some("us1"), "R"));
        assert!(
            msg.contains("is of instance \"eu1\", not of \"us1\""),
            "{msg}"
        );
        let (msg, _) = err(find(&all, "20261121T04", Some("eu1"), "R"));
        assert!(
            msg.contains("of other instances: 20261121T040000Z-bbbb0001 (us1)"),
            "{msg}"
        );
        assert_eq!(
            find(&all, "20261120T030000Z-aaaa0001", None, "R")
                .unwrap()
                .instance,
            "eu1"
        );
    }

    #[test]
    fn prefixes_must_be_unique_and_misses_get_suggestions() {
        let all = repo();
        assert_eq!(find(&all, "20261122", None, "R").unwrap().instance, "us1-b");
        let (msg, hint) = err(find(&all, "20261121", None, "R"));
        assert!(msg.contains("matches 2 snapshots: 20261121T030000Z-aaaa0002 (eu1), 20261121T040000Z-bbbb0001 (us1)"), "{msg}");
        assert!(hint.contains("more characters"));
        // A miss by time: the nearest snapshots in time.
        let (msg, hint) = err(find(&all, "20261121T035959Z-ffffffff", None, "R"));
        assert!(msg.contains("no snapshot"), "{msg}");
        assert!(
            hint.starts_with(
                "the nearest are 20261121T040000Z-bbbb0001 (us1), 20261121T030000Z-aaaa0002 (eu1)"
            ),
            "{hint}"
        );
        // Prometheus's local snapshot name is recognised.
        let local = all[1].source.snapshot_name.clone().unwrap();
        let (msg, hint) = err(find(&all, &local, None, "R"));
        assert!(
            msg.contains(
                "local snapshot Prometheus made for promsnap snapshot 20261121T030000Z-aaaa0002"
            ),
            "{msg}"
        );
        assert!(hint.contains("20261121T030000Z-aaaa0002"));
        let (msg, _) = err(find(&all, "20261129T205451Z-2ed87fa3d68248bb", None, "R"));
        assert!(
            msg.contains("looks like the name of a Prometheus local snapshot"),
            "{msg}"
        );
    }
}
