//! Each resource kind's keys, declared once: which keys a kind takes, which
//! of them it needs, how each value is read, and how the values make the
//! kind's [`ResourceSpec`]. The raw parser takes the key names and shapes
//! from here ([`resource_keys`], [`shape_of`]); validation takes the rest.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use super::raw::RawValue;
use super::{DumpFormat, RdsRestore, ResourceSpec};

/// A resource kind as plans write it.
pub(super) struct Kind {
    /// The `kind` value.
    pub name: &'static str,
    /// Every key the kind takes besides `name` and `kind`.
    pub keys: &'static [Key],
    /// Makes the spec from the values read; only called once every key
    /// present was read and every required key is present.
    build: fn(&mut Values) -> ResourceSpec,
}

/// One key of a kind.
pub(super) struct Key {
    pub name: &'static str,
    pub required: bool,
    pub read: Read,
}

/// How a key's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// Any string (a required one must not be blank).
    Text,
    /// A path, relative to the plan file's folder.
    Path,
    /// A `postgres://` or `postgresql://` URL without a password.
    PostgresUrl,
    /// A list of strings.
    List,
    /// A list of glob patterns.
    Globs,
    /// One of these words; a key left out takes the first.
    Choice(&'static [&'static str]),
}

/// How a value is written in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// A string.
    Text,
    /// An array of strings.
    List,
}

impl Read {
    fn shape(self) -> Shape {
        match self {
            Read::Text | Read::Path | Read::PostgresUrl | Read::Choice(_) => Shape::Text,
            Read::List | Read::Globs => Shape::List,
        }
    }
}

const fn required(name: &'static str, read: Read) -> Key {
    Key {
        name,
        required: true,
        read,
    }
}

const fn optional(name: &'static str, read: Read) -> Key {
    Key {
        name,
        required: false,
        read,
    }
}

/// Every kind, in the order messages list them.
pub(super) const KINDS: &[Kind] = &[
    Kind {
        name: "path",
        keys: &[
            required("path", Read::Path),
            optional("exclude", Read::Globs),
        ],
        build: |v| ResourceSpec::Path {
            path: v.path("path"),
            exclude: v.list("exclude"),
        },
    },
    Kind {
        name: "sqlite",
        keys: &[required("path", Read::Path)],
        build: |v| ResourceSpec::Sqlite {
            path: v.path("path"),
        },
    },
    Kind {
        name: "postgres",
        keys: &[
            required("url", Read::PostgresUrl),
            optional("drill_url", Read::PostgresUrl),
            optional("dump_format", Read::Choice(DumpFormat::NAMES)),
        ],
        build: |v| ResourceSpec::Postgres {
            url: v.text("url"),
            drill_url: v.optional_text("drill_url"),
            dump_format: DumpFormat::named(&v.choice("dump_format", DumpFormat::NAMES)),
        },
    },
    Kind {
        name: "s3",
        keys: &[
            required("bucket", Read::Text),
            optional("prefix", Read::Text),
        ],
        build: |v| ResourceSpec::S3 {
            bucket: v.text("bucket"),
            prefix: v.optional_text("prefix").unwrap_or_default(),
        },
    },
    Kind {
        name: "rds-instance",
        keys: &[
            required("instance", Read::Text),
            optional("instance_class", Read::Text),
            optional("subnet_group", Read::Text),
            optional("security_groups", Read::List),
        ],
        build: |v| ResourceSpec::RdsInstance {
            instance: v.text("instance"),
            restore: v.rds_restore(),
        },
    },
    Kind {
        name: "rds-cluster",
        keys: &[
            required("cluster", Read::Text),
            optional("instance_class", Read::Text),
            optional("subnet_group", Read::Text),
            optional("security_groups", Read::List),
        ],
        build: |v| ResourceSpec::RdsCluster {
            cluster: v.text("cluster"),
            restore: v.rds_restore(),
        },
    },
];

/// The kind a plan names, if it is one.
pub(super) fn find(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == kind)
}

