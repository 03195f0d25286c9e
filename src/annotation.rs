//! The value grammar of the `manual-backup` and `manual-restore` annotations:
//! `[repository|][host|]name`, as the original operator's README describes it.
//!
//! - `latest`, `true`, `now` or empty: the newest snapshot (restore) or an unnamed backup.
//! - `name`: a backup name (tag `name=`); for restores also a snapshot id or id prefix.
//! - `repository`: a priority number (`1`) or a restic target (`s3:http://minio:9000/pg`).
//! - `host`: `{namespace}-{pvcName}` of another PVC, to clone its data.
//!
//! Parsing is pure and total: every input gets a request or a precise error.

use crate::api::Repository;
use std::fmt;

/// Longest value accepted; restic targets can be long, but not this long.
pub const MAX_VALUE_LEN: usize = 1024;
/// Longest backup name; restic snapshot ids are 64 characters.
pub const MAX_NAME_LEN: usize = 128;
/// `{namespace}-{pvcName}`: a 63-character namespace, a dash and a 253-character name.
pub const MAX_HOST_LEN: usize = 63 + 1 + 253;

/// Which repository a request names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepositoryRef {
    Priority(i32),
    Target(String),
}

/// Which snapshot a request names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotRef {
    /// `latest`, `true`, `now` or empty.
    Latest,
    /// A backup name; for restores, also a snapshot id or id prefix.
    Named(String),
}

/// A parsed annotation value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub repository: Option<RepositoryRef>,
    pub host: Option<String>,
    pub snapshot: SnapshotRef,
}

/// Why a value was refused. The `Display` text is what users see in Events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("value is {len} characters long; at most {MAX_VALUE_LEN} are allowed")]
    TooLong { len: usize },
    #[error("value contains whitespace at position {position}; remove it (form: [repository|][host|]name)")]
    Whitespace { position: usize },
    #[error("value contains the character {character:?} (U+{code:04X}) at position {position}; only printable ASCII is allowed")]
    NotPrintable { character: char, code: u32, position: usize },
    #[error("value has {parts} parts separated by '|'; at most 3 are allowed: [repository|][host|]name")]
    TooManyParts { parts: usize },
    #[error("the {part} part is empty in {value:?} (form: [repository|][host|]name)")]
    EmptyPart { part: &'static str, value: String },
    #[error(
        "repository {value:?} is neither a priority number (such as 1) nor a restic target (such as s3:host/bucket or /path)"
    )]
    InvalidRepository { value: String },
    #[error("repository priority {value:?} is out of range")]
    PriorityOutOfRange { value: String },
    #[error("{value:?} is neither a repository (a priority number or a restic target) nor a host of the form {{namespace}}-{{pvcName}}")]
    NeitherRepositoryNorHost { value: String },
    #[error("host {value:?} is invalid: {reason}")]
    InvalidHost { value: String, reason: &'static str },
    #[error("name {value:?} is invalid: {reason}")]
    InvalidName { value: String, reason: &'static str },
}

/// Why a parsed request cannot be served by a Config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no repository has priority {priority} (configured priorities: {known})")]
    UnknownPriority { priority: i32, known: String },
    #[error("no repository has target {target:?} (configured priorities: {known}; give the priority)")]
    UnknownTarget { target: String, known: String },
}

/// Parses an annotation value.
pub fn parse(value: &str) -> Result<Request, ParseError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(ParseError::TooLong { len: value.len() });
    }
    for (position, character) in value.chars().enumerate() {
        if character.is_whitespace() {
            return Err(ParseError::Whitespace { position });
        }
        if !character.is_ascii_graphic() {
            return Err(ParseError::NotPrintable { character, code: character as u32, position });
        }
    }

    let parts: Vec<&str> = value.split('|').collect();
    let (repository, host, name) = match parts.as_slice() {
        [name] => (None, None, *name),
        [first, name] => {
            let first = non_empty(first, "first", value)?;
            if looks_like_repository(first) {
                (Some(parse_repository(first)?), None, non_empty(name, "name", value)?)
            } else if first.contains('-') {
                (None, Some(parse_host(first)?), non_empty(name, "name", value)?)
            } else {
                return Err(ParseError::NeitherRepositoryNorHost { value: first.to_owned() });
            }
        }
        [repository, host, name] => (
            Some(parse_repository(non_empty(repository, "repository", value)?)?),
            Some(parse_host(non_empty(host, "host", value)?)?),
            non_empty(name, "name", value)?,
        ),
        _ => return Err(ParseError::TooManyParts { parts: parts.len() }),
    };
    Ok(Request { repository, host, snapshot: parse_snapshot(name)? })
}

