//! `static_configs`: target groups written in the config file.

use watchfire_config::prometheus::StaticConfig;
use watchfire_model::Labels;

use crate::{BoxFuture, GroupSender, Provider, TargetGroup};

/// The static groups of one job; group `i` has source `i`, as upstream.
#[derive(Clone, Debug)]
pub struct StaticProvider {
    groups: Vec<TargetGroup>,
}

impl StaticProvider {
    /// The groups of `configs`.
    pub fn new(configs: &[StaticConfig]) -> Self {
        let groups = configs
            .iter()
            .enumerate()
            .map(|(i, c)| TargetGroup::new(i.to_string(), &c.targets, Labels::from_pairs(&c.labels)))
            .collect();
        StaticProvider { groups }
    }

    /// The groups this provider sends.
    pub fn groups(&self) -> &[TargetGroup] {
        &self.groups
    }
}

impl Provider for StaticProvider {
    fn run(self: Box<Self>, tx: GroupSender) -> BoxFuture<()> {
        Box::pin(async move {
            if tx.send(self.groups).await.is_ok() {
                tx.closed().await;
            }
        })
    }
}
