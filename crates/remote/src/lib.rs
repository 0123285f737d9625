//! Prometheus' remote storage protocols and federation for Watchfire.
//!
//! * [`receiver`]: `POST /api/v1/write`, the remote-write receiver (protocol 1.0
//!   `prometheus.WriteRequest` and 2.0 `io.prometheus.write.v2.Request`), as upstream's
//!   `storage/remote/write_handler.go`.
//! * [`read`]: `POST /api/v1/read`, remote read with sampled and streamed (XOR chunk)
//!   responses, as upstream's `storage/remote/read_handler.go`.
//! * [`federate`]: `GET /federate`, as upstream's `web/federate.go`.
//! * [`sender`]: the remote-write client side: one queue per `remote_write` entry, with
//!   sharding, batching, retries and `prometheus_remote_storage_*` self-metrics; each queue is
//!   fed by a [`watcher`] thread reading the samples from the WAL, as upstream.
//! * [`metadata`]: the metric metadata remote write 1.0 queues send every minute.
//!
//! Each server part is an axum [`Router`](axum::Router) the web server mounts; none of them
//! knows about URL prefixes or authentication. Storage is reached only through the
//! `watchfire-storage` traits; appends and queries run on tokio's blocking pool.

pub mod codec;
pub mod federate;
pub mod metadata;
pub mod read;
pub mod receiver;
pub mod sender;
pub mod watcher;
pub mod wire;

pub use federate::{FederateOptions, federate_router};
pub use metadata::{FamilyMetadata, MetadataSource};

use std::sync::{Arc, RwLock};

use watchfire_model::Labels;

/// `global.external_labels` as remote read and federation see them: shared with the server,
/// which replaces them when a reload changes the configuration.
#[derive(Clone, Debug, Default)]
pub struct ExternalLabels(Arc<RwLock<Labels>>);

impl ExternalLabels {
    pub fn new(labels: Labels) -> Self {
        ExternalLabels(Arc::new(RwLock::new(labels)))
    }

    /// The labels now.
    pub fn get(&self) -> Labels {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the labels (a configuration reload).
    pub fn set(&self, labels: Labels) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = labels;
    }
}
pub use read::{ReadOptions, read_router};
pub use receiver::{ReceiverOptions, receiver_router};
pub use sender::{TimestampTracker, WriteStorage};
pub use watcher::WalSource;