fn non_empty<'a>(part: &'a str, what: &'static str, value: &str) -> Result<&'a str, ParseError> {
    if part.is_empty() {
        Err(ParseError::EmptyPart { part: what, value: value.to_owned() })
    } else {
        Ok(part)
    }
}

/// Hosts never contain `:` or `/` and are never all digits, so these mark a repository.
fn looks_like_repository(part: &str) -> bool {
    part.bytes().all(|b| b.is_ascii_digit()) || part.contains(':') || part.contains('/')
}

fn parse_repository(part: &str) -> Result<RepositoryRef, ParseError> {
    if part.bytes().all(|b| b.is_ascii_digit()) {
        return part
            .parse::<i32>()
            .map(RepositoryRef::Priority)
            .map_err(|_| ParseError::PriorityOutOfRange { value: part.to_owned() });
    }
    if part.contains(':') || part.starts_with('/') {
        return Ok(RepositoryRef::Target(part.to_owned()));
    }
    Err(ParseError::InvalidRepository { value: part.to_owned() })
}

fn parse_host(part: &str) -> Result<String, ParseError> {
    let invalid = |reason| Err(ParseError::InvalidHost { value: part.to_owned(), reason });
    if part.len() > MAX_HOST_LEN {
        return invalid("longer than a namespace and a PVC name together can be");
    }
    if !part.contains('-') {
        return invalid("expected {namespace}-{pvcName}");
    }
    if !part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.') {
        return invalid("only lowercase letters, digits, '-' and '.' can appear in a namespace and a PVC name");
    }
    let first = part.as_bytes()[0];
    let last = part.as_bytes()[part.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return invalid("must start and end with a letter or digit");
    }
    Ok(part.to_owned())
}

fn parse_snapshot(part: &str) -> Result<SnapshotRef, ParseError> {
    if ["", "latest", "true", "now"].iter().any(|w| part.eq_ignore_ascii_case(w)) {
        return Ok(SnapshotRef::Latest);
    }
    let invalid = |reason| Err(ParseError::InvalidName { value: part.to_owned(), reason });
    if part.len() > MAX_NAME_LEN {
        return invalid("longer than 128 characters");
    }
    if !part.as_bytes()[0].is_ascii_alphanumeric() {
        return invalid("must start with a letter or digit");
    }
    if !part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return invalid("only letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(SnapshotRef::Named(part.to_owned()))
}

impl Request {
    /// The repository the request names, looked up in a Config's repositories; `None` when it
    /// names none (then repositories are used in priority order).
    pub fn resolve_repository<'a>(&self, repositories: &'a [Repository]) -> Result<Option<&'a Repository>, ResolveError> {
        match &self.repository {
            None => Ok(None),
            Some(RepositoryRef::Priority(priority)) => {
                repositories.iter().find(|r| r.priority == *priority).map(Some).ok_or_else(|| ResolveError::UnknownPriority {
                    priority: *priority,
                    known: join(repositories.iter().map(|r| r.priority.to_string())),
                })
            }
            Some(RepositoryRef::Target(target)) => {
                // The configured targets are not listed: whoever may annotate a PVC need not learn
                // them (and a target may carry credentials).
                repositories
                    .iter()
                    .find(|r| same_target(&r.target, target) || same_target(&r.shown(), target))
                    .map(Some)
                    .ok_or_else(|| ResolveError::UnknownTarget {
                        target: crate::restic::redact_target(target),
                        known: join(repositories.iter().map(|r| r.priority.to_string())),
                    })
            }
        }
    }

    /// The backup name, if the request names one.
    pub fn name(&self) -> Option<&str> {
        match &self.snapshot {
            SnapshotRef::Latest => None,
            SnapshotRef::Named(name) => Some(name),
        }
    }
}

