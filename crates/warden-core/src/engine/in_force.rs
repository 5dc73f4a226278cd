//! The config in force: what each service runs now, as the engine last applied it (at the
//! start and after each reload), for `GET /v1/services/{name}/config`. An edit of the file
//! that was not reloaded yet, or a file that has errors now, changes nothing here.

use std::sync::Arc;

use super::{Handle, read};
use crate::config::ServiceConfig;

impl Handle {
    /// The config of every service in force, in config order; `None` once the engine ended.
    pub fn config_in_force(&self) -> Option<Arc<Vec<ServiceConfig>>> {
        let board = read(&self.board);
        (!board.closed).then(|| board.in_force.clone())
    }
}
