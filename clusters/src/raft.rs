//! Raft (leader-based, correct) on openraft. Under construction.

use crate::config::Config;
use std::sync::Arc;

pub struct RaftNode;

impl RaftNode {
    pub async fn start(_config: Arc<Config>) -> Result<Arc<crate::primary_backup::PrimaryBackup>, crate::StartError> {
        Err(crate::StartError::Raft("the raft architecture is not available in this build".into()))
    }
}
