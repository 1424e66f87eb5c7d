//! Group commit of drops for one process: drops that arrive while a transaction runs
//! commit together in the next one.

use sea_orm::{DatabaseConnection, DbErr};

use super::drops::{Dropped, PendingDrop, commit_drops};

/// Largest group commit.
pub const MAX_BATCH: usize = 128;

struct Queued {
    drop: PendingDrop,
    reply: tokio::sync::oneshot::Sender<Result<Dropped, DbErr>>,
}

/// Group commit of drops for one process: whatever drops arrive while a transaction runs
/// commit together in the next one, so a burst costs one commit instead of one each. A
/// lone drop commits at once.
#[derive(Clone, Debug)]
pub struct Committer {
    queue: tokio::sync::mpsc::Sender<Queued>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued").field("lease_id", &self.drop.lease_id).finish_non_exhaustive()
    }
}

impl Committer {
    /// Starts the committing task; it ends when every handle is dropped.
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Queued>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let drops: Vec<PendingDrop> = batch.iter().map(|q| q.drop.clone()).collect();
                match commit_drops(&db, &drops).await {
                    Ok(outcomes) => {
                        for (q, outcome) in batch.drain(..).zip(outcomes) {
                            q.reply.send(Ok(outcome)).ok();
                        }
                    }
                    // The whole transaction rolled back: give each drop its own, so one
                    // bad drop cannot fail the others.
                    Err(_) if batch.len() > 1 => {
                        for q in batch.drain(..) {
                            let one = commit_drops(&db, std::slice::from_ref(&q.drop)).await;
                            q.reply.send(one.map(|mut o| o.remove(0))).ok();
                        }
                    }
                    Err(e) => {
                        if let Some(q) = batch.pop() {
                            q.reply.send(Err(e)).ok();
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    /// Commits one drop (with whatever else is waiting).
    pub async fn commit(&self, drop: PendingDrop) -> Result<Dropped, DbErr> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue.send(Queued { drop, reply }).await.map_err(|_| DbErr::Custom("drop committer stopped".into()))?;
        answer.await.map_err(|_| DbErr::Custom("drop committer stopped".into()))?
    }
}
