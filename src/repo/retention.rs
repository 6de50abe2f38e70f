//! Retention: which snapshots `forget` keeps, which it removes, and why.
//!
//! [`apply`] is a pure function of the snapshot list, the [`Policy`] and an
//! explicit `now`. It reads no clock and touches no storage; it returns one
//! [`Decision`] per snapshot together with the reasons behind it. Deleting
//! backups is the most dangerous thing this tool does, so the decision is kept
//! apart from the deleting: it can be printed (`--dry-run`, `--json`) before
//! anything is removed, and it is tested with table rows and a fixed `now`.
//!
//! The semantics are restic's `forget`, applied to each group (one Prometheus
//! instance) on its own, so every instance keeps its own N snapshots. A
//! snapshot is kept when *any* rule keeps it. `keep_last N` keeps the N newest.
//! `keep_hourly`/`daily`/`weekly`/`monthly`/`yearly N` walk the snapshots from
//! newest to oldest and keep the newest snapshot of each period until N periods
//! have been kept; periods without snapshots do not count. Like restic 0.17
//! and later, a periodic rule that still has count left when the walk reaches
//! the oldest snapshot keeps that one too ("oldest daily ..."), so a young
//! repository is not trimmed to less history than the policy asks for.
//! `keep_within D` keeps every snapshot strictly newer than D before the
//! *newest snapshot* of its group, not before `now` (restic and rustic_core
//! agree on this): an instance that stopped backing up keeps its final history
//! instead of ageing to nothing. D is a Prometheus duration
//! ([`CalendarDuration`]): its days, weeks and years step on the calendar,
//! hours, minutes and seconds are elapsed time. There are no months (`m` is
//! minutes, as everywhere in promsnap).
//!
//! Periods and calendar steps use the policy's time zone, so "daily" means the
//! operator's day, and a 23- or 25-hour DST day is one day. An hourly period
//! also carries its UTC offset, so the hour that repeats when DST ends counts
//! as two hours (restic buckets by wall clock and would merge them).
//!
//! Further choices of our own. Snapshots newer than `now` are kept with
//! the reason "newer than now" and take no part in the rules: they use up no
//! count and do not anchor `keep_within`, so a skewed clock cannot let a
//! bogus future snapshot push out a real one. Snapshots with equal times are
//! ordered by id, the greater id counting as newer (promsnap ids are ULIDs,
//! which sort by creation). A policy without any rule (every count absent or
//! 0, `keep_within` absent or zero) is an error rather than "remove
//! everything", whatever the snapshots are.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::duration::{DurationError, Parts};

/// The only reason given for a snapshot that is removed.
pub const REASON_REMOVE: &str = "no rule keeps it";
/// The reason given for a snapshot whose time is after `now`.
pub const REASON_FUTURE: &str = "newer than now";

/// A snapshot as retention sees it: identity, time and group, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// Snapshot id; also breaks ties between equal times.
    pub id: String,
    /// When the snapshot was taken.
    pub time: DateTime<Utc>,
    /// The Prometheus instance it belongs to; each group is judged on its own.
    pub group: String,
}

/// The verdict on one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub id: String,
    pub group: String,
    pub time: DateTime<Utc>,
    pub keep: bool,
    /// One entry per rule that keeps the snapshot, such as `"last 1"`,
    /// `"daily 2026-11-24"` or `"within 30d"`; `["no rule keeps it"]` when
    /// it is removed.
    pub reasons: Vec<String>,
}

/// What prune keeps: the snapshots its rules keep, and unreferenced data
/// younger than `grace`. One type serves the `prune` flags (clap), the
/// configuration file's `[prune]` section (serde) and [`apply`]: a rule left
/// unset on the command line falls back to the file's with [`Policy::or`].
/// Counts of 0 and a zero `keep_within` are the same as absent.
///
/// The `///` comments on the fields are `promsnap prune --help`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have one.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot taken within DURATION of the newest one, e.g.
    /// 30d, 2w, 12h, 1y (Prometheus durations: y is 365 days, m is minutes;
    /// days step the calendar of --timezone, hours are elapsed time).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<CalendarDuration>,
    /// Time zone for hours, days, weeks, months and years, e.g. Europe/Berlin
    /// [default: UTC].
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<Tz>,
    /// Objects no snapshot references are deleted only when older than this,
    /// since a running backup may be about to use them [default: 24h].
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<crate::duration::Duration>,
    /// Repack a pack (format 2) when more than this share of it is data no
    /// remaining snapshot uses: its used blobs are copied into a new pack and
    /// the old one deleted. 0% repacks every pack with any unused byte (the
    /// most space back, the most copying); `unlimited` never repacks
    /// [default: 5%].
    #[arg(long, value_name = "PERCENT|unlimited")]
    pub max_unused: Option<crate::repo::repack::MaxUnused>,
}

/// How long unreferenced objects are kept when the policy does not say.
pub const DEFAULT_GRACE: crate::duration::Duration =
    crate::duration::Duration(std::time::Duration::from_secs(24 * 3600));

