//! `[aws]`: how Lifeboat reaches AWS (an endpoint for tests, a profile,
//! how often long operations are polled).

use super::Validator;
use crate::plan::raw::{RawAws, S};
use crate::plan::AwsSpec;

impl Validator<'_> {
    pub(super) fn aws(&mut self, raw: Option<&S<RawAws>>) -> Option<AwsSpec> {
        let a = raw?.get_ref();
        let poll_interval = a
            .poll_interval
            .as_ref()
            .and_then(|p| self.duration("poll_interval", p));
        Some(AwsSpec {
            endpoint_url: a.endpoint_url.as_ref().map(|v| v.get_ref().clone()),
            force_path_style: a.force_path_style.as_ref().map(|v| *v.get_ref()),
            profile: a.profile.as_ref().map(|v| v.get_ref().clone()),
            poll_interval,
        })
    }
}
