//! Pages of a long list, sorted and filtered on the server: what the topic and group lists of a
//! cluster of 20,000 topics and 10,000 groups answer, so no answer grows with the cluster.
//!
//! A list is filtered by a case-insensitive substring of the name (`q`), sorted by one key
//! (`sort`, `order`; numbers with unknowns last whatever the order, ties by name), then cut to
//! `limit` items from `offset`. `total` is the count after the filter. A list's order by each
//! key is computed once ([`sorted_positions`]) and every page request walks it
//! ([`Checked::page_of`]): a scrape's lists do not change until the next scrape.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// Items a page holds unless the request says otherwise.
pub const DEFAULT_LIMIT: usize = 1_000;
/// The most items one page may hold.
pub const MAX_LIMIT: usize = 10_000;
/// The longest name filter taken.
pub const MAX_QUERY_CHARS: usize = 256;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// What a client asks of a list (query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PageQuery {
    pub offset: Option<usize>,
    pub limit: Option<usize>,
    pub sort: Option<String>,
    pub order: Option<Order>,
    /// Keep items whose name contains this, ignoring case.
    pub q: Option<String>,
}

/// A value to sort by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Text(String),
    /// `None` (unknown) sorts last in either order.
    Number(Option<f64>),
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// Items after the filter, all pages together.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub sort: String,
    pub order: Order,
    pub items: Vec<T>,
}

/// Why a list request was refused; each says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("limit={0}: it must be 1 to {MAX_LIMIT}")]
    Limit(usize),
    #[error("sort={given:?}: sort by one of {known}")]
    Sort { given: String, known: String },
    #[error("q is longer than {MAX_QUERY_CHARS} characters")]
    Query,
}

/// The request checked: the sort key is one of `keys` (the first when none is given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub offset: usize,
    pub limit: usize,
    pub sort: String,
    pub order: Order,
    q: Option<String>,
}

impl PageQuery {
    pub fn check(&self, keys: &[&str]) -> Result<Checked, PageError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError::Limit(limit));
        }
        let sort = match &self.sort {
            None => keys[0].to_string(),
            Some(s) if keys.contains(&s.as_str()) => s.clone(),
            Some(s) => {
                return Err(PageError::Sort {
                    given: s.clone(),
                    known: keys.join(", "),
                });
            }
        };
        let q = match &self.q {
            Some(q) if q.chars().count() > MAX_QUERY_CHARS => return Err(PageError::Query),
            Some(q) if !q.is_empty() => Some(q.to_lowercase()),
            _ => None,
        };
        Ok(Checked {
            offset: self.offset.unwrap_or(0),
            limit,
            sort,
            order: self.order.unwrap_or_default(),
            q,
        })
    }
}

impl Checked {
    /// Whether a name already in lower case passes the filter (no allocation per item).
    pub fn keeps_lowercase(&self, lowercase_name: &str) -> bool {
        self.q
            .as_ref()
            .is_none_or(|q| lowercase_name.contains(q.as_str()))
    }

    /// The page of a list whose order is already known: `sorted` holds the items' positions in
    /// the requested sort and order (see [`sorted_positions`]), `keep` says whether an item
    /// passes the filters (with [`Checked::keeps_lowercase`] for the name). Returns `total`
    /// (items kept) and the positions of the page's items. No sort and no allocation per item:
    /// what a list request costs once its orders are computed per scrape.
    pub fn page_of(&self, sorted: &[u32], keep: impl Fn(usize) -> bool) -> (usize, Vec<usize>) {
        let mut total = 0;
        let mut items = Vec::with_capacity(self.limit.min(sorted.len()));
        for &position in sorted {
            let position = position as usize;
            if !keep(position) {
                continue;
            }
            if total >= self.offset && items.len() < self.limit {
                items.push(position);
            }
            total += 1;
        }
        (total, items)
    }

    /// [`Page`] of already built items, as [`Checked::page_of`] counted them.
    pub fn page_with<T>(&self, total: usize, items: Vec<T>) -> Page<T> {
        Page {
            total,
            offset: self.offset,
            limit: self.limit,
            sort: self.sort.clone(),
            order: self.order,
            items,
        }
    }
}