/// Targets compare equal regardless of a trailing slash.
fn same_target(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Request {
    /// The canonical annotation value for this request; `parse` reads it back unchanged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repository {
            Some(RepositoryRef::Priority(p)) => write!(f, "{p}|")?,
            Some(RepositoryRef::Target(t)) => write!(f, "{t}|")?,
            None => {}
        }
        if let Some(host) = &self.host {
            write!(f, "{host}|")?;
        }
        match &self.snapshot {
            SnapshotRef::Latest => f.write_str("latest"),
            SnapshotRef::Named(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn named(name: &str) -> SnapshotRef {
        SnapshotRef::Named(name.to_owned())
    }

    fn request(repository: Option<RepositoryRef>, host: Option<&str>, snapshot: SnapshotRef) -> Request {
        Request { repository, host: host.map(str::to_owned), snapshot }
    }

    #[test]
    fn seed_readme_forms() {
        let cases = [
            ("pre-upgrade-snapshot", request(None, None, named("pre-upgrade-snapshot"))),
            ("my-manual-backup-run", request(None, None, named("my-manual-backup-run"))),
            ("backup-scheduled-2025-09-13-20-55-402b85", request(None, None, named("backup-scheduled-2025-09-13-20-55-402b85"))),
            ("latest", request(None, None, SnapshotRef::Latest)),
            ("true", request(None, None, SnapshotRef::Latest)),
            ("now", request(None, None, SnapshotRef::Latest)),
            ("", request(None, None, SnapshotRef::Latest)),
            ("LATEST", request(None, None, SnapshotRef::Latest)),
            (
                "1|my-pvc-namespace-my-pvc-name|4dc109",
                request(Some(RepositoryRef::Priority(1)), Some("my-pvc-namespace-my-pvc-name"), named("4dc109")),
            ),
            (
                "s3:http://minio:9000/pg|myns-mypvc-name|now",
                request(
                    Some(RepositoryRef::Target("s3:http://minio:9000/pg".into())),
                    Some("myns-mypvc-name"),
                    SnapshotRef::Latest,
                ),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(value), Ok(expected), "value {value:?}");
        }
    }

    #[test]
    fn two_part_forms_tell_repository_from_host() {
        assert_eq!(parse("2|pre-upgrade"), Ok(request(Some(RepositoryRef::Priority(2)), None, named("pre-upgrade"))));
        assert_eq!(
            parse("/srv/restic|latest"),
            Ok(request(Some(RepositoryRef::Target("/srv/restic".into())), None, SnapshotRef::Latest))
        );
        assert_eq!(
            parse("rest:https://backup.example:8000/repo|nightly"),
            Ok(request(Some(RepositoryRef::Target("rest:https://backup.example:8000/repo".into())), None, named("nightly")))
        );
        assert_eq!(parse("prod-db|latest"), Ok(request(None, Some("prod-db"), SnapshotRef::Latest)));
        assert_eq!(parse("team.a-data.v2|abc123"), Ok(request(None, Some("team.a-data.v2"), named("abc123"))));
    }

    #[test]
    fn snapshot_ids_and_prefixes_are_names() {
        let id = "4dc1094c3e1f7a0e8f1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f50617";
        assert_eq!(parse(id), Ok(request(None, None, named(id))));
        assert_eq!(parse("4dc109"), Ok(request(None, None, named("4dc109"))));
    }

    #[test]
    fn malformed_values_have_precise_errors() {
        let cases: Vec<(String, &str)> = vec![
            ("1abc|x|y".into(), "repository \"1abc\" is neither a priority number (such as 1) nor a restic target"),
            ("1abc|y".into(), "\"1abc\" is neither a repository"),
            ("1|2|3|4".into(), "value has 4 parts separated by '|'; at most 3 are allowed"),
            ("a|b|c|d|e".into(), "value has 5 parts"),
            ("|ns-pvc|x".into(), "the repository part is empty"),
            ("1||x".into(), "the host part is empty"),
            ("1|ns-pvc|".into(), "the name part is empty"),
            ("|x".into(), "the first part is empty"),
            ("ns-pvc|".into(), "the name part is empty"),
            ("pre upgrade".into(), "whitespace at position 3"),
            (" latest".into(), "whitespace at position 0"),
            ("latest\n".into(), "whitespace at position 6"),
            ("caf\u{e9}".into(), "the character 'é' (U+00E9) at position 3"),
            ("a\u{0}b".into(), "(U+0000) at position 1"),
            ("\u{fffd}\u{fffd}".into(), "(U+FFFD) at position 0"),
            ("x".repeat(2000), "value is 2000 characters long; at most 1024"),
            ("n".repeat(129), "name \"nnnn"),
            ("1|NS-PVC|x".into(), "host \"NS-PVC\" is invalid: only lowercase letters"),
            ("1|nspvc|x".into(), "expected {namespace}-{pvcName}"),
            ("1|-ns-pvc|x".into(), "must start and end with a letter or digit"),
            ("1|ns-pvc|-x".into(), "name \"-x\" is invalid: must start with a letter or digit"),
            ("1|ns-pvc|a,b".into(), "only letters, digits, '-', '_' and '.' are allowed"),
            ("name=x".into(), "only letters, digits"),
            ("99999999999|ns-pvc|x".into(), "repository priority \"99999999999\" is out of range"),
            (format!("1|{}|x", "a-".repeat(200)), "longer than a namespace and a PVC name"),
            // Hostile values: shell, paths, control and invisible characters, injection attempts.
            ("$(id)".into(), "name \"$(id)\" is invalid: must start with a letter or digit"),
            ("`id`".into(), "must start with a letter or digit"),
            ("x;rm".into(), "only letters, digits"),
            ("../../etc/passwd".into(), "must start with a letter or digit"),
            ("1|ns-pvc|../x".into(), "must start with a letter or digit"),
            ("1|ns-pvc|x/y".into(), "only letters, digits"),
            ("x\u{202e}y".into(), "(U+202E) at position 1"),
            ("x\u{200b}".into(), "(U+200B) at position 1"),
            ("\u{1f600}".into(), "at position 0"),
            ("x\ty".into(), "whitespace at position 1"),
            ("x\ry".into(), "whitespace at position 1"),
            ("--password-command=id".into(), "must start with a letter or digit"),
            ("{\"a\":1}".into(), "must start with a letter or digit"),
            ("'x'".into(), "must start with a letter or digit"),
            ("|".into(), "the first part is empty"),
            ("||".into(), "the repository part is empty"),
            ("1|ns-pvc|x|".into(), "value has 4 parts"),
            ("-1|ns-pvc|x".into(), "neither a priority number"),
        ];
        assert!(cases.len() >= 40, "the table of hostile values stays at 40 or more");
        let tried = cases.len();
        for (value, expected) in cases {
            let error = parse(&value).expect_err(&value).to_string();
            assert!(error.contains(expected), "value {value:?}: error {error:?} lacks {expected:?}");
        }
        println!("security table: {tried} malformed and hostile annotation values, each refused with its reason");
    }

    fn repo(target: &str, priority: i32) -> Repository {
        serde_json::from_value(serde_json::json!({"target": target, "priority": priority})).unwrap()
    }

    #[test]
    fn repositories_resolve_by_priority_or_target() {
        let repos = vec![repo("s3:s3.amazonaws.com/my-bucket/backups", 1), repo("s3:http://minio:9000/backup-bucket", 2)];
        let by_priority = parse("2|ns-pvc|latest").unwrap();
        assert_eq!(by_priority.resolve_repository(&repos).unwrap().unwrap().priority, 2);
        let by_target = parse("s3:http://minio:9000/backup-bucket/|ns-pvc|x").unwrap();
        assert_eq!(by_target.resolve_repository(&repos).unwrap().unwrap().priority, 2);
        assert_eq!(parse("latest").unwrap().resolve_repository(&repos), Ok(None));

        let unknown = parse("7|ns-pvc|x").unwrap().resolve_repository(&repos).unwrap_err();
        assert_eq!(unknown.to_string(), "no repository has priority 7 (configured priorities: 1, 2)");
        let unknown = parse("s3:http://other:9000/pg|ns-pvc|x").unwrap().resolve_repository(&repos).unwrap_err();
        assert!(unknown.to_string().starts_with("no repository has target \"s3:http://other:9000/pg\""));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(value in ".{0,1100}") {
            let _ = parse(&value);
        }

        #[test]
        fn pipes_and_printables_never_panic(value in "[|0-9a-z:/.-]{0,40}") {
            let _ = parse(&value);
        }

        #[test]
        fn display_round_trips(
            priority in proptest::option::of(0i32..1000),
            host in proptest::option::of("[a-z0-9]{1,10}-[a-z0-9]{1,10}"),
            name in proptest::option::of("[A-Za-z0-9][A-Za-z0-9._-]{0,30}"),
        ) {
            let snapshot = match name {
                Some(n) if !["latest", "true", "now"].contains(&n.to_ascii_lowercase().as_str()) => SnapshotRef::Named(n),
                _ => SnapshotRef::Latest,
            };
            let original = Request { repository: priority.map(RepositoryRef::Priority), host, snapshot };
            prop_assert_eq!(parse(&original.to_string()), Ok(original));
        }
    }
}
