//! Where the bytes live: the file tree or an S3-compatible bucket.

use std::path::{Path, PathBuf};

use super::source::{Source, validate_url};
use super::{ConfigError, MIB};
use crate::secret::Secret;

/// Static S3 credentials; only for tests and programs that embed Leasehold. Configuration
/// from the environment never sets them: the standard AWS chain applies.
#[derive(Clone, Debug)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
}

/// Settings of the S3 blob backend.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Bucket holding every object.
    pub bucket: String,
    /// Custom endpoint (MinIO, Garage, R2); `None` for AWS.
    pub endpoint: Option<String>,
    /// Signing region.
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most self-hosted stores.
    pub force_path_style: bool,
    /// Key prefix under which this deployment keeps its objects (empty or ending in `/`).
    pub prefix: String,
    /// Multipart part size; uploads larger than one part use multipart.
    pub part_size: usize,
    /// Explicit credentials instead of the AWS chain (tests only).
    pub credentials: Option<StaticCredentials>,
}

/// Which blob backend holds the bytes.
#[derive(Clone, Debug)]
pub enum BlobConfig {
    /// Files under a directory.
    Fs {
        /// Root directory of the blob tree.
        root: PathBuf,
    },
    /// An S3-compatible bucket.
    S3(S3Config),
}

pub(super) fn blob_config(src: &Source<'_>, data_dir: &Path) -> Result<BlobConfig, ConfigError> {
    match src.get("BLOB_STORE").as_deref() {
        None | Some("fs") => Ok(BlobConfig::Fs { root: data_dir.join("blobs") }),
        Some("s3") => {
            let bucket = src
                .get("S3_BUCKET")
                .filter(|b| !b.is_empty())
                .ok_or_else(|| ConfigError::new("S3_BUCKET", "required when LEASEHOLD_BLOB_STORE=s3"))?;
            let endpoint = match src.get("S3_ENDPOINT").filter(|e| !e.is_empty()) {
                Some(e) => Some(validate_url("S3_ENDPOINT", &e)?),
                None => None,
            };
            let mut prefix = src.get("S3_PREFIX").unwrap_or_default();
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            Ok(BlobConfig::S3(S3Config {
                bucket,
                endpoint,
                region: src.get("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                force_path_style: src.flag("S3_FORCE_PATH_STYLE", false)?,
                prefix,
                part_size: usize::try_from(src.number("S3_PART_SIZE_BYTES", 8 * MIB)?)
                    .map_err(|_| ConfigError::new("S3_PART_SIZE_BYTES", "too large"))?,
                credentials: None,
            }))
        }
        Some(other) => Err(ConfigError::new("BLOB_STORE", format!("expected fs or s3, got {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{Config, env};

    #[test]
    fn s3_needs_a_bucket() {
        let err =
            Config::from_sources(&env(&[("LEASEHOLD_BLOB_STORE", "s3")]), &BTreeMap::new()).expect_err("must fail");
        assert_eq!(err.key, "LEASEHOLD_S3_BUCKET");
        let c = Config::from_sources(
            &env(&[
                ("LEASEHOLD_BLOB_STORE", "s3"),
                ("LEASEHOLD_S3_BUCKET", "b"),
                ("LEASEHOLD_S3_PREFIX", "p"),
                ("LEASEHOLD_S3_FORCE_PATH_STYLE", "true"),
            ]),
            &BTreeMap::new(),
        )
        .expect("valid");
        let BlobConfig::S3(s3) = c.blob else { panic!("expected s3") };
        assert_eq!(s3.prefix, "p/");
        assert!(s3.force_path_style);
    }
}
