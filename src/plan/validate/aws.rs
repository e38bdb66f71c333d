//! `[aws]`: how Lifeboat reaches AWS (an endpoint for tests, a profile,
//! how often long operations are polled, how long an answer may take).

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
        let read_timeout = a.read_timeout.as_ref().and_then(|t| {
            let d = self.duration("read_timeout", t)?;
            if d.is_zero() {
                // The SDK would cut every attempt off before any answer.
                self.error(t.span(), "`read_timeout` must be longer than 0s");
                return None;
            }
            Some(d)
        });
        Some(AwsSpec {
            endpoint_url: a.endpoint_url.as_ref().map(|v| v.get_ref().clone()),
            force_path_style: a.force_path_style.as_ref().map(|v| *v.get_ref()),
            profile: a.profile.as_ref().map(|v| v.get_ref().clone()),
            poll_interval,
            read_timeout,
        })
    }
}