impl Policy {
    /// True when no rule could keep anything, the policy `apply` refuses.
    pub fn is_empty(&self) -> bool {
        let counts = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ];
        counts.iter().all(|count| count.unwrap_or(0) == 0)
            && self.keep_within.is_none_or(|within| within.is_zero())
    }

    /// This policy, with every setting it leaves unset taken from
    /// `fallback` (flags over the configuration file).
    pub fn or(self, fallback: Policy) -> Policy {
        Policy {
            keep_last: self.keep_last.or(fallback.keep_last),
            keep_hourly: self.keep_hourly.or(fallback.keep_hourly),
            keep_daily: self.keep_daily.or(fallback.keep_daily),
            keep_weekly: self.keep_weekly.or(fallback.keep_weekly),
            keep_monthly: self.keep_monthly.or(fallback.keep_monthly),
            keep_yearly: self.keep_yearly.or(fallback.keep_yearly),
            keep_within: self.keep_within.or(fallback.keep_within),
            timezone: self.timezone.or(fallback.timezone),
            grace: self.grace.or(fallback.grace),
            max_unused: self.max_unused.or(fallback.max_unused),
        }
    }

    /// The zone periods are counted in (UTC unless set).
    pub fn zone(&self) -> Tz {
        self.timezone.unwrap_or(Tz::UTC)
    }

    /// How long unreferenced objects are kept.
    pub fn grace(&self) -> std::time::Duration {
        self.grace.unwrap_or(DEFAULT_GRACE).std()
    }
}

/// `keep_within`'s duration: a Prometheus duration (see [`crate::duration`])
/// whose whole days (`d`, `w` = 7 days, `y` = 365 days) step back on the
/// calendar of the policy's zone, so a 23- or 25-hour DST day is one day,
/// and whose hours, minutes and seconds are elapsed time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub struct CalendarDuration(pub Parts);

impl CalendarDuration {
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// The instant this long before `t`, stepping the calendar of `tz`.
    ///
    /// Out-of-range results saturate to the earliest representable instant,
    /// which keeps more snapshots, never fewer.
    pub fn before(&self, t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        self.checked_before(t, tz)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn checked_before(&self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let days = self.0.days();
        // Without a calendar part, skip the round trip through local time:
        // it could pick the other copy of a repeated DST hour.
        let stepped = if days == 0 {
            t
        } else {
            let local = t
                .with_timezone(&tz)
                .naive_local()
                .checked_sub_days(Days::new(days))?;
            resolve_local(tz, local)?
        };
        let elapsed = i64::try_from(self.0.sub_day_millis()).ok()?;
        stepped.checked_sub_signed(TimeDelta::try_milliseconds(elapsed)?)
    }
}

/// Maps a wall-clock time to an instant. When DST makes it ambiguous the
/// earlier instant wins; when DST skips it, the time an hour before it is
/// used. Both err towards an earlier cutoff, which keeps more.
fn resolve_local(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let resolved = tz.from_local_datetime(&local).earliest().or_else(|| {
        let before_gap = local.checked_sub_signed(TimeDelta::hours(1))?;
        tz.from_local_datetime(&before_gap).earliest()
    })?;
    Some(resolved.with_timezone(&Utc))
}

impl fmt::Display for CalendarDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for CalendarDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(CalendarDuration)
    }
}

/// Why a policy cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the retention policy has no rules, so it would remove every snapshot; refusing")]
    Empty,
}

impl PolicyError {
    /// The next step for the user, to print after the error.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Empty => {
                "set at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, \
                 --keep-monthly, --keep-yearly or --keep-within (0 counts as unset)"
            }
        }
    }
}

