//! Metrics of well-known services on the server (PostgreSQL, nginx, Redis, Docker), each
//! optional: a service that is absent or does not answer is `None` and a debug line.
//!
//! Asking a service costs far more than reading `/proc` (a connection, a process for `psql`),
//! so they are asked every [`PROBE_EVERY`]th collection (30 s at the 5 s heartbeat) and the
//! last answer is sent in between.

pub(crate) mod docker;
pub(crate) mod http;
pub(crate) mod nginx;
pub(crate) mod postgres;
pub(crate) mod redis;

use std::path::Path;
use std::time::Instant;

use outfitter_contract::host_metrics::Services;

use super::processes::Table;

/// Services are asked on the first collection and then every this many.
pub const PROBE_EVERY: u64 = 6;

/// Where a service is asked, or whether.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// At its default place, when the server shows signs of it (its process runs, its socket
    /// exists).
    #[default]
    Auto,
    /// Never.
    Off,
    /// Always at this URL or path.
    At(String),
}

impl Target {
    /// A setting's text: unset is [`Target::Auto`], `""` or `off` is [`Target::Off`],
    /// anything else where to ask.
    pub fn from_setting(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            None | Some("auto") => Target::Auto,
            Some("" | "off") => Target::Off,
            Some(v) => Target::At(v.to_owned()),
        }
    }

    /// Where to ask now: `default` under `Auto` when `detected`.
    fn resolve<'a>(&'a self, default: &'a str, detected: impl FnOnce() -> bool) -> Option<&'a str> {
        match self {
            Target::Off => None,
            Target::At(v) => Some(v),
            Target::Auto => detected().then_some(default),
        }
    }
}

/// Which services are asked (the runner's `metrics_*` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// `metrics_services`: false asks none.
    pub enabled: bool,
    /// `metrics_postgres`: ask a local PostgreSQL through `psql` when there is one.
    pub postgres: bool,
    /// `metrics_nginx_status_url`.
    pub nginx: Target,
    /// `metrics_redis_url`.
    pub redis: Target,
    /// `metrics_docker_socket`.
    pub docker: Target,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            postgres: true,
            nginx: Target::Auto,
            redis: Target::Auto,
            docker: Target::Auto,
        }
    }
}

impl ServiceSettings {
    /// Asks no service.
    pub fn none() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// Asks the services on schedule and keeps the last answer.
#[derive(Debug)]
pub(crate) struct Prober {
    settings: ServiceSettings,
    collections: u64,
    last: Services,
    nginx_prev: Option<(Instant, nginx::Status)>,
}

impl Prober {
    pub(crate) fn new(settings: ServiceSettings) -> Self {
        Self {
            settings,
            collections: 0,
            last: Services::default(),
            nginx_prev: None,
        }
    }

    /// The services for this collection: asked now when due, else the last answer.
    pub(crate) fn services(&mut self, table: &Table) -> Services {
        if !self.settings.enabled {
            return Services::default();
        }
        let due = self.collections.is_multiple_of(PROBE_EVERY);
        self.collections += 1;
        if due {
            self.last = self.probe(table);
        }
        self.last.clone()
    }

    /// Asks every service the settings and `table` (the processes running) point at, now.
    pub(crate) fn probe(&mut self, table: &Table) -> Services {
        let s = &self.settings;
        let postgres = (s.postgres && table.runs("postgres") && postgres::present())
            .then(postgres::probe)
            .flatten();
        let nginx = s
            .nginx
            .resolve(nginx::DEFAULT_STATUS_URL, || table.runs("nginx"))
            .and_then(|url| nginx::probe(url).map(|status| (Instant::now(), status)));
        let nginx = nginx.map(|now| {
            let metrics = nginx::metrics(self.nginx_prev, now);
            self.nginx_prev = Some(now);
            metrics
        });
        let redis = s
            .redis
            .resolve(redis::DEFAULT_URL, || table.runs("redis-server"))
            .and_then(redis::probe);
        let docker = s
            .docker
            .resolve(docker::DEFAULT_SOCKET, || {
                Path::new(docker::DEFAULT_SOCKET).exists()
            })
            .and_then(|socket| docker::probe(Path::new(socket)));
        Services {
            postgres,
            nginx,
            redis,
            docker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_text_chooses_auto_off_or_a_place() {
        assert_eq!(Target::from_setting(None), Target::Auto);
        assert_eq!(Target::from_setting(Some("auto")), Target::Auto);
        assert_eq!(Target::from_setting(Some("off")), Target::Off);
        assert_eq!(Target::from_setting(Some("")), Target::Off);
        assert_eq!(
            Target::from_setting(Some("redis://127.0.0.1:7000/")),
            Target::At("redis://127.0.0.1:7000/".into())
        );
    }

    #[test]
    fn services_are_asked_every_sixth_collection_and_kept_between() {
        let server = outfitter_test_support::RedisServer::start();
        let mut prober = Prober::new(ServiceSettings {
            postgres: false,
            nginx: Target::Off,
            redis: Target::At(server.url()),
            docker: Target::Off,
            ..ServiceSettings::default()
        });
        let table = Table::default();
        let first = prober.services(&table);
        assert!(first.redis.is_some(), "asked on the first collection");
        drop(server);
        for n in 1..PROBE_EVERY {
            assert_eq!(
                prober.services(&table),
                first,
                "collection {n} keeps the answer"
            );
        }
        assert_eq!(
            prober.services(&table).redis,
            None,
            "asked again: the server is gone"
        );
    }

    #[test]
    fn services_off_asks_nothing() {
        let mut prober = Prober::new(ServiceSettings {
            redis: Target::At("redis://127.0.0.1:1/".into()),
            ..ServiceSettings::none()
        });
        assert_eq!(prober.services(&Table::default()), Services::default());
    }
}