/// `path, sqlite, …`: every kind's name, for messages.
pub(super) fn kind_names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// Every key a `[[resources]]` entry may have: `name`, `kind`, then each
/// kind's keys in the order the kinds declare them.
pub(super) fn resource_keys() -> &'static [&'static str] {
    static KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        let mut keys = vec!["name", "kind"];
        for key in KINDS.iter().flat_map(|k| k.keys) {
            if !keys.contains(&key.name) {
                keys.push(key.name);
            }
        }
        keys
    });
    &KEYS
}

/// The shape of a kind-specific key, with its name as declared. Kinds
/// that share a key read it alike (a test holds them to it).
pub(super) fn shape_of(key: &str) -> Option<(&'static str, Shape)> {
    KINDS
        .iter()
        .flat_map(|k| k.keys)
        .find(|k| k.name == key)
        .map(|k| (k.name, k.read.shape()))
}

/// Why a value cannot be read. Each message names its key.
#[derive(Debug, thiserror::Error)]
pub(super) enum ValueError {
    #[error("`{0}` must not be empty")]
    Empty(&'static str),
    #[error("`{0}` must be a postgres:// or postgresql:// URL")]
    NotPostgres(&'static str),
    #[error("`{key}` must be one of {}, not `{given}`", .choices.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))]
    NotAChoice {
        key: &'static str,
        choices: &'static [&'static str],
        given: String,
    },
    #[error("`{0}` contains a password; give it through PGPASSWORD or ~/.pgpass instead, never in a plan file")]
    Password(&'static str),
    #[error("invalid {key} glob `{glob}`: {source}")]
    Glob {
        key: &'static str,
        glob: String,
        source: globset::Error,
    },
}

/// A value read by its key's [`Read`].
#[derive(Debug)]
pub(super) enum Value {
    Text(String),
    Path(PathBuf),
    List(Vec<String>),
}

impl Key {
    /// Reads `value` (already of the key's shape: the raw parser saw to
    /// it); every problem comes with the span it is about.
    pub fn read(
        &self,
        value: &RawValue,
        base_dir: &Path,
    ) -> Result<Value, Vec<(Range<usize>, ValueError)>> {
        match value {
            RawValue::Text(text) => {
                let one = |e| Err(vec![(text.span(), e)]);
                let text = text.get_ref();
                if self.required && text.trim().is_empty() {
                    return one(ValueError::Empty(self.name));
                }
                match self.read {
                    Read::Path => Ok(Value::Path(base_dir.join(text))),
                    Read::PostgresUrl => match check_postgres_url(self.name, text) {
                        Ok(()) => Ok(Value::Text(text.clone())),
                        Err(e) => one(e),
                    },
                    Read::Choice(choices) if !choices.contains(&text.as_str()) => {
                        one(ValueError::NotAChoice {
                            key: self.name,
                            choices,
                            given: text.clone(),
                        })
                    }
                    _ => Ok(Value::Text(text.clone())),
                }
            }
            RawValue::List(list) => {
                let items = list.get_ref().iter();
                if self.read != Read::Globs {
                    return Ok(Value::List(items.map(|i| i.get_ref().clone()).collect()));
                }
                let errors: Vec<_> = items
                    .clone()
                    .filter_map(|g| {
                        let e = globset::Glob::new(g.get_ref()).err()?;
                        let glob = g.get_ref().clone();
                        let key = self.name;
                        Some((
                            g.span(),
                            ValueError::Glob {
                                key,
                                glob,
                                source: e,
                            },
                        ))
                    })
                    .collect();
                if !errors.is_empty() {
                    return Err(errors);
                }
                Ok(Value::List(items.map(|i| i.get_ref().clone()).collect()))
            }
        }
    }
}

fn check_postgres_url(key: &'static str, text: &str) -> Result<(), ValueError> {
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        Err(ValueError::NotPostgres(key))
    } else if url_has_password(text) {
        Err(ValueError::Password(key))
    } else {
        Ok(())
    }
}

fn url_has_password(url: &str) -> bool {
    // postgres://user:password@host/db, or password=... in a key/value string.
    if let Some(rest) = url.split("://").nth(1) {
        if let Some(userinfo) = rest.split('@').next().filter(|_| rest.contains('@')) {
            if userinfo.contains(':') {
                return true;
            }
        }
    }
    url.to_ascii_lowercase().contains("password=")
}

impl Kind {
    /// The key of this kind named `name`.
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The spec, from the values of this kind's keys.
    pub fn build(&self, values: HashMap<&'static str, Value>) -> ResourceSpec {
        let mut values = Values(values);
        let spec = (self.build)(&mut values);
        // A value left over is a key `build` misnames: caught by the tests.
        debug_assert!(values.0.is_empty(), "{} left {:?}", self.name, values.0);
        spec
    }
}

/// The values a kind's `build` takes apart. Its getters panic on a key the
/// kind does not declare with that read (and as required, for the ones
/// that return no `Option`): a mistake in [`KINDS`], which the tests catch
/// by building every kind from its required keys and from all of them.
struct Values(HashMap<&'static str, Value>);

impl Values {
    fn text(&mut self, key: &str) -> String {
        self.optional_text(key)
            .unwrap_or_else(|| panic!("required key `{key}` was not read"))
    }

    fn optional_text(&mut self, key: &str) -> Option<String> {
        match self.0.remove(key) {
            None => None,
            Some(Value::Text(t)) => Some(t),
            Some(other) => panic!("`{key}` is not read as text: {other:?}"),
        }
    }

    /// A [`Read::Choice`] key's word, else its first.
    fn choice(&mut self, key: &str, choices: &[&str]) -> String {
        self.optional_text(key)
            .unwrap_or_else(|| choices[0].to_string())
    }

    fn path(&mut self, key: &str) -> PathBuf {
        match self.0.remove(key) {
            Some(Value::Path(p)) => p,
            other => panic!("`{key}` is not a required path: {other:?}"),
        }
    }

    fn list(&mut self, key: &str) -> Vec<String> {
        match self.0.remove(key) {
            None => Vec::new(),
            Some(Value::List(l)) => l,
            Some(other) => panic!("`{key}` is not read as a list: {other:?}"),
        }
    }

    /// The RDS kinds' optional settings of the instance a drill restores.
    fn rds_restore(&mut self) -> RdsRestore {
        RdsRestore {
            instance_class: self.optional_text("instance_class"),
            subnet_group: self.optional_text("subnet_group"),
            security_groups: self.list("security_groups"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::Spanned;

    fn text(s: &str) -> RawValue {
        RawValue::Text(Spanned::new(0..s.len(), s.to_string()))
    }

    fn list(items: &[&str]) -> RawValue {
        let items = items
            .iter()
            .map(|s| Spanned::new(0..s.len(), s.to_string()))
            .collect();
        RawValue::List(Spanned::new(0..1, items))
    }

    /// A value every key of that read accepts.
    fn sample(read: Read) -> RawValue {
        match read {
            Read::Text => text("x"),
            Read::Path => text("data/app.db"),
            Read::PostgresUrl => text("postgres://app@db/app"),
            Read::Choice(choices) => text(choices[choices.len() - 1]),
            Read::List | Read::Globs => list(&["*.tmp"]),
        }
    }

    fn build(kind: &Kind, keys: impl Iterator<Item = &'static Key>) -> ResourceSpec {
        let values = keys
            .map(|k| {
                (
                    k.name,
                    k.read(&sample(k.read), Path::new("/plans")).unwrap(),
                )
            })
            .collect();
        kind.build(values)
    }

    #[test]
    fn every_kind_builds_from_its_required_keys_or_all_of_them() {
        for kind in KINDS {
            let spec = build(kind, kind.keys.iter().filter(|k| k.required));
            assert_eq!(spec.kind(), kind.name);
            let spec = build(kind, kind.keys.iter());
            assert_eq!(spec.kind(), kind.name);
        }
    }

    #[test]
    fn every_key_is_read_alike_by_every_kind_that_takes_it() {
        for key in KINDS.iter().flat_map(|k| k.keys) {
            let (name, shape) = shape_of(key.name).unwrap();
            assert_eq!((name, shape), (key.name, key.read.shape()));
        }
        assert_eq!(resource_keys()[..2], ["name", "kind"]);
        assert!(shape_of("name").is_none() && shape_of("colour").is_none());
    }

    #[test]
    fn an_optional_key_left_out_takes_its_default() {
        let s3 = find("s3").unwrap();
        let spec = build(s3, s3.key("bucket").into_iter());
        assert!(matches!(spec, ResourceSpec::S3 { prefix, .. } if prefix.is_empty()));
        let rds = find("rds-cluster").unwrap();
        let spec = build(rds, rds.key("cluster").into_iter());
        let ResourceSpec::RdsCluster { restore, .. } = spec else {
            panic!("{spec:?}")
        };
        assert_eq!(restore, RdsRestore::default());
    }

    #[test]
    fn paths_are_relative_to_the_plan_folder() {
        let key = find("sqlite").unwrap().key("path").unwrap();
        let read = |p| match key.read(&text(p), Path::new("/plans")) {
            Ok(Value::Path(p)) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!(read("data/app.db"), Path::new("/plans/data/app.db"));
        assert_eq!(read("/srv/app.db"), Path::new("/srv/app.db"));
    }

    #[rstest::rstest]
    #[case::blank_required("url", " ", "`url` must not be empty")]
    #[case::not_postgres(
        "url",
        "mysql://db/app",
        "`url` must be a postgres:// or postgresql:// URL"
    )]
    #[case::key_value_string(
        "drill_url",
        "host=db",
        "`drill_url` must be a postgres:// or postgresql:// URL"
    )]
    #[case::blank_optional(
        "drill_url",
        "",
        "`drill_url` must be a postgres:// or postgresql:// URL"
    )]
    #[case::password("url", "postgres://app:pw@db/app", "`url` contains a password; give it through PGPASSWORD or ~/.pgpass instead, never in a plan file")]
    #[case::password_parameter("drill_url", "postgresql://db/app?Password=pw", "`drill_url` contains a password; give it through PGPASSWORD or ~/.pgpass instead, never in a plan file")]
    fn postgres_urls_are_checked(#[case] key: &str, #[case] value: &str, #[case] expected: &str) {
        let key = find("postgres").unwrap().key(key).unwrap();
        let errors = key.read(&text(value), Path::new("/")).unwrap_err();
        let messages: Vec<String> = errors.iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(messages, [expected]);
    }

    #[rstest::rstest]
    #[case::user_only("postgres://app@db/app")]
    #[case::no_user("postgresql://db:5432/app")]
    #[case::colon_after_at("postgres://app@db:5432/app")]
    fn postgres_urls_without_a_password_are_taken(#[case] value: &str) {
        let key = find("postgres").unwrap().key("url").unwrap();
        assert!(key.read(&text(value), Path::new("/")).is_ok());
    }

    #[test]
    fn every_bad_glob_is_reported_at_its_item() {
        let key = find("path").unwrap().key("exclude").unwrap();
        let value = RawValue::List(Spanned::new(
            0..30,
            vec![
                Spanned::new(1..5, "a/**[".to_string()),
                Spanned::new(7..10, "*.tmp".to_string()),
                Spanned::new(12..15, "{b".to_string()),
            ],
        ));
        let errors = key.read(&value, Path::new("/")).unwrap_err();
        let spans: Vec<_> = errors.iter().map(|(s, _)| s.clone()).collect();
        assert_eq!(spans, [1..5, 12..15]);
        assert!(
            errors[0]
                .1
                .to_string()
                .starts_with("invalid exclude glob `a/**[`: "),
            "{}",
            errors[0].1
        );
    }
}
