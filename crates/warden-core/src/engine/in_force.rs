//! The config in force: what each service runs now, as the engine last applied it (at the
//! start and after each reload), for `GET /v1/services/{name}/config`. An edit of the file
//! that was not reloaded yet, or a file that has errors now, changes nothing here. Published
//! with the list of services, at the start and after each reload.

use std::sync::Arc;

use super::{Engine, Handle, read, write};
use crate::config::ServiceConfig;

impl Handle {
    /// The config of every service in force, in config order; `None` once the engine ended.
    pub fn config_in_force(&self) -> Option<Arc<Vec<Arc<ServiceConfig>>>> {
        let board = read(&self.board);
        (!board.closed).then(|| board.in_force.clone())
    }
}

impl Engine {
    /// Publish the current services (in config order) for `status`.
    pub(super) fn publish(&self) {
        let mut board = write(&self.board);
        board.config = self.config.path.display().to_string();
        board.config_path.clone_from(&self.config.path);
        board.services = self
            .entries
            .iter()
            .map(|e| (e.cfg.name.clone(), e.status.clone(), e.logs.clone()))
            .collect();
        board.extra.publish(self.entries.iter().map(|e| &*e.cfg));
        board.in_force = Arc::new(self.entries.iter().map(|e| e.cfg.clone()).collect());
    }
}
