//! `[[notify]]`: webhooks and the events each one is told about. A URL is
//! never repeated in a message: it usually carries a token.

use super::Validator;
use crate::plan::raw::{RawNotify, S};
use crate::plan::{NotifyEvent, SecretUrl, Webhook, WebhookTarget};

impl Validator<'_> {
    /// The webhooks whose target is valid.
    pub(super) fn notify(&mut self, raw: Option<&S<Vec<S<RawNotify>>>>) -> Vec<Webhook> {
        let mut hooks = Vec::new();
        for entry in raw.map(|r| r.get_ref().as_slice()).unwrap_or(&[]) {
            let target = self.webhook_target(entry);
            let events = self.events(entry.get_ref().events.as_ref());
            if let Some(target) = target {
                hooks.push(Webhook { target, events });
            }
        }
        hooks
    }

    /// A URL (`url`), or the environment variable that holds it (`url_env`).
    fn webhook_target(&mut self, entry: &S<RawNotify>) -> Option<WebhookTarget> {
        let n = entry.get_ref();
        match (&n.url, &n.url_env) {
            (Some(_), Some(env)) => {
                self.error(
                    env.span(),
                    "give the webhook's `url` or `url_env`, not both",
                );
                None
            }
            (None, None) => {
                self.error(
                    entry.span(),
                    "a [[notify]] entry needs `url`, or `url_env`: the name of an environment variable holding the URL",
                );
                None
            }
            (Some(url), None) => match SecretUrl::parse(url.get_ref()) {
                Ok(u) => Some(WebhookTarget::Url(u)),
                Err(e) => {
                    self.error(url.span(), format!("webhook `url` {e}"));
                    None
                }
            },
            (None, Some(env)) => self.url_env(env),
        }
    }

    fn url_env(&mut self, env: &S<String>) -> Option<WebhookTarget> {
        let name = env.get_ref().trim();
        if !is_env_name(name) {
            self.error(
                env.span(),
                format!("`url_env` must name an environment variable (letters, digits and '_', not starting with a digit), got `{name}`"),
            );
            return None;
        }
        if std::env::var_os(name).is_none() {
            self.warning(
                env.span(),
                format!("environment variable {name} is not set here: this webhook gets nothing where it is unset"),
            );
        }
        Some(WebhookTarget::Env(name.to_string()))
    }

    /// Every event unless `events` narrows it; duplicates count once.
    fn events(&mut self, raw: Option<&S<Vec<S<String>>>>) -> Vec<NotifyEvent> {
        let Some(list) = raw else {
            return NotifyEvent::ALL.to_vec();
        };
        if list.get_ref().is_empty() {
            self.error(
                list.span(),
                "`events` is empty: list some (or leave it out for all of them)",
            );
            return Vec::new();
        }
        let mut events = Vec::new();
        for e in list.get_ref() {
            match NotifyEvent::parse(e.get_ref()) {
                Some(ev) if !events.contains(&ev) => events.push(ev),
                Some(_) => {}
                None => self.error(
                    e.span(),
                    format!(
                        "unknown event `{}`; expected one of {}",
                        e.get_ref(),
                        NotifyEvent::ALL.map(NotifyEvent::as_str).join(", ")
                    ),
                ),
            }
        }
        events
    }
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
