//! The plan file as written: serde structs that keep every value's span, so
//! validation can point at the exact line and column of a bad value.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{Deserializer, Error, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::kinds::{self, Shape};

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    pub name: S<String>,
    pub owner: S<String>,
    pub rto: S<String>,
    pub rpo: S<String>,
    pub backup: S<RawBackup>,
    pub retention: Option<S<RawRetention>>,
    pub regions: S<BTreeMap<S<String>, S<RawRegion>>>,
    pub resources: S<Vec<S<RawResource>>>,
    pub drill: Option<S<RawDrill>>,
    pub verify: Option<S<RawVerify>>,
    pub aws: Option<S<RawAws>>,
    pub notify: Option<S<Vec<S<RawNotify>>>>,
    pub placement: Option<S<RawPlacement>>,
}

/// `[placement]`: where in a fleet the plan may run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlacement {
    pub labels: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    pub schedule: S<String>,
    pub timezone: Option<S<String>>,
    pub jitter: Option<S<String>>,
    pub start_window: Option<S<String>>,
    pub completion_window: Option<S<String>>,
    pub primary_region: S<String>,
    pub copy_to: Option<S<Vec<S<String>>>>,
    pub before: Option<S<Vec<S<String>>>>,
    pub after: Option<S<Vec<S<String>>>>,
    pub hook_timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub keep_last: Option<S<i64>>,
    pub keep_hourly: Option<S<i64>>,
    pub keep_daily: Option<S<i64>>,
    pub keep_weekly: Option<S<i64>>,
    pub keep_monthly: Option<S<i64>>,
    pub max_age: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    pub vault: Option<S<String>>,
    pub kms_key: Option<S<String>>,
    pub retention: Option<S<RawRetention>>,
    pub object_lock: Option<S<RawObjectLock>>,
    pub encryption: Option<S<RawEncryption>>,
}

/// `encryption = { key_file = "…" }` or `{ key_env = "…" }` of a region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEncryption {
    pub key_file: Option<S<String>>,
    pub key_env: Option<S<String>>,
}

/// `object_lock = { mode = "governance", retain = "30d" }` of a region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObjectLock {
    pub mode: Option<S<String>>,
    pub retain: Option<S<String>>,
}

/// A `[[resources]]` entry: `name`, `kind`, and the keys of the kinds,
/// whose names and shapes [`kinds`] declares; which of them apply to
/// `kind` is for validation to say.
#[derive(Debug)]
pub struct RawResource {
    pub name: S<String>,
    pub kind: S<String>,
    /// The kind-specific keys, in file order, named as [`kinds`] names them.
    pub keys: Vec<(&'static str, RawValue)>,
}

/// The value of a kind-specific key, in the shape its kind reads.
#[derive(Debug)]
pub enum RawValue {
    Text(S<String>),
    List(S<Vec<S<String>>>),
}

impl RawValue {
    pub fn span(&self) -> Range<usize> {
        match self {
            RawValue::Text(v) => v.span(),
            RawValue::List(v) => v.span(),
        }
    }
}

impl RawResource {
    /// The value of a kind-specific key, if present.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.keys.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Written by hand rather than derived so that the keys come from
/// [`kinds`]; it reports problems as the derive does (`unknown field`,
/// `missing field`, serde's type errors), at the same spans.
impl<'de> Deserialize<'de> for RawResource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("RawResource", &[], ResourceVisitor)
    }
}

struct ResourceVisitor;

impl<'de> Visitor<'de> for ResourceVisitor {
    type Value = RawResource;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct RawResource")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawResource, A::Error> {
        let mut name = None;
        let mut kind = None;
        let mut keys: Vec<(&'static str, RawValue)> = Vec::new();
        while let Some(field) = map.next_key::<ResourceField>()? {
            match field {
                ResourceField::Name if name.is_some() => {
                    return Err(Error::duplicate_field("name"))
                }
                ResourceField::Name => name = Some(map.next_value()?),
                ResourceField::Kind if kind.is_some() => {
                    return Err(Error::duplicate_field("kind"))
                }
                ResourceField::Kind => kind = Some(map.next_value()?),
                ResourceField::Key(key, _) if keys.iter().any(|(k, _)| *k == key) => {
                    return Err(Error::duplicate_field(key))
                }
                ResourceField::Key(key, Shape::Text) => {
                    keys.push((key, RawValue::Text(map.next_value()?)))
                }
                ResourceField::Key(key, Shape::List) => {
                    keys.push((key, RawValue::List(map.next_value()?)))
                }
            }
        }
        Ok(RawResource {
            name: name.ok_or_else(|| Error::missing_field("name"))?,
            kind: kind.ok_or_else(|| Error::missing_field("kind"))?,
            keys,
        })
    }
}

/// A key of a `[[resources]]` entry. An unknown one fails here, while the
/// key is deserialized, so the error points at the key.
enum ResourceField {
    Name,
    Kind,
    Key(&'static str, Shape),
}

impl<'de> Deserialize<'de> for ResourceField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

struct FieldVisitor;

impl Visitor<'_> for FieldVisitor {
    type Value = ResourceField;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<ResourceField, E> {
        match key {
            "name" => Ok(ResourceField::Name),
            "kind" => Ok(ResourceField::Kind),
            other => match kinds::shape_of(other) {
                Some((key, shape)) => Ok(ResourceField::Key(key, shape)),
                None => Err(E::unknown_field(other, kinds::resource_keys())),
            },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrill {
    pub schedule: Option<S<String>>,
    pub timezone: Option<S<String>>,
    pub jitter: Option<S<String>>,
    pub region: Option<S<String>>,
    pub isolate_primary: Option<S<bool>>,
    pub cleanup: Option<S<String>>,
    pub point: Option<S<String>>,
    pub checks: Option<S<Vec<S<RawCheck>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: Option<S<String>>,
    pub resource: S<String>,
    pub sql: Option<S<String>>,
    pub command: Option<S<Vec<S<String>>>>,
    pub expect: Option<S<toml::Value>>,
    pub timeout: Option<S<String>>,
}

/// `[verify]`: when the daemon runs `lifeboat verify` on the plan, and how
/// deep.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    pub schedule: S<String>,
    pub timezone: Option<S<String>>,
    pub jitter: Option<S<String>>,
    pub read_data: Option<S<bool>>,
    pub read_data_subset: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    pub endpoint_url: Option<S<String>>,
    pub force_path_style: Option<S<bool>>,
    pub profile: Option<S<String>>,
    pub poll_interval: Option<S<String>>,
    pub read_timeout: Option<S<String>>,
}

/// One `[[notify]]` webhook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub url: Option<S<String>>,
    pub url_env: Option<S<String>>,
    pub events: Option<S<Vec<S<String>>>>,
}
