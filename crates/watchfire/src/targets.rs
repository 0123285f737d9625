//! The scrape manager's targets, as the web API's target endpoints see them.

use std::collections::BTreeMap;
use std::sync::Arc;

use watchfire_web::api::targets::{ActiveTarget, BoxFuture, DroppedTarget, MetricMetadata, TargetSource};

/// Adapts `watchfire_scrape::Manager` to the web crate's [`TargetSource`].
pub struct ScrapeTargets {
    pub scrape: Arc<watchfire_scrape::Manager>,
}

fn go_duration(d: std::time::Duration) -> String {
    watchfire_model::Duration::from_millis(d.as_millis() as i64).to_string()
}

impl TargetSource for ScrapeTargets {
    fn active(&self) -> BoxFuture<'_, Vec<ActiveTarget>> {
        Box::pin(async move {
            let mut out = vec![];
            for (_, targets) in self.scrape.targets_active().await {
                for t in targets {
                    let last_scrape = t
                        .last_scrape()
                        .and_then(|s| jiff::Timestamp::try_from(s).ok())
                        .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), |ts| ts.to_string());
                    out.push(ActiveTarget {
                        discovered_labels: t.discovered_labels(),
                        labels: t.labels().clone(),
                        scrape_pool: t.scrape_pool().to_owned(),
                        scrape_url: t.url().to_owned(),
                        global_url: t.url().to_owned(),
                        last_error: t.last_error().unwrap_or_default(),
                        last_scrape,
                        last_scrape_duration: t.last_scrape_duration().as_secs_f64(),
                        health: t.health().as_str().to_owned(),
                        scrape_interval: go_duration(t.interval()),
                        scrape_timeout: go_duration(t.timeout()),
                        metadata: t
                            .metadata_list()
                            .into_iter()
                            .map(|m| MetricMetadata {
                                metric: m.metric_family,
                                kind: m.metric_type,
                                help: m.help,
                                unit: m.unit,
                            })
                            .collect(),
                    });
                }
            }
            out
        })
    }

    fn dropped(&self) -> BoxFuture<'_, (Vec<DroppedTarget>, BTreeMap<String, usize>)> {
        Box::pin(async move {
            let mut list = vec![];
            let mut counts = BTreeMap::new();
            for (pool, (labels, total)) in self.scrape.targets_dropped().await {
                counts.insert(pool.clone(), total);
                list.extend(labels.into_iter().map(|l| DroppedTarget {
                    discovered_labels: l,
                    scrape_pool: pool.clone(),
                }));
            }
            (list, counts)
        })
    }

    fn pools(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move { self.scrape.scrape_pools().await })
    }
}

/// The scrape targets' metadata for the remote-write queues. Holds the manager weakly: the
/// manager appends through the queues, which hold this.
#[derive(Debug)]
pub struct ScrapeMetadata {
    pub scrape: std::sync::Weak<watchfire_scrape::Manager>,
}

impl watchfire_remote::MetadataSource for ScrapeMetadata {
    fn metadata(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<watchfire_remote::FamilyMetadata>> + Send + '_>> {
        Box::pin(async move {
            let Some(scrape) = self.scrape.upgrade() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for (_, targets) in scrape.targets_active().await {
                for t in targets {
                    out.extend(t.metadata_list().into_iter().map(|m| watchfire_remote::FamilyMetadata {
                        family: m.metric_family,
                        metric_type: m.metric_type,
                        help: m.help,
                        unit: m.unit,
                    }));
                }
            }
            out
        })
    }
}
