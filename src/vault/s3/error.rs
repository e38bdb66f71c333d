//! What an S3 answer means as a [`VaultError`]: a missing object, a
//! transient fault worth retrying, or a permanent refusal. The SDK has
//! already retried each request (standard retry mode, see [`crate::aws`]);
//! `retryable` tells a caller whether the whole operation may succeed later.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::aws::AwsError;
use crate::vault::VaultError;

/// Codes of faults that pass: throttling, a service hiccup, the network.
const TRANSIENT: [&str; 5] = [
    "Transport",
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
];

/// Codes that say the object (or the version asked for) is not there.
const MISSING: [&str; 2] = ["NoSuchKey", "NotFound"];

/// A failed SDK call `op` on `location`.
pub(super) fn remote<E>(op: &'static str, location: String, e: SdkError<E>) -> VaultError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let AwsError { code, message, .. } = AwsError::new(op, e);
    classify(op, location, code, message)
}

fn classify(op: &'static str, location: String, code: String, message: String) -> VaultError {
    if MISSING.contains(&code.as_str()) {
        return VaultError::NotFound { location };
    }
    VaultError::Remote {
        op,
        location,
        // A codeless answer (a HEAD's) is transient when its status is:
        // 5xx, or 429.
        retryable: TRANSIENT.contains(&code.as_str())
            || code.starts_with("HTTP 5")
            || code == "HTTP 429",
        code,
        message,
    }
}

/// A permanent failure found by Lifeboat rather than reported by S3 (a
/// request that cannot be built, an answer missing a field, a per-key
/// error inside a successful DeleteObjects).
pub(super) fn refused(
    op: &'static str,
    location: String,
    code: impl Into<String>,
    message: impl Into<String>,
) -> VaultError {
    VaultError::Remote {
        op,
        location,
        code: code.into(),
        message: message.into(),
        retryable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_missing_transient_or_permanent() {
        for (code, expected) in [
            ("NoSuchKey", None),
            ("NotFound", None),
            ("Transport", Some(true)),
            ("SlowDown", Some(true)),
            ("InternalError", Some(true)),
            ("HTTP 503", Some(true)),
            ("HTTP 429", Some(true)),
            ("HTTP 403", Some(false)),
            ("ServiceUnavailable", Some(true)),
            ("RequestTimeout", Some(true)),
            ("AccessDenied", Some(false)),
            ("NoSuchBucket", Some(false)),
            ("PreconditionFailed", Some(false)),
        ] {
            let e = classify("GetObject", "s3://b/k".into(), code.into(), "m".into());
            match (&e, expected) {
                (VaultError::NotFound { location }, None) => assert_eq!(location, "s3://b/k"),
                (VaultError::Remote { code: c, .. }, Some(retryable)) => {
                    assert_eq!(c, code);
                    assert_eq!(e.is_retryable(), retryable, "{code}");
                }
                _ => panic!("{code}: unexpected {e:?}"),
            }
        }
    }

    #[test]
    fn a_timeout_is_a_retryable_transport_failure_that_says_why() {
        let e = remote::<aws_sdk_s3::operation::get_object::GetObjectError>(
            "GetObject",
            "s3://b/k".into(),
            SdkError::timeout_error("no answer in 60s"),
        );
        assert!(e.is_retryable(), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("s3://b/k: GetObject failed: Transport: "),
            "{text}"
        );
        assert!(text.contains("no answer in 60s"), "{text}");
    }

    #[test]
    fn a_head_answer_without_a_code_is_named_by_its_status() {
        use aws_sdk_s3::config::http::HttpResponse;
        use aws_sdk_s3::error::ErrorMetadata;
        use aws_sdk_s3::operation::head_object::HeadObjectError;
        use aws_sdk_s3::primitives::SdkBody;
        // A HEAD answer has no body, so a 503 SlowDown carries no code.
        let answer = HttpResponse::new(503.try_into().unwrap(), SdkBody::empty());
        let err = HeadObjectError::generic(ErrorMetadata::builder().build());
        let e = remote(
            "HeadObject",
            "s3://b/k".into(),
            SdkError::service_error(err, answer),
        );
        assert!(e.is_retryable(), "{e:?}");
        assert_eq!(e.to_string(), "s3://b/k: HeadObject failed: HTTP 503: ");
    }

    #[test]
    fn refusals_are_never_retryable() {
        let e = refused("UploadPart", "s3://b/k".into(), "TooManyParts", "too big");
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "s3://b/k: UploadPart failed: TooManyParts: too big"
        );
    }
}
