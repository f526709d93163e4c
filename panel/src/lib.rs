//! The Outfitter panel: catalog, generated forms, signed jobs, live progress and the JSON API.

pub mod lint;
