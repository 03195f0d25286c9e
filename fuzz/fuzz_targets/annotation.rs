//! The `manual-backup` / `manual-restore` value grammar: any text gets a request or an error,
//! never a panic, and a request prints back to a value that parses to the same request.
#![no_main]

use datarestor_operator::annotation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    if let Ok(request) = annotation::parse(value) {
        let printed = request.to_string();
        let again = annotation::parse(&printed).unwrap_or_else(|e| panic!("{value:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again, request, "{value:?} printed as {printed:?}");
    }
});
