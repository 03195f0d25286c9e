//! Cron schedules: five standard fields (minute hour day-of-month month day-of-week) with ranges,
//! lists, steps and names, the `@hourly`-style macros, and an optional `CRON_TZ=<zone>` prefix.
//!
//! Semantics follow Vixie cron, like Kubernetes CronJobs: when both day fields are restricted a day
//! matches if either does; Sunday is 0 or 7. Times are civil times in the schedule's zone (UTC by
//! default): a time skipped by a daylight-saving jump runs at the same offset after the jump (02:30
//! becomes 03:30), and a repeated hour runs once.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use std::fmt;
use std::str::FromStr;

/// A parsed schedule.
#[derive(Clone)]
pub struct Schedule {
    source: String,
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
    time_zone: TimeZone,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.source).finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Why a schedule was refused; the text names the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule is empty")]
    Empty,
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), got {0}")]
    FieldCount(usize),
    #[error("unknown macro {0:?}; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly")]
    UnknownMacro(String),
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    #[error("{field} field {text:?}: {problem}")]
    Field { field: &'static str, text: String, problem: String },
    #[error("schedule never fires: {0}")]
    Never(String),
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: FieldSpec = FieldSpec { name: "hour", min: 0, max: 23, names: &[] };
const DAY_OF_MONTH: FieldSpec = FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
// 7 is Sunday too; names map to 0..=6.
const DAY_OF_WEEK: FieldSpec =
    FieldSpec { name: "day-of-week", min: 0, max: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] };

impl FieldSpec {
    fn error(&self, text: &str, problem: impl Into<String>) -> ScheduleError {
        ScheduleError::Field { field: self.name, text: text.to_owned(), problem: problem.into() }
    }

    fn value(&self, field: &str, token: &str) -> Result<u32, ScheduleError> {
        if let Some(index) = self.names.iter().position(|n| n.eq_ignore_ascii_case(token)) {
            return Ok(index as u32 + self.min);
        }
        if token.is_empty() {
            return Err(self.error(field, "a value is missing"));
        }
        let value: u32 = token.parse().map_err(|_| {
            if let Some(quartz) = token.chars().find(|c| matches!(c, 'L' | 'W' | '#')) {
                self.error(field, format!("'{quartz}' is not supported (it is Quartz syntax, not cron)"))
            } else if self.names.is_empty() {
                self.error(field, format!("{token:?} is not a number"))
            } else {
                self.error(field, format!("{token:?} is neither a number nor a name ({})", self.names.join(", ")))
            }
        })?;
        if value < self.min || value > self.max {
            return Err(self.error(field, format!("{value} is out of range {}-{}", self.min, self.max)));
        }
        Ok(value)
    }

