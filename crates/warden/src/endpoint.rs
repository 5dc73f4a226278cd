//! The control endpoint of a running warden. (Placeholder until the API server lands.)

use tokio::sync::mpsc;
use warden_core::config::Config;
use warden_core::engine::Handle;

use crate::Failure;
use crate::supervisor::Ask;

pub struct Endpoint;

pub struct Running;

impl Endpoint {
    pub fn prepare(_config: &Config) -> Result<Endpoint, Failure> {
        Ok(Endpoint)
    }

    pub async fn serve(
        self,
        _config: &Config,
        _handle: Handle,
        _asks: mpsc::Sender<Ask>,
    ) -> Result<Running, Failure> {
        Ok(Running)
    }
}
