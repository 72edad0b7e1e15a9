//! The requests a broker refused by dropping the connection, remembered between scrapes.

use std::collections::HashMap;
use std::sync::Mutex as StdMutex;

/// A request a broker refused by dropping the connection (a whole API, or DescribeGroups of
/// one group) is not sent again before this many scrapes have passed: its remembered error is
/// reported instead, so a broker that always refuses costs no reconnects, and a fixed broker
/// is noticed within this many scrapes.
pub const REFUSED_RETRY_SCRAPES: u64 = 10;

/// A request a broker may refuse by dropping the connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Refusable {
    /// DescribeGroups of any group (tansu's sqlite engine).
    DescribeGroups { addr: String },
    /// DescribeGroups naming this group.
    DescribeGroup { addr: String, group: String },
    /// DescribeConfigs naming the configuration keys (tansu answers only "all keys").
    ConfigKeys { addr: String },
}

#[derive(Debug, Clone)]
struct Refusal {
    error: String,
    retry_at_scrape: u64,
}

/// The refusals of one cluster's brokers, by request; scrapes are counted by the scraper.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    refused: StdMutex<HashMap<Refusable, Refusal>>,
}

impl Refusals {
    /// The remembered error of a refused request, unless it is due to be tried again.
    pub fn refusal(&self, what: &Refusable, scrape: u64) -> Option<String> {
        let refused = self.refused.lock().expect("refused lock");
        let r = refused.get(what)?;
        (scrape < r.retry_at_scrape).then(|| r.error.clone())
    }

    /// Whether the request was refused before (and not answered since).
    pub fn was_refused(&self, what: &Refusable) -> bool {
        self.refused
            .lock()
            .expect("refused lock")
            .contains_key(what)
    }

    /// Remembers a refusal at `scrape`: not asked again for `REFUSED_RETRY_SCRAPES` scrapes.
    pub fn refuse(&self, what: Refusable, scrape: u64, error: String) {
        self.refused.lock().expect("refused lock").insert(
            what,
            Refusal {
                error,
                retry_at_scrape: scrape + REFUSED_RETRY_SCRAPES,
            },
        );
    }

    /// Forgets a refusal: the broker answered the request.
    pub fn accept(&self, what: &Refusable) {
        self.refused.lock().expect("refused lock").remove(what);
    }
}
