//! The catalog's API listing, built once per catalog scan: every offered app's summary
//! serialized once, the whole listing as one body, and an entity tag. A request then only
//! picks fragments (a page, a search) and joins them, or answers `304 Not Modified`.

use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::app_view;
use crate::catalog_view::Offered;

/// The most apps one page holds.
pub const MAX_PAGE: usize = 100;

/// The listing of one scan.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every offered app in catalog order (by id), with where its summary's JSON lies in
    /// `full`: a page of the unfiltered catalog is then one slice of it, with no search.
    apps: Vec<(String, Range<usize>)>,
    /// App id → its place in `apps`, for the pages of a search.
    places: HashMap<String, usize>,
    categories: String,
    /// `{"apps":[…every offered app…],"categories":[…],"next":null}`: shared by every
    /// answer of the whole listing, never copied.
    full: Bytes,
    /// A strong entity tag of this scan's listing (quoted, as HTTP writes it).
    etag: String,
}

/// One answer: the body and its entity tag.
#[derive(Debug)]
pub struct Answer {
    pub body: Bytes,
    pub etag: String,
}

impl Listing {
    pub fn build(offered: &Offered) -> Self {
        let summaries: Vec<(String, String)> = offered
            .search(None, None)
            .into_iter()
            .map(|bundle| {
                let summary = app_view::summary(bundle, offered.conformance(bundle.id()));
                let json = serde_json::to_string(&summary).expect("summaries serialize");
                (bundle.id().to_owned(), json)
            })
            .collect();
        let categories =
            serde_json::to_string(&offered.categories()).expect("categories serialize");
        let jsons: Vec<&[u8]> = summaries.iter().map(|(_, j)| j.as_bytes()).collect();
        let full = Bytes::from(body(&jsons, &categories, None));
        let mut at = PREFIX.len();
        let apps: Vec<(String, Range<usize>)> = summaries
            .into_iter()
            .map(|(id, json)| {
                let span = at..at + json.len();
                at = span.end + 1;
                (id, span)
            })
            .collect();
        let places = apps
            .iter()
            .enumerate()
            .map(|(place, (id, _))| (id.clone(), place))
            .collect();
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&full))[..32]);
        Listing {
            apps,
            places,
            categories,
            full,
            etag,
        }
    }

    /// The whole listing, as built.
    pub fn full(&self) -> Answer {
        Answer {
            body: self.full.clone(),
            etag: self.etag.clone(),
        }
    }

    /// Every offered app after the app `after`, at most `limit`: the summaries follow each
    /// other in `full`, so they are copied as one run.
    pub fn page_all(&self, after: Option<&str>, limit: usize, query_key: &str) -> Answer {
        let (chosen, next) = window(&self.apps, |(id, _)| id.as_str(), after, limit);
        let run = match (chosen.first(), chosen.last()) {
            (Some((_, first)), Some((_, last))) => &self.full[first.start..last.end],
            _ => &[],
        };
        self.answer(&[run], next, query_key)
    }

    /// The apps `ids` (a search result, in catalog order) after the app `after`, at most
    /// `limit`; `next` names the last one when more follow.
    pub fn page(&self, ids: &[&str], after: Option<&str>, limit: usize, query_key: &str) -> Answer {
        let (chosen, next) = window(ids, |id| *id, after, limit);
        let parts: Vec<&[u8]> = chosen
            .iter()
            .filter_map(|id| self.places.get(*id))
            .map(|&place| &self.full[self.apps[place].1.clone()])
            .collect();
        self.answer(&parts, next, query_key)
    }

    fn answer(&self, parts: &[&[u8]], next: Option<&str>, query_key: &str) -> Answer {
        let etag = format!(
            "\"{}-{}\"",
            self.etag.trim_matches('"'),
            &hex::encode(Sha256::digest(query_key.as_bytes()))[..16]
        );
        Answer {
            body: Bytes::from(body(parts, &self.categories, next)),
            etag,
        }
    }
}

/// The items of `items` (sorted by id) after the one with id `after`, at most `limit`
/// (clamped to `1..=MAX_PAGE`), and the id to pass as `after` for the next page, if any.
fn window<'a, T>(
    items: &'a [T],
    id: impl for<'b> Fn(&'b T) -> &'b str,
    after: Option<&str>,
    limit: usize,
) -> (&'a [T], Option<&'a str>) {
    let start = after
        .map(|a| items.partition_point(|item| id(item) <= a))
        .unwrap_or(0);
    let limit = limit.clamp(1, MAX_PAGE);
    let chosen = &items[start.min(items.len())..(start + limit).min(items.len())];
    let next = (start + limit < items.len())
        .then(|| chosen.last().map(id))
        .flatten();
    (chosen, next)
}

/// What every listing's body starts with; the first summary follows it.
const PREFIX: &str = "{\"apps\":[";

fn body(apps: &[&[u8]], categories: &str, next: Option<&str>) -> Vec<u8> {
    let next = serde_json::to_string(&next).expect("strings serialize");
    let mut out = Vec::with_capacity(apps.iter().map(|a| a.len() + 1).sum::<usize>() + 64);
    out.extend_from_slice(PREFIX.as_bytes());
    for (i, app) in apps.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(app);
    }
    out.extend_from_slice(b"],\"categories\":");
    out.extend_from_slice(categories.as_bytes());
    out.extend_from_slice(b",\"next\":");
    out.extend_from_slice(next.as_bytes());
    out.push(b'}');
    out
}
