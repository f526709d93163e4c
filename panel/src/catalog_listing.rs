//! The catalog's API listing, built once per catalog scan: every offered app's summary
//! serialized once, the whole listing as one body, and an entity tag. A request then only
//! picks fragments (a page, a search) and joins them, or answers `304 Not Modified`.

use std::collections::HashMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::app_view;
use crate::catalog_view::Offered;

/// The most apps one page holds.
pub const MAX_PAGE: usize = 100;

/// The listing of one scan.
#[derive(Debug, Default)]
pub struct Listing {
    /// App id → its summary's JSON.
    fragments: HashMap<String, String>,
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
        let mut fragments = HashMap::new();
        let mut all = Vec::new();
        for bundle in offered.search(None, None) {
            let json =
                serde_json::to_string(&app_view::summary(bundle, offered.conformance(bundle.id())))
                    .expect("summaries serialize");
            all.push(json.clone());
            fragments.insert(bundle.id().to_owned(), json);
        }
        let categories =
            serde_json::to_string(&offered.categories()).expect("categories serialize");
        let full = Bytes::from(body(&all, &categories, None));
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&full))[..32]);
        Listing {
            fragments,
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

    /// The apps `ids` (a search result, in catalog order) after the app `after`, at most
    /// `limit`; `next` names the last one when more follow.
    pub fn page(&self, ids: &[&str], after: Option<&str>, limit: usize, query_key: &str) -> Answer {
        let start = after
            .map(|a| ids.partition_point(|id| *id <= a))
            .unwrap_or(0);
        let limit = limit.clamp(1, MAX_PAGE);
        let chosen = &ids[start.min(ids.len())..(start + limit).min(ids.len())];
        let next = (start + limit < ids.len())
            .then(|| chosen.last().map(|id| (*id).to_owned()))
            .flatten();
        let parts: Vec<String> = chosen
            .iter()
            .filter_map(|id| self.fragments.get(*id).cloned())
            .collect();
        let etag = format!(
            "\"{}-{}\"",
            self.etag.trim_matches('"'),
            &hex::encode(Sha256::digest(query_key.as_bytes()))[..16]
        );
        Answer {
            body: Bytes::from(body(&parts, &self.categories, next.as_deref())),
            etag,
        }
    }
}

fn body(apps: &[String], categories: &str, next: Option<&str>) -> String {
    let next = serde_json::to_string(&next).expect("strings serialize");
    let mut out = String::with_capacity(apps.iter().map(String::len).sum::<usize>() + 64);
    out.push_str("{\"apps\":[");
    out.push_str(&apps.join(","));
    out.push_str("],\"categories\":");
    out.push_str(categories);
    out.push_str(",\"next\":");
    out.push_str(&next);
    out.push('}');
    out
}