    /// Parses one field into a bit set of allowed values, and whether it starts with `*`.
    fn parse(&self, field: &str) -> Result<(u64, bool), ScheduleError> {
        let mut bits = 0u64;
        for item in field.split(',') {
            if item.is_empty() {
                return Err(self.error(field, "empty list item"));
            }
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step.parse().map_err(|_| self.error(field, format!("step {step:?} is not a number")))?;
                    if step == 0 {
                        return Err(self.error(field, "step 0 is not allowed"));
                    }
                    (range, Some(step))
                }
                None => (item, None),
            };
            let (low, high) = if range == "*" || range == "?" {
                (self.min, if self.name == "day-of-week" { 6 } else { self.max })
            } else if let Some((low, high)) = range.split_once('-') {
                let (low, high) = (self.value(field, low)?, self.value(field, high)?);
                if low > high {
                    return Err(self.error(field, format!("range {low}-{high} is reversed")));
                }
                (low, high)
            } else {
                let low = self.value(field, range)?;
                // `5/15` means from 5 to the end in steps of 15.
                (low, if step.is_some() { self.max } else { low })
            };
            let step = step.unwrap_or(1);
            let mut value = low;
            while value <= high {
                bits |= 1 << value;
                value += step;
            }
        }
        let starred = field.starts_with('*') || field.starts_with('?');
        Ok((bits, starred))
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(source: &str) -> Result<Self, ScheduleError> {
        let mut words: Vec<&str> = source.split_whitespace().collect();
        if words.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let mut time_zone = TimeZone::UTC;
        if let Some(zone) = words[0].strip_prefix("CRON_TZ=").or_else(|| words[0].strip_prefix("TZ=")) {
            time_zone = TimeZone::get(zone).map_err(|_| ScheduleError::UnknownTimeZone(zone.to_owned()))?;
            words.remove(0);
        }
        let expanded: Vec<&str> = match words.as_slice() {
            [] => return Err(ScheduleError::Empty),
            [word] if word.starts_with('@') => match word.to_ascii_lowercase().as_str() {
                "@yearly" | "@annually" => vec!["0", "0", "1", "1", "*"],
                "@monthly" => vec!["0", "0", "1", "*", "*"],
                "@weekly" => vec!["0", "0", "*", "*", "0"],
                "@daily" | "@midnight" => vec!["0", "0", "*", "*", "*"],
                "@hourly" => vec!["0", "*", "*", "*", "*"],
                _ => return Err(ScheduleError::UnknownMacro((*word).to_owned())),
            },
            fields if fields.len() == 5 => fields.to_vec(),
            fields => return Err(ScheduleError::FieldCount(fields.len())),
        };
        let (minutes, _) = MINUTE.parse(expanded[0])?;
        let (hours, _) = HOUR.parse(expanded[1])?;
        let (days_of_month, dom_star) = DAY_OF_MONTH.parse(expanded[2])?;
        let (months, _) = MONTH.parse(expanded[3])?;
        let (mut days_of_week, dow_star) = DAY_OF_WEEK.parse(expanded[4])?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week | 1) & !(1 << 7);
        }
        let schedule = Schedule {
            source: source.trim().to_owned(),
            minutes,
            hours: hours as u32,
            days_of_month: days_of_month as u32,
            months: months as u16,
            days_of_week: days_of_week as u8,
            day_of_month_restricted: !dom_star,
            day_of_week_restricted: !dow_star,
            time_zone,
        };
        schedule.check_reachable()?;
        Ok(schedule)
    }
}

const MONTH_NAMES: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

impl Schedule {
    /// A day-of-month that no selected month has (`30 2`) would make the search spin forever.
    fn check_reachable(&self) -> Result<(), ScheduleError> {
        if !self.day_of_month_restricted || self.day_of_week_restricted {
            return Ok(());
        }
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let reachable = (1..=12u32).any(|month| {
            self.months & (1 << month) != 0 && (1..=LONGEST[month as usize - 1]).any(|day| self.days_of_month & (1 << day) != 0)
        });
        if reachable {
            return Ok(());
        }
        let months: Vec<&str> =
            (1..=12u32).filter(|m| self.months & (1 << m) != 0).map(|m| MONTH_NAMES[m as usize - 1]).collect();
        Err(ScheduleError::Never(format!("none of the selected days occurs in {}", months.join(", "))))
    }

    /// The schedule's time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.day_of_month_restricted, self.day_of_week_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first run strictly after `after`, or `None` past the year 9999.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(self.time_zone.clone()).datetime();
        let mut at = start.with().second(0).subsec_nanosecond(0).build().ok()?.checked_add(1.minute()).ok()?;
        // Each step moves to the next candidate month, day, hour or minute, so a reachable
        // schedule is found within a few thousand steps even across leap years.
        for _ in 0..200_000 {
            if self.months & (1 << at.month()) == 0 {
                at = at.first_of_month().with().hour(0).minute(0).build().ok()?.checked_add(1.month()).ok()?;
                continue;
            }
            if !self.day_matches(at.date()) {
                at = at.date().tomorrow().ok()?.to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if self.hours & (1 << at.hour()) == 0 {
                at = next_hour(at)?;
                continue;
            }
            if self.minutes & (1 << at.minute()) == 0 {
                at = at.checked_add(1.minute()).ok()?;
                continue;
            }
            // Compatible disambiguation: gaps move forward, folds take the first occurrence.
            let instant = self.time_zone.to_timestamp(at).ok()?;
            if instant > after {
                return Some(instant);
            }
            at = at.checked_add(1.minute()).ok()?;
        }
        None
    }

