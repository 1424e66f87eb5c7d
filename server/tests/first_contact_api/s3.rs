//! S3 at first contact: a missing bucket, refused credentials and missing credentials each
//! stop the start with one line saying what to do, not an SDK dump.

use super::{Run, run};

struct Store {
    endpoint: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
}

fn store() -> Option<Store> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("LEASEHOLD_TEST_S3_ENDPOINT"),
        var("LEASEHOLD_TEST_S3_BUCKET"),
        var("LEASEHOLD_TEST_S3_ACCESS_KEY_ID"),
        var("LEASEHOLD_TEST_S3_SECRET_ACCESS_KEY"),
    ) {
        (Some(endpoint), Some(bucket), Some(access_key_id), Some(secret_access_key)) => {
            Some(Store { endpoint, bucket, access_key_id, secret_access_key })
        }
        _ => {
            eprintln!("skipped: S3 not configured (set LEASEHOLD_TEST_S3_* with static keys)");
            None
        }
    }
}

impl Store {
    /// `host:port` of the endpoint, as the messages name it.
    fn place(&self) -> &str {
        self.endpoint.split_once("://").map_or(self.endpoint.as_str(), |(_, rest)| rest).trim_end_matches('/')
    }

    /// Starts an embedded server in a fresh directory on this store.
    fn start(&self, bucket: &str, credentials: Option<(&str, &str)>) -> Run {
        let dir = tempfile::tempdir().expect("dir");
        let mut env = vec![
            ("LEASEHOLD_LISTEN", "127.0.0.1:0".to_owned()),
            ("LEASEHOLD_BLOB_STORE", "s3".into()),
            ("LEASEHOLD_S3_BUCKET", bucket.into()),
            ("LEASEHOLD_S3_ENDPOINT", self.endpoint.clone()),
            ("LEASEHOLD_S3_FORCE_PATH_STYLE", "true".into()),
        ];
        if let Some((id, secret)) = credentials {
            env.push(("AWS_ACCESS_KEY_ID", id.into()));
            env.push(("AWS_SECRET_ACCESS_KEY", secret.into()));
        }
        let run = run(dir.path(), &[], &env);
        assert_eq!(run.code(), Some(1), "{}", run.stderr);
        for dump in ["ServiceError", "raw: Response", "DispatchFailure"] {
            assert!(!run.stderr.contains(dump), "no SDK dump: {}", run.stderr);
        }
        run
    }
}

#[test]
fn a_missing_bucket_is_one_line_saying_to_create_it() {
    let Some(s3) = store() else { return };
    let run = s3.start("leasehold-no-such-bucket", Some((&s3.access_key_id, &s3.secret_access_key)));
    let line =
        format!("S3 bucket \"leasehold-no-such-bucket\" not found at {} (LEASEHOLD_S3_BUCKET) — create it", s3.place());
    assert!(run.stderr.contains(&line), "{}", run.stderr);
}

#[test]
fn refused_credentials_are_one_line_naming_the_variables() {
    let Some(s3) = store() else { return };
    let run = s3.start(&s3.bucket, Some((&s3.access_key_id, "not-the-secret")));
    let line = format!("S3 credentials refused by {} for bucket \"{}\"", s3.place(), s3.bucket);
    assert!(run.stderr.contains(&line), "{}", run.stderr);
    assert!(run.stderr.contains("AWS_SECRET_ACCESS_KEY"), "{}", run.stderr);
}

#[test]
fn missing_credentials_are_one_line_naming_the_variables() {
    let Some(s3) = store() else { return };
    let run = s3.start(&s3.bucket, None);
    assert!(run.stderr.contains("no S3 credentials found — set AWS_ACCESS_KEY_ID"), "{}", run.stderr);
}