/// Positions `0..count` in the order a page with `order` shows them: by `key` (unknowns last
/// whatever the order), ties by `name`. Computed once per list and sort, then read by every
/// page request with [`Checked::page_of`].
pub fn sorted_positions<'a>(
    count: usize,
    name: impl Fn(usize) -> &'a str,
    key: impl Fn(usize) -> SortValue,
    order: Order,
) -> Vec<u32> {
    let keys: Vec<SortValue> = (0..count).map(&key).collect();
    let mut positions: Vec<u32> = (0..count as u32).collect();
    positions.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        compare(&keys[a], &keys[b], order).then_with(|| name(a).cmp(name(b)))
    });
    positions
}

fn compare(a: &SortValue, b: &SortValue, order: Order) -> Ordering {
    let directed = |o: Ordering| match order {
        Order::Asc => o,
        Order::Desc => o.reverse(),
    };
    match (a, b) {
        (SortValue::Text(a), SortValue::Text(b)) => directed(a.cmp(b)),
        (SortValue::Number(Some(a)), SortValue::Number(Some(b))) => directed(a.total_cmp(b)),
        // Unknowns last, whatever the order.
        (SortValue::Number(None), SortValue::Number(Some(_))) => Ordering::Greater,
        (SortValue::Number(Some(_)), SortValue::Number(None)) => Ordering::Less,
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEMS: [(&str, Option<f64>); 5] = [
        ("orders", Some(5.0)),
        ("Payments", None),
        ("audit", Some(50.0)),
        ("orders-dlq", Some(5.0)),
        ("clicks", Some(0.0)),
    ];

    #[test]
    fn pages_are_sorted_with_unknowns_last_and_ties_by_name() {
        let by_lag = run(PageQuery {
            sort: Some("lag".into()),
            order: Some(Order::Desc),
            ..PageQuery::default()
        })
        .unwrap();
        assert_eq!(
            by_lag.items,
            ["audit", "orders", "orders-dlq", "clicks", "Payments"]
        );
        let ascending = run(PageQuery {
            sort: Some("lag".into()),
            ..PageQuery::default()
        })
        .unwrap();
        assert_eq!(
            ascending.items,
            ["clicks", "orders", "orders-dlq", "audit", "Payments"]
        );
        let by_name = run(PageQuery::default()).unwrap();
        assert_eq!(by_name.items[0], "Payments"); // byte order: capitals first
        assert_eq!((by_name.total, by_name.limit), (5, DEFAULT_LIMIT));
    }

    #[test]
    fn the_filter_ignores_case_and_the_page_cuts_after_it() {
        let page = run(PageQuery {
            q: Some("ORD".into()),
            offset: Some(1),
            limit: Some(1),
            ..PageQuery::default()
        })
        .unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.items, ["orders-dlq"]);
        let past_the_end = run(PageQuery {
            offset: Some(10),
            ..PageQuery::default()
        })
        .unwrap();
        assert_eq!((past_the_end.total, past_the_end.items.len()), (5, 0));
    }

    /// A page of ITEMS, sorted once by the requested key, then cut.
    fn run(query: PageQuery) -> Result<Page<&'static str>, PageError> {
        let checked = query.check(&["name", "lag"])?;
        let sorted = sorted_positions(
            ITEMS.len(),
            |i| ITEMS[i].0,
            |i| match checked.sort.as_str() {
                "lag" => SortValue::Number(ITEMS[i].1),
                _ => SortValue::Text(ITEMS[i].0.to_string()),
            },
            checked.order,
        );
        let lowercase: Vec<String> = ITEMS.iter().map(|i| i.0.to_lowercase()).collect();
        let (total, positions) =
            checked.page_of(&sorted, |i| checked.keeps_lowercase(&lowercase[i]));
        Ok(checked.page_with(total, positions.into_iter().map(|i| ITEMS[i].0).collect()))
    }

    #[test]
    fn bad_requests_say_what_to_send() {
        assert_eq!(
            run(PageQuery {
                limit: Some(0),
                ..PageQuery::default()
            }),
            Err(PageError::Limit(0))
        );
        assert_eq!(
            run(PageQuery {
                limit: Some(MAX_LIMIT + 1),
                ..PageQuery::default()
            }),
            Err(PageError::Limit(MAX_LIMIT + 1))
        );
        let Err(e) = run(PageQuery {
            sort: Some("size".into()),
            ..PageQuery::default()
        }) else {
            panic!("an unknown sort key was taken");
        };
        assert_eq!(e.to_string(), "sort=\"size\": sort by one of name, lag");
        assert_eq!(
            run(PageQuery {
                q: Some("x".repeat(MAX_QUERY_CHARS + 1)),
                ..PageQuery::default()
            }),
            Err(PageError::Query)
        );
    }
}