    /// The most recent run in `(after, now]`: the one slot to catch up on after downtime, however
    /// many were missed.
    pub fn latest_due(&self, after: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let mut latest = None;
        let mut cursor = after;
        while let Some(next) = self.next_after(cursor) {
            if next > now {
                break;
            }
            latest = Some(next);
            cursor = next;
        }
        latest
    }
}

fn next_hour(at: DateTime) -> Option<DateTime> {
    at.with().minute(0).build().ok()?.checked_add(1.hour()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn schedule(s: &str) -> Schedule {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// The first `n` runs after `from`, as RFC 3339 strings in UTC.
    fn runs(s: &str, from: &str, n: usize) -> Vec<String> {
        let schedule = schedule(s);
        let mut at = ts(from);
        (0..n)
            .map(|_| {
                at = schedule.next_after(at).expect("a next run");
                at.to_string()
            })
            .collect()
    }

    #[test]
    fn standard_fields() {
        assert_eq!(runs("0 2 * * *", "2026-03-10T05:00:00Z", 2), ["2026-03-11T02:00:00Z", "2026-03-12T02:00:00Z"]);
        assert_eq!(
            runs("*/15 * * * *", "2026-03-10T05:07:00Z", 3),
            ["2026-03-10T05:15:00Z", "2026-03-10T05:30:00Z", "2026-03-10T05:45:00Z"]
        );
        assert_eq!(
            runs("5-10/5 1,3 * * *", "2026-03-10T00:00:00Z", 4),
            ["2026-03-10T01:05:00Z", "2026-03-10T01:10:00Z", "2026-03-10T03:05:00Z", "2026-03-10T03:10:00Z"]
        );
        assert_eq!(
            runs("10/20 0 * * *", "2026-03-10T00:00:00Z", 3),
            ["2026-03-10T00:10:00Z", "2026-03-10T00:30:00Z", "2026-03-10T00:50:00Z"]
        );
        // "after" is exclusive: a run exactly at `after` is not returned again.
        assert_eq!(runs("0 2 * * *", "2026-03-11T02:00:00Z", 1), ["2026-03-12T02:00:00Z"]);
        assert_eq!(runs("0 2 * * *", "2026-03-11T01:59:59.5Z", 1), ["2026-03-11T02:00:00Z"]);
    }

    #[test]
    fn names_and_weekdays() {
        // 2026-03-10 is a Tuesday.
        assert_eq!(runs("0 4 * * sun", "2026-03-10T00:00:00Z", 2), ["2026-03-15T04:00:00Z", "2026-03-22T04:00:00Z"]);
        assert_eq!(runs("0 4 * * 7", "2026-03-10T00:00:00Z", 1), ["2026-03-15T04:00:00Z"]);
        assert_eq!(runs("0 4 * * MON-FRI", "2026-03-13T05:00:00Z", 2), ["2026-03-16T04:00:00Z", "2026-03-17T04:00:00Z"]);
        assert_eq!(
            runs("0 4 * * 5-7", "2026-03-10T00:00:00Z", 3),
            ["2026-03-13T04:00:00Z", "2026-03-14T04:00:00Z", "2026-03-15T04:00:00Z"]
        );
        assert_eq!(runs("0 0 1 jan,Jul *", "2026-03-10T00:00:00Z", 2), ["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"]);
        assert_eq!(runs("0 0 * FEB-MAR/1 sat", "2026-03-25T00:00:00Z", 2), ["2026-03-28T00:00:00Z", "2027-02-06T00:00:00Z"]);
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        // The 1st of the month or any Monday.
        assert_eq!(
            runs("0 0 1 * mon", "2026-03-27T00:00:00Z", 3),
            ["2026-03-30T00:00:00Z", "2026-04-01T00:00:00Z", "2026-04-06T00:00:00Z"]
        );
        // A starred step in day-of-week still counts as unrestricted, as in Vixie cron.
        assert_eq!(runs("0 0 13 * */2", "2026-03-01T00:00:00Z", 1), ["2026-03-13T00:00:00Z"]);
    }

    #[test]
    fn macros() {
        assert_eq!(runs("@hourly", "2026-03-10T05:07:00Z", 1), ["2026-03-10T06:00:00Z"]);
        assert_eq!(runs("@daily", "2026-03-10T05:07:00Z", 1), ["2026-03-11T00:00:00Z"]);
        assert_eq!(runs("@midnight", "2026-03-10T05:07:00Z", 1), ["2026-03-11T00:00:00Z"]);
        assert_eq!(runs("@weekly", "2026-03-10T05:07:00Z", 1), ["2026-03-15T00:00:00Z"]);
        assert_eq!(runs("@monthly", "2026-03-10T05:07:00Z", 1), ["2026-04-01T00:00:00Z"]);
        assert_eq!(runs("@yearly", "2026-03-10T05:07:00Z", 1), ["2027-01-01T00:00:00Z"]);
        assert_eq!(runs("@annually", "2026-03-10T05:07:00Z", 1), ["2027-01-01T00:00:00Z"]);
    }

    #[test]
    fn month_ends_and_leap_years() {
        assert_eq!(
            runs("0 0 31 * *", "2026-01-31T12:00:00Z", 3),
            ["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"]
        );
        assert_eq!(runs("0 0 29 2 *", "2026-01-01T00:00:00Z", 2), ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]);
        assert_eq!(runs("59 23 28-31 * *", "2026-02-27T00:00:00Z", 2), ["2026-02-28T23:59:00Z", "2026-03-28T23:59:00Z"]);
        assert_eq!(runs("0 0 * * *", "2026-12-31T23:30:00Z", 1), ["2027-01-01T00:00:00Z"]);
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        // Prague: CET (+01) in winter, CEST (+02) in summer; 2026 jumps on Mar 29 and Oct 25.
        assert_eq!(runs("CRON_TZ=Europe/Prague 0 2 * * *", "2026-01-10T12:00:00Z", 1), ["2026-01-11T01:00:00Z"]);
        assert_eq!(runs("TZ=Europe/Prague 0 2 * * *", "2026-07-10T12:00:00Z", 1), ["2026-07-11T00:00:00Z"]);
        // 02:30 does not exist on Mar 29: it runs at 03:30 CEST (01:30Z) instead, once.
        assert_eq!(
            runs("CRON_TZ=Europe/Prague 30 2 * * *", "2026-03-28T12:00:00Z", 3),
            ["2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
        );
        // Every 30 minutes across the spring gap: no run is lost or doubled.
        assert_eq!(
            runs("CRON_TZ=Europe/Prague */30 * * * *", "2026-03-29T00:15:00Z", 4),
            ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:00:00Z"]
        );
        // 02:30 happens twice on Oct 25: it runs once, at the first occurrence (CEST, 00:30Z).
        assert_eq!(
            runs("CRON_TZ=Europe/Prague 30 2 * * *", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
        // America/New_York: 2026-03-08 02:00 -> 03:00.
        assert_eq!(
            runs("CRON_TZ=America/New_York 0 9 * * *", "2026-03-07T15:00:00Z", 2),
            ["2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"]
        );
    }

    #[test]
    fn latest_due_catches_up_once() {
        let hourly = schedule("0 * * * *");
        assert_eq!(hourly.latest_due(ts("2026-03-10T00:00:00Z"), ts("2026-03-10T05:30:00Z")), Some(ts("2026-03-10T05:00:00Z")));
        assert_eq!(hourly.latest_due(ts("2026-03-10T05:00:00Z"), ts("2026-03-10T05:30:00Z")), None);
        assert_eq!(hourly.latest_due(ts("2026-03-10T05:00:00Z"), ts("2026-03-10T06:00:00Z")), Some(ts("2026-03-10T06:00:00Z")));
    }

    #[test]
    fn invalid_expressions_say_what_is_wrong() {
        let cases = [
            ("", "schedule is empty"),
            ("   ", "schedule is empty"),
            ("0 2 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
            ("0 0 2 * * *", "got 6"),
            ("61 * * * *", "minute field \"61\": 61 is out of range 0-59"),
            ("* 24 * * *", "hour field \"24\": 24 is out of range 0-23"),
            ("* * 0 * *", "day-of-month field \"0\": 0 is out of range 1-31"),
            ("* * * 13 *", "month field \"13\": 13 is out of range 1-12"),
            ("* * * * 8", "day-of-week field \"8\": 8 is out of range 0-7"),
            ("* * * foo *", "month field \"foo\": \"foo\" is neither a number nor a name (JAN, FEB"),
            ("x * * * *", "minute field \"x\": \"x\" is not a number"),
            ("*/0 * * * *", "minute field \"*/0\": step 0 is not allowed"),
            ("*/x * * * *", "step \"x\" is not a number"),
            ("5-2 * * * *", "range 5-2 is reversed"),
            ("1- * * * *", "a value is missing"),
            ("1,,2 * * * *", "empty list item"),
            ("0 0 L * *", "'L' is not supported"),
            ("0 0 * * 5#2", "'#' is not supported"),
            ("@every 5m", "got 2"),
            ("@fortnightly", "unknown macro \"@fortnightly\""),
            ("CRON_TZ=Mars/Olympus 0 2 * * *", "unknown time zone \"Mars/Olympus\""),
            ("CRON_TZ=UTC", "schedule is empty"),
            ("0 0 30 2 *", "schedule never fires: none of the selected days occurs in February"),
            ("0 0 31 4,6 *", "none of the selected days occurs in April, June"),
        ];
        for (source, expected) in cases {
            let error = source.parse::<Schedule>().expect_err(source).to_string();
            assert!(error.contains(expected), "{source:?}: {error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn impossible_day_is_fine_when_weekday_can_match() {
        // Feb 30 never happens, but Mondays in February do.
        assert_eq!(runs("0 0 30 2 mon", "2026-01-01T00:00:00Z", 1), ["2026-02-02T00:00:00Z"]);
    }

    fn field(min: u32, max: u32) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("*".to_owned()),
            (min..=max).prop_map(|v| v.to_string()),
            (min..=max, 1..=max.max(1)).prop_map(|(start, step)| format!("{start}/{step}")),
            (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            proptest::collection::btree_set(min..=max, 1..4).prop_map(|set| set
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")),
        ]
    }

    proptest::proptest! {
        /// Any well-formed schedule either says why it never fires, or its next run is strictly
        /// later, on a matching minute and hour, and found again when asked just before it.
        #[test]
        fn next_run_is_later_matching_and_stable(
            minute in field(0, 59),
            hour in field(0, 23),
            day in field(1, 31),
            month in field(1, 12),
            weekday in field(0, 6),
            zone in proptest::sample::select(vec!["", "CRON_TZ=Europe/Prague ", "CRON_TZ=America/New_York ", "TZ=Asia/Kolkata "]),
            second in 946_684_800i64..4_102_444_800,
        ) {
            let source = format!("{zone}{minute} {hour} {day} {month} {weekday}");
            let Ok(schedule) = source.parse::<Schedule>() else { return Ok(()) };
            let after = Timestamp::from_second(second).unwrap();
            let next = schedule.next_after(after).expect("a schedule that parses fires");
            proptest::prop_assert!(next > after);
            let local = next.to_zoned(schedule.time_zone().clone());
            proptest::prop_assert!(schedule.minutes & (1 << local.minute()) != 0, "{} at {}", source, local);
            proptest::prop_assert_eq!(schedule.next_after(next - 1.second()), Some(next));
        }
    }
}
