//! One job per file.

pub mod deliver;
pub mod end_lease;
pub mod reap;
pub mod sweep;

/// Failures of a job run (logged once by the job, retried by apalis or the sweep).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    /// Blob store failure.
    #[error(transparent)]
    Blob(#[from] leasehold_core::blob::BlobError),
}
