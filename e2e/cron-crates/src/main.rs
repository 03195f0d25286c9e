//! The hand-written parser's tests (src/schedule.rs) as a contract, held against croner, cron and
//! cron-parser. Each vector: expression (optionally CRON_TZ=zone prefixed), start, expected runs.
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

type Next = fn(&str, DateTime<Tz>) -> Result<DateTime<Tz>, String>;

fn croner_next(expr: &str, at: DateTime<Tz>) -> Result<DateTime<Tz>, String> {
    let cron = croner::Cron::from_str(expr).map_err(|e| e.to_string())?;
    cron.find_next_occurrence(&at, false).map_err(|e| e.to_string())
}
fn cron_next(expr: &str, at: DateTime<Tz>) -> Result<DateTime<Tz>, String> {
    // cron wants seconds (and an optional year): the five fields get "0 " in front.
    let full = if expr.starts_with('@') { expr.to_owned() } else { format!("0 {expr}") };
    let schedule = cron::Schedule::from_str(&full).map_err(|e| e.to_string())?;
    schedule.after(&at).next().ok_or_else(|| "no next".into())
}
fn cron_parser_next(expr: &str, at: DateTime<Tz>) -> Result<DateTime<Tz>, String> {
    cron_parser::parse(expr, &at).map_err(|e| format!("{e:?}"))
}