/// Decides, for every snapshot, whether `policy` keeps it.
///
/// Returns the decisions grouped by [`SnapshotRef::group`] (groups in
/// ascending order), newest first within each group. Fails only when the
/// policy is empty.
pub fn apply(
    snapshots: &[SnapshotRef],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Vec<Decision>, PolicyError> {
    if policy.is_empty() {
        return Err(PolicyError::Empty);
    }
    let mut groups: BTreeMap<&str, Vec<&SnapshotRef>> = BTreeMap::new();
    for snapshot in snapshots {
        groups.entry(&snapshot.group).or_default().push(snapshot);
    }
    Ok(groups
        .into_values()
        .flat_map(|group| decide_group(group, policy, now))
        .collect())
}

/// Applies the policy to the snapshots of one group.
fn decide_group(
    mut group: Vec<&SnapshotRef>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    group.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    let (future, present) = group.split_at(group.partition_point(|s| s.time > now));

    let mut decisions: Vec<Decision> = future
        .iter()
        .map(|snapshot| decision(snapshot, vec![REASON_FUTURE.to_owned()]))
        .collect();
    let mut rules = Rules::new(policy, present.first().map(|newest| newest.time));
    for (rank, snapshot) in present.iter().enumerate() {
        let oldest = rank + 1 == present.len();
        decisions.push(decision(snapshot, rules.reasons(snapshot, rank, oldest)));
    }
    decisions
}

fn decision(snapshot: &SnapshotRef, reasons: Vec<String>) -> Decision {
    let keep = !reasons.is_empty();
    Decision {
        id: snapshot.id.clone(),
        group: snapshot.group.clone(),
        time: snapshot.time,
        keep,
        reasons: if keep {
            reasons
        } else {
            vec![REASON_REMOVE.to_owned()]
        },
    }
}

/// The state of one walk through a group, newest snapshot first.
struct Rules {
    timezone: Tz,
    last: u32,
    buckets: Vec<Bucket>,
    /// The `keep_within` duration and the cutoff it yields for this group.
    within: Option<(CalendarDuration, DateTime<Utc>)>,
}

impl Rules {
    fn new(policy: &Policy, newest: Option<DateTime<Utc>>) -> Self {
        let periodic = [
            (Granularity::Hourly, policy.keep_hourly),
            (Granularity::Daily, policy.keep_daily),
            (Granularity::Weekly, policy.keep_weekly),
            (Granularity::Monthly, policy.keep_monthly),
            (Granularity::Yearly, policy.keep_yearly),
        ];
        let buckets = periodic
            .into_iter()
            .filter_map(|(granularity, count)| {
                let remaining = count.filter(|&n| n > 0)?;
                Some(Bucket {
                    granularity,
                    remaining,
                    last_period: None,
                })
            })
            .collect();
        let within = policy
            .keep_within
            .filter(|within| !within.is_zero())
            .zip(newest)
            .map(|(within, newest)| (within, within.before(newest, policy.zone())));
        Rules {
            timezone: policy.zone(),
            last: policy.keep_last.unwrap_or(0),
            buckets,
            within,
        }
    }

    /// The reasons to keep the snapshot at `rank` (0 = newest), in the
    /// order last, hourly, daily, weekly, monthly, yearly, within.
    fn reasons(&mut self, snapshot: &SnapshotRef, rank: usize, oldest: bool) -> Vec<String> {
        let mut reasons = Vec::new();
        if u64::try_from(rank).is_ok_and(|rank| rank < u64::from(self.last)) {
            reasons.push(format!("last {}", rank + 1));
        }
        let local = snapshot.time.with_timezone(&self.timezone);
        for bucket in &mut self.buckets {
            reasons.extend(bucket.offer(&local, oldest));
        }
        if let Some((within, cutoff)) = self.within {
            if snapshot.time > cutoff {
                reasons.push(format!("within {within}"));
            }
        }
        reasons
    }
}

/// One periodic rule: how many periods it may still keep, and the period of
/// the snapshot it kept last.
struct Bucket {
    granularity: Granularity,
    remaining: u32,
    last_period: Option<String>,
}

impl Bucket {
    /// Keeps the snapshot if it opens a new period, or if it is the oldest
    /// snapshot and count is left (restic's "oldest" rule).
    fn offer(&mut self, local: &DateTime<Tz>, oldest: bool) -> Option<String> {
        if self.remaining == 0 {
            return None;
        }
        let period = self.granularity.period(local);
        let repeated = self.last_period.as_deref() == Some(period.as_str());
        if repeated && !oldest {
            return None;
        }
        self.remaining -= 1;
        let name = self.granularity.name();
        let reason = if repeated {
            format!("oldest {name} {period}")
        } else {
            format!("{name} {period}")
        };
        self.last_period = Some(period);
        Some(reason)
    }
}

#[derive(Debug, Clone, Copy)]
enum Granularity {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Granularity {
    fn name(self) -> &'static str {
        match self {
            Self::Hourly => "hourly",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }

    /// The period containing `local`, as a label that is also its identity.
    /// Hours carry the UTC offset so that a repeated DST hour is two periods.
    fn period(self, local: &DateTime<Tz>) -> String {
        match self {
            Self::Hourly => local.format("%Y-%m-%dT%H:00%:z").to_string(),
            Self::Daily => local.format("%Y-%m-%d").to_string(),
            Self::Weekly => {
                let week = local.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Self::Monthly => local.format("%Y-%m").to_string(),
            Self::Yearly => local.format("%Y").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-25T12:00:00Z";
    const GROUP: &str = "prom";
    const NONE: Policy = Policy {
        keep_last: None,
        keep_hourly: None,
        keep_daily: None,
        keep_weekly: None,
        keep_monthly: None,
        keep_yearly: None,
        keep_within: None,
        timezone: None,
        grace: None,
        max_unused: None,
    };
    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("bad test time {s:?}: {e}"))
            .with_timezone(&Utc)
    }

    fn dur(s: &str) -> Option<CalendarDuration> {
        Some(s.parse().unwrap())
    }

    fn last(n: u32) -> Policy {
        Policy {
            keep_last: Some(n),
            ..NONE
        }
    }

    fn hourly(n: u32) -> Policy {
        Policy {
            keep_hourly: Some(n),
            ..NONE
        }
    }

    fn daily(n: u32) -> Policy {
        Policy {
            keep_daily: Some(n),
            ..NONE
        }
    }

    fn weekly(n: u32) -> Policy {
        Policy {
            keep_weekly: Some(n),
            ..NONE
        }
    }

    fn monthly(n: u32) -> Policy {
        Policy {
            keep_monthly: Some(n),
            ..NONE
        }
    }

    fn yearly(n: u32) -> Policy {
        Policy {
            keep_yearly: Some(n),
            ..NONE
        }
    }

    fn within(duration: &str) -> Policy {
        Policy {
            keep_within: dur(duration),
            ..NONE
        }
    }

    fn berlin(policy: Policy) -> Policy {
        Policy {
            timezone: Some(BERLIN),
            ..policy
        }
    }

    fn in_group(group: &str, rows: &[(&str, &str)]) -> Vec<SnapshotRef> {
        rows.iter()
            .map(|&(id, time)| SnapshotRef {
                id: id.to_owned(),
                time: t(time),
                group: group.to_owned(),
            })
            .collect()
    }

    fn snaps(rows: &[(&str, &str)]) -> Vec<SnapshotRef> {
        in_group(GROUP, rows)
    }

    fn run(snapshots: &[SnapshotRef], policy: Policy) -> Vec<Decision> {
        apply(snapshots, &policy, t(NOW)).expect("policy is not empty")
    }

    fn reasons_of<'a>(decisions: &'a [Decision], id: &str) -> &'a [String] {
        let found = decisions.iter().find(|d| d.id == id);
        &found
            .unwrap_or_else(|| panic!("no decision for {id}"))
            .reasons
    }

    struct Case {
        name: &'static str,
        policy: Policy,
        snapshots: Vec<SnapshotRef>,
        kept: &'static [&'static str],
    }

    fn case(
        name: &'static str,
        policy: Policy,
        snapshots: Vec<SnapshotRef>,
        kept: &'static [&'static str],
    ) -> Case {
        Case {
            name,
            policy,
            snapshots,
            kept,
        }
    }

    fn basic_cases() -> Vec<Case> {
        vec![
            case("empty repository", last(3), vec![], &[]),
            case(
                "one snapshot, keep_daily 1",
                daily(1),
                snaps(&[("a", "2026-11-24T10:00:00Z")]),
                &["a"],
            ),
            case(
                "keep_last keeps the newest N whatever the input order",
                last(2),
                snaps(&[
                    ("c", "2026-11-22T10:00:00Z"),
                    ("a", "2026-11-24T10:00:00Z"),
                    ("d", "2026-11-21T10:00:00Z"),
                    ("b", "2026-11-23T10:00:00Z"),
                ]),
                &["a", "b"],
            ),
            case(
                "keep_last larger than the count keeps all",
                last(10),
                snaps(&[
                    ("a", "2026-11-24T10:00:00Z"),
                    ("b", "2026-11-23T10:00:00Z"),
                    ("c", "2026-11-22T10:00:00Z"),
                ]),
                &["a", "b", "c"],
            ),
            case(
                "keep_last 0 is no rule; daily still applies",
                Policy {
                    keep_last: Some(0),
                    keep_daily: Some(1),
                    ..NONE
                },
                snaps(&[
                    ("a", "2026-11-24T10:00:00Z"),
                    ("b", "2026-11-24T09:00:00Z"),
                    ("c", "2026-11-24T08:00:00Z"),
                ]),
                &["a"],
            ),
            case(
                "equal times: the greater id counts as newer",
                last(1),
                snaps(&[
                    ("snap-a", "2026-11-24T10:00:00Z"),
                    ("snap-b", "2026-11-24T10:00:00Z"),
                    ("snap-c", "2026-11-23T10:00:00Z"),
                ]),
                &["snap-b"],
            ),
            case(
                "equal times: same answer with the input reversed",
                last(1),
                snaps(&[
                    ("snap-c", "2026-11-23T10:00:00Z"),
                    ("snap-b", "2026-11-24T10:00:00Z"),
                    ("snap-a", "2026-11-24T10:00:00Z"),
                ]),
                &["snap-b"],
            ),
            case(
                "equal times: daily keeps one of the pair",
                daily(1),
                snaps(&[("y", "2026-11-24T10:00:00Z"), ("x", "2026-11-24T10:00:00Z")]),
                &["y"],
            ),
        ]
    }

    fn periodic_cases() -> Vec<Case> {
        vec![
            case(
                "several in one day: daily keeps the newest of the day",
                daily(1),
                snaps(&[
                    ("b", "2026-11-24T12:00:00Z"),
                    ("a", "2026-11-24T23:00:00Z"),
                    ("c", "2026-11-24T00:30:00Z"),
                ]),
                &["a"],
            ),
            case(
                "several per day over three days, keep_daily 2",
                daily(2),
                snaps(&[
                    ("a", "2026-11-24T20:00:00Z"),
                    ("b", "2026-11-24T08:00:00Z"),
                    ("c", "2026-11-23T22:00:00Z"),
                    ("d", "2026-11-23T01:00:00Z"),
                    ("e", "2026-11-22T12:00:00Z"),
                ]),
                &["a", "c"],
            ),
            case(
                "days without snapshots do not count",
                daily(3),
                snaps(&[
                    ("d24", "2026-11-24T12:00:00Z"),
                    ("d22", "2026-11-22T12:00:00Z"),
                    ("d21", "2026-11-21T12:00:00Z"),
                    ("d18", "2026-11-18T12:00:00Z"),
                    ("d17", "2026-11-17T12:00:00Z"),
                ]),
                &["d24", "d22", "d21"],
            ),
            case(
                "count left at the oldest snapshot keeps it too",
                daily(5),
                snaps(&[
                    ("a", "2026-11-24T10:00:00Z"),
                    ("b", "2026-11-24T08:00:00Z"),
                    ("c", "2026-11-23T10:00:00Z"),
                    ("d", "2026-11-23T08:00:00Z"),
                ]),
                &["a", "c", "d"],
            ),
            case(
                "hourly keeps the newest of each hour",
                hourly(3),
                snaps(&[
                    ("a", "2026-11-25T11:50:00Z"),
                    ("b", "2026-11-25T11:10:00Z"),
                    ("c", "2026-11-25T10:30:00Z"),
                    ("d", "2026-11-25T08:05:00Z"),
                    ("e", "2026-11-25T08:01:00Z"),
                ]),
                &["a", "c", "d"],
            ),
            case(
                "ISO week 1 of 2026 starts on 2025-12-29",
                weekly(2),
                snaps(&[
                    ("jan02", "2026-01-02T12:00:00Z"),
                    ("dec30", "2025-12-30T12:00:00Z"),
                    ("dec27", "2025-12-27T12:00:00Z"),
                    ("dec20", "2025-12-20T12:00:00Z"),
                ]),
                &["jan02", "dec27"],
            ),
            case(
                "ISO week 53 of 2020 reaches into January 2021",
                weekly(2),
                snaps(&[
                    ("jan04", "2021-01-04T12:00:00Z"),
                    ("jan03", "2021-01-03T12:00:00Z"),
                    ("dec31", "2020-12-31T12:00:00Z"),
                    ("dec27", "2020-12-27T12:00:00Z"),
                ]),
                &["jan04", "jan03"],
            ),
            case(
                "monthly across Dec 31 -> Jan 1",
                monthly(2),
                snaps(&[
                    ("jan15", "2026-01-15T12:00:00Z"),
                    ("jan01", "2026-01-01T00:30:00Z"),
                    ("dec31", "2025-12-31T23:00:00Z"),
                    ("dec15", "2025-12-15T12:00:00Z"),
                    ("nov30", "2025-11-30T12:00:00Z"),
                ]),
                &["jan15", "dec31"],
            ),
            case(
                "monthly skips months without snapshots",
                monthly(3),
                snaps(&[
                    ("nov", "2026-11-10T12:00:00Z"),
                    ("aug05", "2026-08-05T12:00:00Z"),
                    ("aug01", "2026-08-01T12:00:00Z"),
                    ("mar", "2026-03-01T12:00:00Z"),
                    ("dec", "2025-12-01T12:00:00Z"),
                ]),
                &["nov", "aug05", "mar"],
            ),
            case(
                "yearly across Dec 31 -> Jan 1",
                yearly(2),
                snaps(&[
                    ("y26", "2026-01-01T00:30:00Z"),
                    ("y25-dec", "2025-12-31T23:59:00Z"),
                    ("y25-jun", "2025-06-01T12:00:00Z"),
                    ("y24", "2024-03-01T12:00:00Z"),
                ]),
                &["y26", "y25-dec"],
            ),
            case(
                "yearly with count left keeps the oldest",
                yearly(3),
                snaps(&[
                    ("jun26", "2026-06-01T12:00:00Z"),
                    ("jan26", "2026-01-10T12:00:00Z"),
                    ("sep25", "2025-09-01T12:00:00Z"),
                    ("feb25", "2025-02-01T12:00:00Z"),
                ]),
                &["jun26", "sep25", "feb25"],
            ),
            case(
                "last 1 + daily 2",
                Policy {
                    keep_last: Some(1),
                    keep_daily: Some(2),
                    ..NONE
                },
                snaps(&[
                    ("a", "2026-11-24T10:00:00Z"),
                    ("b", "2026-11-24T08:00:00Z"),
                    ("c", "2026-11-23T09:00:00Z"),
                    ("d", "2026-11-22T09:00:00Z"),
                ]),
                &["a", "c"],
            ),
            case(
                "daily 2 + weekly 2 + monthly 2",
                Policy {
                    keep_daily: Some(2),
                    keep_weekly: Some(2),
                    keep_monthly: Some(2),
                    ..NONE
                },
                snaps(&[
                    ("nov24", "2026-11-24T12:00:00Z"),
                    ("nov23", "2026-11-23T12:00:00Z"),
                    ("nov20", "2026-11-20T12:00:00Z"),
                    ("nov16", "2026-11-16T12:00:00Z"),
                    ("oct31", "2026-10-31T12:00:00Z"),
                    ("oct10", "2026-10-10T12:00:00Z"),
                ]),
                &["nov24", "nov23", "nov20", "oct31"],
            ),
        ]
    }

    fn within_cases() -> Vec<Case> {
        vec![
            case(
                "within 3d of the newest; the exact boundary is out",
                within("3d"),
                snaps(&[
                    ("a", "2026-11-24T12:00:00Z"),
                    ("b", "2026-11-22T12:00:00Z"),
                    ("c", "2026-11-21T12:00:00Z"),
                    ("d", "2026-11-21T11:00:00Z"),
                    ("e", "2026-11-20T12:00:00Z"),
                ]),
                &["a", "b"],
            ),
            case(
                "within is measured from the newest snapshot, not now",
                within("2d"),
                snaps(&[
                    ("a", "2026-10-01T10:00:00Z"),
                    ("b", "2026-09-30T12:00:00Z"),
                    ("c", "2026-09-28T12:00:00Z"),
                ]),
                &["a", "b"],
            ),
            case(
                "within 4w from March 31 reaches back 28 calendar days",
                within("4w"),
                snaps(&[
                    ("a", "2026-03-31T12:00:00Z"),
                    ("b", "2026-03-03T13:00:00Z"),
                    ("c", "2026-03-03T12:00:00Z"),
                    ("d", "2026-03-02T12:00:00Z"),
                ]),
                &["a", "b"],
            ),
            case(
                "within 90m is minutes, not months",
                within("90m"),
                snaps(&[
                    ("a", "2026-11-24T20:00:00Z"),
                    ("b", "2026-11-24T18:45:00Z"),
                    ("c", "2026-11-24T18:30:00Z"),
                ]),
                &["a", "b"],
            ),
            case(
                "within 12h is elapsed hours",
                within("12h"),
                snaps(&[
                    ("a", "2026-11-24T20:00:00Z"),
                    ("b", "2026-11-24T08:30:00Z"),
                    ("c", "2026-11-24T08:00:00Z"),
                ]),
                &["a", "b"],
            ),
            case(
                "within 1d over the DST end in Berlin spans 25 hours",
                berlin(within("1d")),
                snaps(&[
                    ("a", "2026-10-25T12:00:00Z"),
                    ("b", "2026-10-24T11:30:00Z"),
                    ("c", "2026-10-24T10:30:00Z"),
                ]),
                &["a", "b"],
            ),
            case(
                "within 1d in UTC is 24 hours",
                within("1d"),
                snaps(&[
                    ("a", "2026-10-25T12:00:00Z"),
                    ("b", "2026-10-24T11:30:00Z"),
                    ("c", "2026-10-24T10:30:00Z"),
                ]),
                &["a"],
            ),
        ]
    }

    fn future_and_group_cases() -> Vec<Case> {
        vec![
            case(
                "a future snapshot is kept and uses up no count",
                last(1),
                snaps(&[
                    ("future", "2026-11-26T00:00:00Z"),
                    ("a", "2026-11-25T11:00:00Z"),
                    ("b", "2026-11-24T12:00:00Z"),
                ]),
                &["future", "a"],
            ),
            case(
                "a future snapshot does not anchor keep_within",
                within("7d"),
                snaps(&[
                    ("future", "2027-01-01T00:00:00Z"),
                    ("a", "2026-11-25T10:00:00Z"),
                    ("b", "2026-11-20T12:00:00Z"),
                ]),
                &["future", "a", "b"],
            ),
            case(
                "only future snapshots: all kept",
                last(1),
                snaps(&[
                    ("f1", "2026-12-01T00:00:00Z"),
                    ("f2", "2026-11-30T00:00:00Z"),
                ]),
                &["f1", "f2"],
            ),
            case(
                "a snapshot taken exactly at now is not in the future",
                last(1),
                snaps(&[("now", NOW), ("a", "2026-11-24T12:00:00Z")]),
                &["now"],
            ),
            case(
                "each group keeps its own N",
                last(2),
                [
                    in_group(
                        "beta",
                        &[
                            ("b3", "2026-11-18T12:00:00Z"),
                            ("b1", "2026-11-20T12:00:00Z"),
                            ("b2", "2026-11-19T12:00:00Z"),
                        ],
                    ),
                    in_group(
                        "alpha",
                        &[
                            ("a1", "2026-11-24T12:00:00Z"),
                            ("a2", "2026-11-23T12:00:00Z"),
                            ("a3", "2026-11-22T12:00:00Z"),
                        ],
                    ),
                ]
                .concat(),
                &["a1", "a2", "b1", "b2"],
            ),
            case(
                "each group anchors keep_within at its own newest",
                within("1d"),
                [
                    in_group(
                        "alpha",
                        &[
                            ("a1", "2026-11-24T12:00:00Z"),
                            ("a2", "2026-11-23T13:00:00Z"),
                            ("a3", "2026-11-22T12:00:00Z"),
                        ],
                    ),
                    in_group(
                        "beta",
                        &[
                            ("b1", "2026-01-01T12:00:00Z"),
                            ("b2", "2025-12-31T13:00:00Z"),
                            ("b3", "2025-12-30T12:00:00Z"),
                        ],
                    ),
                ]
                .concat(),
                &["a1", "a2", "b1", "b2"],
            ),
        ]
    }

    fn timezone_cases() -> Vec<Case> {
        let day_edge = || {
            snaps(&[
                ("a", "2026-11-24T23:30:00Z"), // Berlin: Nov 25 00:30
                ("b", "2026-11-24T22:30:00Z"), // Berlin: Nov 24 23:30
                ("c", "2026-11-24T10:00:00Z"),
                ("d", "2026-11-23T12:00:00Z"),
            ])
        };
        vec![
            case("daily boundary in UTC", daily(2), day_edge(), &["a", "d"]),
            case(
                "daily boundary in Europe/Berlin",
                berlin(daily(2)),
                day_edge(),
                &["a", "b"],
            ),
            case(
                "DST end in Berlin: the repeated 02:00 hour is two hours",
                berlin(hourly(2)),
                snaps(&[
                    ("a", "2026-10-25T01:50:00Z"), // 02:50 +01:00
                    ("b", "2026-10-25T01:10:00Z"), // 02:10 +01:00
                    ("c", "2026-10-25T00:50:00Z"), // 02:50 +02:00
                    ("d", "2026-10-25T00:10:00Z"), // 02:10 +02:00
                    ("e", "2026-10-24T23:30:00Z"), // 01:30 +02:00
                ]),
                &["a", "c"],
            ),
            case(
                "DST start in Berlin: hours either side of the gap",
                berlin(hourly(3)),
                snaps(&[
                    ("a", "2026-03-29T01:30:00Z"), // 03:30 +02:00
                    ("b", "2026-03-29T01:10:00Z"), // 03:10 +02:00
                    ("c", "2026-03-29T00:30:00Z"), // 01:30 +01:00
                    ("d", "2026-03-28T23:59:00Z"), // 00:59 +01:00
                ]),
                &["a", "c", "d"],
            ),
            case(
                "DST start in Berlin: the 23-hour day is one day",
                berlin(daily(2)),
                snaps(&[
                    ("a", "2026-03-29T22:30:00Z"), // Mar 30 00:30
                    ("b", "2026-03-29T21:30:00Z"), // Mar 29 23:30
                    ("c", "2026-03-28T23:30:00Z"), // Mar 29 00:30
                    ("d", "2026-03-28T12:00:00Z"), // Mar 28 13:00
                ]),
                &["a", "b"],
            ),
        ]
    }

    /// Properties every answer must have, whatever the policy.
    fn check_invariants(name: &str, input: &[SnapshotRef], decisions: &[Decision]) {
        assert_eq!(
            decisions.len(),
            input.len(),
            "{name}: one decision per snapshot"
        );
        for pair in decisions.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(a.group <= b.group, "{name}: groups out of order");
            if a.group == b.group {
                assert!(
                    (a.time, &a.id) > (b.time, &b.id),
                    "{name}: not newest first"
                );
            }
        }
        for d in decisions {
            assert_eq!(
                d.keep,
                d.reasons != [REASON_REMOVE],
                "{name}: {} reasons",
                d.id
            );
            assert!(!d.reasons.is_empty(), "{name}: {} has no reason", d.id);
        }
        let now = t(NOW);
        let mut newest_present: BTreeMap<&str, &Decision> = BTreeMap::new();
        for d in decisions.iter().filter(|d| d.time <= now) {
            newest_present.entry(&d.group).or_insert(d);
        }
        for d in newest_present.values() {
            assert!(d.keep, "{name}: newest snapshot of {} removed", d.group);
        }
    }

    #[test]
    fn table() {
        let cases: Vec<Case> = [
            basic_cases(),
            periodic_cases(),
            within_cases(),
            future_and_group_cases(),
            timezone_cases(),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(cases.len() >= 25, "only {} rows", cases.len());
        for case in &cases {
            let decisions = run(&case.snapshots, case.policy);
            check_invariants(case.name, &case.snapshots, &decisions);
            let kept: Vec<&str> = decisions
                .iter()
                .filter(|d| d.keep)
                .map(|d| d.id.as_str())
                .collect();
            assert_eq!(kept, case.kept, "case {:?}", case.name);
        }
    }

    #[test]
    fn kept_by_two_rules_lists_both_reasons() {
        let snapshots = snaps(&[
            ("a", "2026-11-24T10:00:00Z"),
            ("b", "2026-11-24T08:00:00Z"),
            ("c", "2026-11-23T09:00:00Z"),
        ]);
        let policy = Policy {
            keep_last: Some(1),
            keep_daily: Some(2),
            ..NONE
        };
        let decisions = run(&snapshots, policy);
        assert_eq!(reasons_of(&decisions, "a"), ["last 1", "daily 2026-11-24"]);
        assert_eq!(reasons_of(&decisions, "b"), [REASON_REMOVE]);
        assert_eq!(reasons_of(&decisions, "c"), ["daily 2026-11-23"]);
    }

    #[test]
    fn every_rule_names_its_period_in_a_fixed_order() {
        let snapshots = snaps(&[("a", "2026-11-24T10:15:00Z")]);
        let policy = Policy {
            keep_last: Some(1),
            keep_hourly: Some(1),
            keep_daily: Some(1),
            keep_weekly: Some(1),
            keep_monthly: Some(1),
            keep_yearly: Some(1),
            keep_within: dur("1d"),
            timezone: Some(Tz::UTC),
            grace: None,
            max_unused: None,
        };
        let decisions = run(&snapshots, policy);
        let expected = [
            "last 1",
            "hourly 2026-11-24T10:00+00:00",
            "daily 2026-11-24",
            "weekly 2026-W48",
            "monthly 2026-11",
            "yearly 2026",
            "within 1d",
        ];
        assert_eq!(reasons_of(&decisions, "a"), expected);
    }

    #[test]
    fn oldest_snapshot_reason_says_oldest() {
        let snapshots = snaps(&[
            ("a", "2026-11-24T10:00:00Z"),
            ("b", "2026-11-24T08:00:00Z"),
            ("c", "2026-11-23T10:00:00Z"),
            ("d", "2026-11-23T08:00:00Z"),
        ]);
        let decisions = run(&snapshots, daily(5));
        assert_eq!(reasons_of(&decisions, "c"), ["daily 2026-11-23"]);
        assert_eq!(reasons_of(&decisions, "d"), ["oldest daily 2026-11-23"]);
    }

    #[test]
    fn repeated_dst_hour_labels_carry_the_offset() {
        let snapshots = snaps(&[("a", "2026-10-25T01:50:00Z"), ("c", "2026-10-25T00:50:00Z")]);
        let policy = berlin(hourly(2));
        let decisions = run(&snapshots, policy);
        assert_eq!(
            reasons_of(&decisions, "a"),
            ["hourly 2026-10-25T02:00+01:00"]
        );
        assert_eq!(
            reasons_of(&decisions, "c"),
            ["hourly 2026-10-25T02:00+02:00"]
        );
    }

    #[test]
    fn within_and_future_reasons() {
        let snapshots = snaps(&[
            ("future", "2026-11-26T00:00:00Z"),
            ("a", "2026-11-24T12:00:00Z"),
            ("b", "2026-11-01T12:00:00Z"),
        ]);
        let decisions = run(&snapshots, within("30d"));
        assert_eq!(reasons_of(&decisions, "future"), [REASON_FUTURE]);
        assert_eq!(reasons_of(&decisions, "a"), ["within 30d"]);
        assert_eq!(reasons_of(&decisions, "b"), ["within 30d"]);
    }

    #[test]
    fn empty_policy_is_an_error_even_without_snapshots() {
        let snapshots = snaps(&[("a", "2026-11-24T10:00:00Z")]);
        let zero_within = Some(CalendarDuration::default());
        let empty_policies = [
            NONE,
            Policy {
                keep_last: Some(0),
                keep_daily: Some(0),
                ..NONE
            },
            Policy {
                keep_within: zero_within,
                timezone: Some(BERLIN),
                grace: Some("1h".parse().unwrap()),
                ..NONE
            },
        ];
        for policy in empty_policies {
            assert!(policy.is_empty(), "{policy:?}");
            assert_eq!(apply(&snapshots, &policy, t(NOW)), Err(PolicyError::Empty));
            assert_eq!(apply(&[], &policy, t(NOW)), Err(PolicyError::Empty));
        }
        let error = PolicyError::Empty;
        assert!(error.to_string().contains("remove every snapshot"));
        assert!(error.hint().contains("--keep-last"));
    }

    #[test]
    fn any_single_rule_makes_a_policy_non_empty() {
        let policies = [
            last(1),
            hourly(1),
            daily(1),
            weekly(1),
            monthly(1),
            yearly(1),
            within("1h"),
        ];
        for policy in policies {
            assert!(!policy.is_empty(), "{policy:?}");
        }
        assert_eq!(Policy::default(), NONE);
    }

    #[test]
    fn keep_within_takes_prometheus_durations() {
        let rows = [
            ("30d", 30, 0),
            ("12h", 0, 12 * 3_600_000),
            ("2w", 14, 0),
            ("1y", 365, 0),
            ("1y2w3d4h5m", 365 + 17, 4 * 3_600_000 + 5 * 60_000),
            ("  7d\n", 7, 0),
            ("0d", 0, 0),
            ("007d", 7, 0),
        ];
        for (input, days, millis) in rows {
            let parsed: CalendarDuration = input.parse().expect(input);
            assert_eq!(
                (parsed.0.days(), parsed.0.sub_day_millis()),
                (days, millis),
                "{input:?}"
            );
        }
        for bad in [
            "", "d", "30", "30x", "30M", "-1d", "1.5d", "1d1d", "1d 2h", "2h1d", "1y6mo",
        ] {
            let error = bad.parse::<CalendarDuration>().expect_err(bad);
            assert!(error.to_string().contains("e.g. 90s"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn duration_display_round_trips() {
        for input in ["1y3w4d5h", "30d", "2w", "12h", "1y", "1h30m"] {
            let parsed: CalendarDuration = input.parse().unwrap();
            assert_eq!(parsed.to_string(), input);
        }
        assert_eq!(CalendarDuration::default().to_string(), "0s");
    }

    #[test]
    fn flags_fall_back_to_the_file_rule_by_rule() {
        let flags = Policy {
            keep_daily: Some(3),
            grace: Some("1h".parse().unwrap()),
            ..NONE
        };
        let file = Policy {
            keep_daily: Some(7),
            keep_weekly: Some(4),
            timezone: Some(BERLIN),
            ..NONE
        };
        let merged = flags.or(file);
        assert_eq!(merged.keep_daily, Some(3));
        assert_eq!(merged.keep_weekly, Some(4));
        assert_eq!(merged.zone(), BERLIN);
        assert_eq!(merged.grace(), std::time::Duration::from_secs(3600));
        assert_eq!(NONE.grace(), std::time::Duration::from_secs(24 * 3600));
        assert_eq!(NONE.zone(), Tz::UTC);
    }

    #[test]
    fn calendar_steps_follow_the_zone() {
        let newest = t("2026-10-25T12:00:00Z");
        let day = dur("1d").unwrap();
        assert_eq!(day.before(newest, Tz::UTC), t("2026-10-24T12:00:00Z"));
        assert_eq!(day.before(newest, BERLIN), t("2026-10-24T11:00:00Z"));
        let week = dur("1w").unwrap();
        let leap = t("2028-03-06T12:00:00Z");
        assert_eq!(week.before(leap, Tz::UTC), t("2028-02-28T12:00:00Z"));
        let minutes = dur("1d90m").unwrap();
        assert_eq!(minutes.before(newest, Tz::UTC), t("2026-10-24T10:30:00Z"));
        // Hours alone are elapsed time, even from the second copy of a
        // repeated DST hour (02:30 +01:00 here).
        let repeated = t("2026-10-25T01:30:00Z");
        let hour = dur("1h").unwrap();
        assert_eq!(hour.before(repeated, BERLIN), t("2026-10-25T00:30:00Z"));
        let huge = dur("500000000y").unwrap();
        assert_eq!(huge.before(newest, Tz::UTC), DateTime::<Utc>::MIN_UTC);
    }

    #[test]
    fn calendar_step_into_the_dst_gap_errs_earlier() {
        // 2026-03-30 02:30 Berlin minus one day is 02:30 on the 29th, which
        // does not exist; 01:30 CET (00:30Z) is used instead.
        let newest = t("2026-03-30T00:30:00Z");
        assert_eq!(
            dur("1d").unwrap().before(newest, BERLIN),
            t("2026-03-29T00:30:00Z")
        );
    }

    #[test]
    fn calendar_step_into_the_repeated_dst_hour_takes_the_earlier_copy() {
        // 2026-10-26 02:30 Berlin minus one day is 02:30 on the 25th, which
        // happens twice; the first (+02:00, 00:30Z) keeps more.
        let newest = t("2026-10-26T01:30:00Z");
        assert_eq!(
            dur("1d").unwrap().before(newest, BERLIN),
            t("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn decision_serialises_for_json_output() {
        let snapshots = snaps(&[("a", "2026-11-24T10:00:00Z")]);
        let decisions = run(&snapshots, last(1));
        let json = serde_json::to_value(&decisions[0]).unwrap();
        let expected = serde_json::json!({
            "id": "a",
            "group": GROUP,
            "time": "2026-11-24T10:00:00Z",
            "keep": true,
            "reasons": ["last 1"],
        });
        assert_eq!(json, expected);
    }
}
