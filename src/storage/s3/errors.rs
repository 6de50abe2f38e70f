//! What an S3 error means for the user: what failed, and what to check.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::S3Storage;
use crate::error::Hinted;
use crate::storage::{Key, Storage};

impl S3Storage {
    /// Turns an SDK error into one that says what failed and what to check.
    pub(super) fn error<E>(
        &self,
        err: SdkError<E, HttpResponse>,
        action: &str,
        key: &Key,
    ) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err
            .as_service_error()
            .and_then(|e| e.code())
            .map(str::to_string);
        let detail = in_words(&err);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let what = format!("could not {action} {key} in {}", self.describe());
        let hinted = classify(code.as_deref(), status, &detail, &self.bucket, what);
        anyhow::anyhow!(detail).context(hinted)
    }
}

fn classify(
    code: Option<&str>,
    status: Option<u16>,
    detail: &str,
    bucket: &str,
    what: String,
) -> Hinted {
    match (code, status) {
        (Some("NoSuchBucket"), _) => Hinted::usage(
            format!("{what}: bucket {bucket:?} does not exist"),
            "create the bucket first, or check the bucket name in --repo and the --s3-endpoint",
        ),
        (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied"), _)
        | (_, Some(401 | 403)) => Hinted::usage(
            format!("{what}: access denied"),
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or \
             repository.access_key_id and secret_access_key_file in the configuration file); the \
             key needs read, write, list and delete on the bucket",
        ),
        _ if detail.contains("credentials") && detail.contains("provider") => Hinted::usage(
            format!("{what}: no S3 credentials found"),
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or \
             repository.access_key_id and secret_access_key_file in the configuration file, or \
             run where an instance role is available",
        ),
        (None, None) => Hinted::failure(
            format!("{what}: the S3 endpoint did not answer"),
            "check that --s3-endpoint / PROMSNAP_S3_ENDPOINT is right and reachable",
        ),
        _ => Hinted::failure(
            what,
            "see the cause above; rerun to retry, nothing was half-written",
        ),
    }
}

/// The cause of an SDK error in words: the S3 error code and message when
/// the server answered, else each layer of the cause chain ("dispatch
/// failure: io error: ... connection refused"), never the Rust debug
/// representation that `DisplayErrorContext` appends.
fn in_words<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(service) = err.as_service_error() {
        let code = service.code().unwrap_or("an error");
        return match service.message() {
            Some(message) => format!("S3 answered {code}: {message}"),
            None => format!("S3 answered {code}"),
        };
    }
    let mut parts: Vec<String> = Vec::new();
    let mut layer: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = layer {
        let text = e.to_string();
        // Layers often repeat their source's text; keep the new words.
        if !text.is_empty() && !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        layer = e.source();
    }
    parts.join(": ")
}

pub(super) fn is_no_such_upload<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "NoSuchUpload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_with_hints() {
        let h = classify(Some("NoSuchBucket"), Some(404), "", "b", "x".into());
        assert!(h.message.contains("does not exist") && h.hint.contains("create the bucket"));
        let h = classify(Some("InvalidAccessKeyId"), Some(403), "", "b", "x".into());
        assert!(h.hint.contains("AWS_ACCESS_KEY_ID"));
        let h = classify(None, Some(403), "", "b", "x".into());
        assert!(h.message.contains("access denied"));
        let h = classify(
            None,
            None,
            "dispatch failure: connection refused",
            "b",
            "x".into(),
        );
        assert!(h.hint.contains("--s3-endpoint"));
    }
}