fn runs(next: Next, expr: &str, from: &str, n: usize) -> Result<Vec<String>, String> {
    let (zone, expr) = match expr.strip_prefix("CRON_TZ=").or_else(|| expr.strip_prefix("TZ=")) {
        Some(rest) => {
            let (zone, expr) = rest.split_once(' ').unwrap();
            (zone.parse::<Tz>().map_err(|e| e.to_string())?, expr)
        }
        None => (Tz::UTC, expr),
    };
    let mut at = DateTime::parse_from_rfc3339(from).unwrap().with_timezone(&zone);
    let mut out = Vec::new();
    for _ in 0..n {
        at = next(expr, at)?;
        out.push(at.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    Ok(out)
}

fn main() {
    let groups: &[(&str, &[(&str, &str, &[&str])])] = &[
        ("five fields, ranges, steps, lists", &[
            ("0 2 * * *", "2026-03-10T05:00:00Z", &["2026-03-11T02:00:00Z", "2026-03-12T02:00:00Z"]),
            ("*/15 * * * *", "2026-03-10T05:07:00Z", &["2026-03-10T05:15:00Z", "2026-03-10T05:30:00Z", "2026-03-10T05:45:00Z"]),
            ("5-10/5 1,3 * * *", "2026-03-10T00:00:00Z", &["2026-03-10T01:05:00Z", "2026-03-10T01:10:00Z", "2026-03-10T03:05:00Z", "2026-03-10T03:10:00Z"]),
            ("10/20 0 * * *", "2026-03-10T00:00:00Z", &["2026-03-10T00:10:00Z", "2026-03-10T00:30:00Z", "2026-03-10T00:50:00Z"]),
            ("0 2 * * *", "2026-03-11T02:00:00Z", &["2026-03-12T02:00:00Z"]),
        ]),
        ("names and weekdays (0 and 7 are Sunday)", &[
            ("0 4 * * sun", "2026-03-10T00:00:00Z", &["2026-03-15T04:00:00Z", "2026-03-22T04:00:00Z"]),
            ("0 4 * * 7", "2026-03-10T00:00:00Z", &["2026-03-15T04:00:00Z"]),
            ("0 4 * * MON-FRI", "2026-03-13T05:00:00Z", &["2026-03-16T04:00:00Z", "2026-03-17T04:00:00Z"]),
            ("0 4 * * 5-7", "2026-03-10T00:00:00Z", &["2026-03-13T04:00:00Z", "2026-03-14T04:00:00Z", "2026-03-15T04:00:00Z"]),
            ("0 0 1 jan,Jul *", "2026-03-10T00:00:00Z", &["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"]),
            ("0 0 * FEB-MAR/1 sat", "2026-03-25T00:00:00Z", &["2026-03-28T00:00:00Z", "2027-02-06T00:00:00Z"]),
        ]),
        ("Vixie day rule (either day field)", &[
            ("0 0 1 * mon", "2026-03-27T00:00:00Z", &["2026-03-30T00:00:00Z", "2026-04-01T00:00:00Z", "2026-04-06T00:00:00Z"]),
            ("0 0 13 * */2", "2026-03-01T00:00:00Z", &["2026-03-13T00:00:00Z"]),
        ]),
        ("macros", &[
            ("@hourly", "2026-03-10T05:07:00Z", &["2026-03-10T06:00:00Z"]),
            ("@daily", "2026-03-10T05:07:00Z", &["2026-03-11T00:00:00Z"]),
            ("@midnight", "2026-03-10T05:07:00Z", &["2026-03-11T00:00:00Z"]),
            ("@weekly", "2026-03-10T05:07:00Z", &["2026-03-15T00:00:00Z"]),
            ("@monthly", "2026-03-10T05:07:00Z", &["2026-04-01T00:00:00Z"]),
            ("@yearly", "2026-03-10T05:07:00Z", &["2027-01-01T00:00:00Z"]),
            ("@annually", "2026-03-10T05:07:00Z", &["2027-01-01T00:00:00Z"]),
        ]),
        ("month ends and leap years", &[
            ("0 0 31 * *", "2026-01-31T12:00:00Z", &["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"]),
            ("0 0 29 2 *", "2026-01-01T00:00:00Z", &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
            ("59 23 28-31 * *", "2026-02-27T00:00:00Z", &["2026-02-28T23:59:00Z", "2026-03-28T23:59:00Z"]),
        ]),
        ("time zones and DST (the zone applied by the caller)", &[
            ("CRON_TZ=Europe/Prague 0 2 * * *", "2026-01-10T12:00:00Z", &["2026-01-11T01:00:00Z"]),
            ("CRON_TZ=Europe/Prague 30 2 * * *", "2026-03-28T12:00:00Z", &["2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]),
            ("CRON_TZ=Europe/Prague */30 * * * *", "2026-03-29T00:15:00Z", &["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:00:00Z"]),
            ("CRON_TZ=Europe/Prague 30 2 * * *", "2026-10-24T12:00:00Z", &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
            ("CRON_TZ=America/New_York 0 9 * * *", "2026-03-07T15:00:00Z", &["2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"]),
        ]),
    ];
    let refused = ["61 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-2 * * * *", "1,,2 * * * *", "0 2 * *", "@fortnightly"];
    for (name, next) in [("croner 4.0.3", croner_next as Next), ("cron 0.17.0", cron_next as Next), ("cron-parser 0.12.0", cron_parser_next as Next)] {
        println!("== {name}");
        let (mut pass, mut total) = (0, 0);
        for (group, vectors) in groups {
            let mut failures = Vec::new();
            for (expr, from, expected) in vectors.iter() {
                total += 1;
                match runs(next, expr, from, expected.len()) {
                    Ok(got) if got == expected.iter().map(|s| s.to_string()).collect::<Vec<_>>() => pass += 1,
                    Ok(got) => failures.push(format!("{expr:?} from {from}: got {got:?}")),
                    Err(e) => failures.push(format!("{expr:?}: error {e}")),
                }
            }
            println!("  {group}: {}/{}", vectors.len() - failures.len(), vectors.len());
            for f in failures {
                println!("    {f}");
            }
        }
        let at = Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap().with_timezone(&Tz::UTC);
        let accepted: Vec<&str> = refused.iter().copied().filter(|e| next(e, at).is_ok()).collect();
        println!("  invalid expressions refused: {}/{} (accepted: {accepted:?})", refused.len() - accepted.len(), refused.len());
        println!("  vectors: {pass}/{total}");
    }
}
