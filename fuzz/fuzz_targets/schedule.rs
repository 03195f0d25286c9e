//! Schedules: any text is accepted or refused without a panic, and an accepted one gives runs
//! strictly after the instant asked about, the same run when asked again just before it.
#![no_main]

use datarestor_operator::schedule::Schedule;
use jiff::{Timestamp, ToSpan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 4 bytes pick the instant (seconds from 2000 to 2136), the rest is the schedule.
    let (when, text) = data.split_at(data.len().min(4));
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(schedule) = text.parse::<Schedule>() else { return };
    let seconds = when.iter().fold(0i64, |acc, b| acc << 8 | i64::from(*b));
    let after = Timestamp::from_second(946_684_800 + seconds).unwrap();
    let Some(next) = schedule.next_after(after) else { return };
    assert!(next > after, "{text:?}: {next} is not after {after}");
    assert_eq!(schedule.next_after(next - 1.second()), Some(next), "{text:?} after {after}");
    assert_eq!(schedule.latest_due(after, next), Some(next), "{text:?} after {after}");
});
