//! `[[resources]]`: names, each kind's keys (as [`crate::plan::kinds`]
//! declares them), and the vaults the regions holding their points need.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::backup::{point_regions, Backup};
use super::regions::Regions;
use super::Validator;
use crate::plan::diagnostic::line_column;
use crate::plan::kinds;
use crate::plan::raw::{RawBackup, RawResource, S};
use crate::plan::{Resource, ResourceSpec};

impl Validator<'_> {
    /// The resources that are valid; a plan needs at least one.
    pub(super) fn resources(
        &mut self,
        raw: &S<Vec<S<RawResource>>>,
        base_dir: &Path,
    ) -> Vec<Resource> {
        if raw.get_ref().is_empty() {
            self.error(
                raw.span(),
                "the plan protects no resource: add a [[resources]] table",
            );
        }
        let mut resources = Vec::new();
        let mut name_spans: HashMap<String, Range<usize>> = HashMap::new();
        for r in raw.get_ref().iter().map(S::get_ref) {
            if !self.resource_name(r, &name_spans) {
                continue;
            }
            name_spans.insert(r.name.get_ref().clone(), r.name.span());
            if let Some(spec) = self.resource_spec(r, base_dir) {
                let name = r.name.get_ref().clone();
                resources.push(Resource { name, spec });
            }
        }
        resources
    }

    /// Checks a resource's name against the rules and the names before
    /// it; false when the resource cannot be told apart from one of them.
    fn resource_name(&mut self, r: &RawResource, before: &HashMap<String, Range<usize>>) -> bool {
        let name = r.name.get_ref();
        if !is_resource_name(name) {
            self.error(
                r.name.span(),
                format!(
                    "resource name `{name}` must be 1 to 63 characters of a-z, 0-9, '-' and '_'"
                ),
            );
        }
        if let Some(first) = before.get(name) {
            let (line, _) = line_column(self.text, first.start);
            self.error(
                r.name.span(),
                format!("duplicate resource name `{name}` (first defined on line {line})"),
            );
            return false;
        }
        // A drill's scratch names (database, S3 prefix) spell `-` as
        // `_`: two such resources would restore into one place.
        let scratch_key = name.replace('-', "_");
        if let Some((other, first)) = before
            .iter()
            .find(|(other, _)| other.replace('-', "_") == scratch_key)
        {
            let (line, _) = line_column(self.text, first.start);
            self.error(
                r.name.span(),
                format!(
                    "resource name `{name}` differs from `{other}` (line {line}) only by `-` and `_`, which drill scratch names spell alike; rename one"
                ),
            );
            return false;
        }
        true
    }

    /// The spec of a resource whose kind is known and whose keys are the
    /// kind's keys, every required one present and every one valid.
    fn resource_spec(&mut self, r: &RawResource, base_dir: &Path) -> Option<ResourceSpec> {
        let Some(kind) = kinds::find(r.kind.get_ref()) else {
            self.error(
                r.kind.span(),
                format!(
                    "unknown resource kind `{}`; expected one of {}",
                    r.kind.get_ref(),
                    kinds::kind_names()
                ),
            );
            return None;
        };
        let mut ok = true;
        for (key, value) in &r.keys {
            if kind.key(key).is_none() {
                self.error(
                    value.span(),
                    format!(
                        "`{key}` does not apply to a resource of kind `{}`",
                        kind.name
                    ),
                );
                ok = false;
            }
        }
        let mut values = HashMap::new();
        for key in kind.keys {
            match r.get(key.name) {
                None if key.required => {
                    self.error(
                        r.name.span(),
                        format!(
                            "resource `{}` of kind `{}` needs `{}`",
                            r.name.get_ref(),
                            kind.name,
                            key.name
                        ),
                    );
                    ok = false;
                }
                None => {}
                Some(raw) => match key.read(raw, base_dir) {
                    Ok(value) => {
                        values.insert(key.name, value);
                    }
                    Err(errors) => {
                        for (span, e) in errors {
                            self.error(span, e.to_string());
                        }
                        ok = false;
                    }
                },
            }
        }
        ok.then(|| kind.build(values))
    }

    /// Every region that holds artifact points needs a vault; and the
    /// objects of an `s3` resource are copied inside S3, so every region
    /// holding its points needs an s3:// vault.
    pub(super) fn check_vaults_of_resources(
        &mut self,
        resources: &[Resource],
        raw_backup: &RawBackup,
        regions: &Regions,
        backup: &Backup,
    ) {
        if let Some(artifact) = resources.iter().find(|r| r.spec.uses_vault()) {
            for (region, span) in point_regions(raw_backup) {
                let Some((_, r)) = regions.get(region) else {
                    continue;
                };
                if r.vault.is_none() {
                    self.error(
                        span,
                        format!(
                            "region `{region}` has no vault, but resource `{}` (kind {}) keeps its points in one",
                            artifact.name,
                            artifact.spec.kind()
                        ),
                    );
                }
            }
        }
        let Some(s3) = resources
            .iter()
            .find(|r| matches!(r.spec, ResourceSpec::S3 { .. }))
        else {
            return;
        };
        for (name, (span, r)) in regions {
            let vault = r.vault.as_deref().unwrap_or("");
            if backup.holds_points(name) && r.encryption.is_some() {
                self.error(
                    span.clone(),
                    format!(
                        "region `{name}` has `encryption`, but resource `{}` is of kind s3, whose objects are copied inside S3 and would be kept unencrypted by Lifeboat: keep it in a region without `encryption` (with `kms_key` for SSE-KMS)",
                        s3.name
                    ),
                );
            }
            if backup.holds_points(name) && !vault.is_empty() && !vault.starts_with("s3://") {
                self.error(
                    span.clone(),
                    format!(
                        "region `{name}` keeps its points in `{vault}`, but resource `{}` is of kind s3, whose objects are copied inside S3: give the region an s3:// vault",
                        s3.name
                    ),
                );
            }
        }
    }
}

fn is_resource_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
