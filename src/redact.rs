//! Credentials never reach an output, a log or a stored object.
//!
//! Secrets given as files (`--prometheus-password-file`, S3 secret key
//! files) are never printed anyway. A password written into a URL
//! (`http://admin:secret@prometheus:9090`) travels with the URL into error
//! messages, progress lines and the manifest's `source.prometheus_url`; every
//! URL promsnap shows or stores goes through [`url`] first, which keeps the
//! user name (useful to tell accounts apart) and hides the password.

/// `url` with the password of its userinfo replaced by `***`. Text that is
/// not a URL comes back unchanged; a URL is otherwise kept exactly as given.
pub fn url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let user = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => userinfo.to_string(),
    };
    format!("{}{user}{}", &url[..scheme_end], &url[scheme_end + at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden_and_the_rest_kept() {
        assert_eq!(
            url("http://admin:S3cr3tPW@prom:9090/api/v1/x?y=1"),
            "http://admin:***@prom:9090/api/v1/x?y=1"
        );
        assert_eq!(url("https://u:p@ss:w@h"), "https://u:***@h");
        assert_eq!(url("http://token@host:9091"), "http://token@host:9091");
        assert_eq!(url("http://host:9090"), "http://host:9090");
        assert_eq!(url("http://host/a@b"), "http://host/a@b");
        assert_eq!(url("not a url"), "not a url");
        assert!(!url("s3://k:secret@bucket/p").contains("secret"));
    }
}
