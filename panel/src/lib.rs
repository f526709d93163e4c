//! The Outfitter panel: catalog, generated forms, signed jobs, live progress and the JSON API.

pub mod agents;
pub mod app_view;
pub mod audit;
pub mod auth;
pub mod catalog_listing;
pub mod catalog_view;
pub mod cli;
pub mod clock;
pub mod conformance_view;
pub mod dashboard;
pub mod error;
pub mod http;
pub mod installations;
pub mod jobs;
pub mod lint;
pub mod live;
pub mod metrics;
pub mod record;
pub mod retention;
pub mod rollouts;
pub mod schedules;
pub mod scripts;
pub mod settings;
pub mod sse;
pub mod state;
pub mod templates;
pub mod web;
pub mod webhooks;
pub mod whole_number;

pub use http::build_app;
pub use settings::Settings;
pub use state::AppState;
