//! The plan file as written: serde structs that keep every value's span, so
//! validation can point at the exact line and column of a bad value.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

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
    pub aws: Option<S<RawAws>>,
    pub notify: Option<S<Vec<S<RawNotify>>>>,
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
}

/// `object_lock = { mode = "governance", retain = "30d" }` of a region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObjectLock {
    pub mode: Option<S<String>>,
    pub retain: Option<S<String>>,
}

/// Every key any kind takes; validation checks which ones apply to `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResource {
    pub name: S<String>,
    pub kind: S<String>,
    pub path: Option<S<String>>,
    pub exclude: Option<S<Vec<S<String>>>>,
    pub url: Option<S<String>>,
    pub drill_url: Option<S<String>>,
    pub bucket: Option<S<String>>,
    pub prefix: Option<S<String>>,
    pub instance: Option<S<String>>,
    pub cluster: Option<S<String>>,
    pub instance_class: Option<S<String>>,
    pub subnet_group: Option<S<String>>,
    pub security_groups: Option<S<Vec<S<String>>>>,
}

impl RawResource {
    /// The kind-specific keys that are present, with their spans.
    pub fn present_keys(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        let mut keys = Vec::new();
        let mut add = |name: &'static str, span: Option<std::ops::Range<usize>>| {
            if let Some(span) = span {
                keys.push((name, span));
            }
        };
        add("path", self.path.as_ref().map(|v| v.span()));
        add("exclude", self.exclude.as_ref().map(|v| v.span()));
        add("url", self.url.as_ref().map(|v| v.span()));
        add("drill_url", self.drill_url.as_ref().map(|v| v.span()));
        add("bucket", self.bucket.as_ref().map(|v| v.span()));
        add("prefix", self.prefix.as_ref().map(|v| v.span()));
        add("instance", self.instance.as_ref().map(|v| v.span()));
        add("cluster", self.cluster.as_ref().map(|v| v.span()));
        add(
            "instance_class",
            self.instance_class.as_ref().map(|v| v.span()),
        );
        add("subnet_group", self.subnet_group.as_ref().map(|v| v.span()));
        add(
            "security_groups",
            self.security_groups.as_ref().map(|v| v.span()),
        );
        keys
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
    pub sql: S<String>,
    pub expect: Option<S<toml::Value>>,
    pub timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    pub endpoint_url: Option<S<String>>,
    pub force_path_style: Option<S<bool>>,
    pub profile: Option<S<String>>,
    pub poll_interval: Option<S<String>>,
}

/// One `[[notify]]` webhook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub url: Option<S<String>>,
    pub url_env: Option<S<String>>,
    pub events: Option<S<Vec<S<String>>>>,
}
