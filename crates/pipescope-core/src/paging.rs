//! Pages of a long list, sorted and filtered on the server: what the topic and group lists of a
//! cluster of 20,000 topics and 10,000 groups answer, so no answer grows with the cluster.
//!
//! A list is filtered by a case-insensitive substring of the name (`q`), sorted by one key
//! (`sort`, `order`; numbers with unknowns last whatever the order, ties by name), then cut to
//! `limit` items from `offset`. `total` is the count after the filter.

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
    /// Whether `name` passes the filter.
    pub fn keeps(&self, name: &str) -> bool {
        self.q
            .as_ref()
            .is_none_or(|q| name.to_lowercase().contains(q.as_str()))
    }

    /// Filters, sorts and cuts `items`; `name` is an item's name, `key` its value for a sort key.
    /// Only the page's items are turned into answers (`build`), so a page of 100 costs the
    /// sort, not 20,000 answers.
    pub fn page<I, T>(
        &self,
        items: impl IntoIterator<Item = I>,
        name: impl Fn(&I) -> &str,
        key: impl Fn(&I, &str) -> SortValue,
        mut build: impl FnMut(I) -> T,
    ) -> Page<T> {
        // Each item's key once, not once per comparison.
        let mut kept: Vec<(SortValue, I)> = items
            .into_iter()
            .filter(|i| self.keeps(name(i)))
            .map(|i| (key(&i, &self.sort), i))
            .collect();
        let total = kept.len();
        kept.sort_by(|(ka, a), (kb, b)| {
            compare(ka, kb, self.order).then_with(|| name(a).cmp(name(b)))
        });
        let items = kept
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .map(|(_, i)| build(i))
            .collect();
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

    fn run(query: PageQuery) -> Result<Page<&'static str>, PageError> {
        let checked = query.check(&["name", "lag"])?;
        Ok(checked.page(
            ITEMS,
            |i| i.0,
            |i, key| match key {
                "lag" => SortValue::Number(i.1),
                _ => SortValue::Text(i.0.to_string()),
            },
            |i| i.0,
        ))
    }

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
