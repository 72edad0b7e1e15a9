//! The topic tree: per topic and per subtree, messages, bytes, counts over the last 1, 5 and 15
//! minutes, first and last seen, retained flag, QoS mix and a preview of the last payload, in
//! bounded memory.
//!
//! # Cost
//! A message on a topic already tracked costs one hash lookup of the whole topic string and a
//! few counter updates on that topic alone; nothing is allocated. Subtree figures are computed
//! when asked for, by summing topics up the tree, so they are exact sums of their leaves.
//!
//! # Bounds
//! - At most `max_topics` topics are tracked (and at most `4 × max_topics` tree nodes, and
//!   `512 × max_topics` bytes of names). A topic that would go past a bound is *folded*: counted
//!   in the `(other)` child of its deepest ancestor already in the tree. Folded messages are
//!   counted, and every figure of a subtree still includes them.
//! - A topic longer than [`MAX_TOPIC_BYTES`] is tracked under its first bytes (cut on a character
//!   boundary), its last level marked with `…`: such topics that share those first bytes share
//!   one entry.
//! - The tree is at most [`MAX_DEPTH`] levels deep: the levels past the 31st stay together, with
//!   their `/`, as the name of the 32nd.
//! - The payload preview keeps [`PREVIEW_BYTES`](super::preview::PREVIEW_BYTES) bytes.

use std::collections::HashMap;

use serde::Serialize;

use super::preview::{Preview, PreviewBuf};
use super::rate::{self, RateCounter};
use crate::clock::EpochMillis;
use crate::windows::WindowCounts;

/// Topics tracked by default.
pub const DEFAULT_MAX_TOPICS: usize = 100_000;
/// Levels of the tree at most.
pub const MAX_DEPTH: usize = 32;
/// Bytes of a topic name kept at most.
pub const MAX_TOPIC_BYTES: usize = 1024;
/// Name of the child that holds the folded topics of a node.
pub const OTHER: &str = "(other)";
/// Name of the node that sums the children a view leaves out (its `children_count` says how many).
pub const MORE: &str = "(more)";
/// Appended to the last level of a topic cut at [`MAX_TOPIC_BYTES`].
pub const CUT_MARK: &str = "…";

const NODES_PER_TOPIC: usize = 4;
const NAME_BYTES_PER_TOPIC: usize = 512;
const ROOT: u32 = 0;

/// How a view is drawn.
struct Shape<'a> {
    limit: usize,
    value: ValueOf,
    figures: &'a [Figures],
    /// What a sum starts from.
    empty: Figures,
}

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Node {
    name: Box<str>,
    parent: u32,
    children: Children,
    /// Index into `TopicTree::stats` when messages are counted on this node itself.
    stats: Option<u32>,
}

/// Children of a node: a short list while there are few (most nodes), a hash map past that.
#[derive(Debug, Default)]
enum Children {
    #[default]
    None,
    List(Vec<u32>),
    Map(Map<Box<str>, u32>),
}

/// Children kept in a list, searched by name, at most.
const LIST_CHILDREN: usize = 8;

impl Children {
    fn len(&self) -> usize {
        match self {
            Children::None => 0,
            Children::List(ids) => ids.len(),
            Children::Map(map) => map.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone)]
struct Stats {
    node: u32,
    messages: u64,
    bytes: u64,
    first_seen: EpochMillis,
    last_seen: EpochMillis,
    retained: bool,
    retained_messages: u64,
    qos: [u64; 3],
    rates: RateCounter,
    /// The subscription `rates` counts in (see [`TopicTree::start_counting`]).
    rates_subscription: u32,
    preview: PreviewBuf,
}

impl Stats {
    fn new(node: u32, now: EpochMillis, subscription: u32) -> Self {
        Self {
            node,
            messages: 0,
            bytes: 0,
            first_seen: now,
            last_seen: now,
            retained: false,
            retained_messages: 0,
            qos: [0; 3],
            rates: RateCounter::new(),
            rates_subscription: subscription,
            preview: PreviewBuf::default(),
        }
    }
}

/// One message as the tree needs it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    /// 0, 1 or 2 (anything above counts as 2).
    pub qos: u8,
    pub retain: bool,
}

/// What a figure of the sunburst (`value`) is. `rate_1m`, `rate_5m` and `rate_15m` are the
/// count over that window: every node's count covers the same span, so counts compare as
/// per-minute figures do, and they exist before the window is covered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueOf {
    #[default]
    Messages,
    Bytes,
    #[serde(rename = "rate_1m")]
    Rate1m,
    #[serde(rename = "rate_5m")]
    Rate5m,
    #[serde(rename = "rate_15m")]
    Rate15m,
}

/// Figures of a topic or of a subtree (all its topics, the node's own included).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub messages: u64,
    pub bytes: u64,
    /// Topics counted here; an `(other)` entry counts as one.
    pub topics: u64,
    /// Messages counted over the last 1, 5 and 15 minutes, with the part of each window the
    /// watcher was counting, and a per-minute figure once it covers the whole window.
    pub rates: WindowCounts,
    pub first_seen_ms: Option<EpochMillis>,
    pub last_seen_ms: Option<EpochMillis>,
    pub seconds_since_last: Option<f64>,
    pub retained_messages: u64,
    /// Messages received with QoS 0, 1 and 2.
    pub qos: [u64; 3],
}

/// Since when, and in which subscription, the tree's rates are counted.
#[derive(Debug, Clone, Copy, Default)]
struct Counting {
    since: Option<EpochMillis>,
    subscription: u32,
}

impl Counting {
    /// Counts of `counter` (`None`: none in this subscription) over every window at `now`.
    fn rates(self, counter: Option<&RateCounter>, now: EpochMillis) -> WindowCounts {
        WindowCounts::from_fn(|w| rate::window_count(counter, w, now, self.since))
    }
}

impl Figures {
    /// A subtree's figures before its topics are added: zero counts over the covered span.
    fn empty(rates: WindowCounts) -> Self {
        Self {
            rates,
            ..Self::default()
        }
    }

    fn of(stats: &Stats, now: EpochMillis, counting: Counting) -> Self {
        let counter = (stats.rates_subscription == counting.subscription).then_some(&stats.rates);
        Self {
            messages: stats.messages,
            bytes: stats.bytes,
            topics: 1,
            rates: counting.rates(counter, now),
            first_seen_ms: Some(stats.first_seen),
            last_seen_ms: Some(stats.last_seen),
            seconds_since_last: Some(now.saturating_sub(stats.last_seen) as f64 / 1000.0),
            retained_messages: stats.retained_messages,
            qos: stats.qos,
        }
    }

    fn add(&mut self, other: &Figures) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.topics += other.topics;
        self.rates = self.rates.plus(&other.rates);
        self.first_seen_ms = match (self.first_seen_ms, other.first_seen_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (self.last_seen_ms, other.last_seen_ms) {
            (Some(a), Some(b)) if a >= b => {}
            (_, Some(_)) => {
                self.last_seen_ms = other.last_seen_ms;
                self.seconds_since_last = other.seconds_since_last;
            }
            _ => {}
        }
        self.retained_messages += other.retained_messages;
        for (a, b) in self.qos.iter_mut().zip(other.qos) {
            *a += b;
        }
    }

    pub fn value(&self, of: ValueOf) -> f64 {
        match of {
            ValueOf::Messages => self.messages as f64,
            ValueOf::Bytes => self.bytes as f64,
            ValueOf::Rate1m => self.rates.one_minute.count,
            ValueOf::Rate5m => self.rates.five_minutes.count,
            ValueOf::Rate15m => self.rates.fifteen_minutes.count,
        }
    }
}

/// A node of the tree as a sunburst draws it: `name`, `value`, `children`, with its figures.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    pub name: String,
    /// The whole topic of this node (`""` for the root).
    pub topic: String,
    pub value: f64,
    #[serde(flatten)]
    pub figures: Figures,
    /// Whether messages were published on this node's topic itself (not only below it).
    pub is_topic: bool,
    /// Retain flag of the last message on this topic itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained: Option<bool>,
    /// The last payload on this topic itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
    /// Whether this is an `(other)` node of folded topics.
    pub folded: bool,
    /// Children, when the requested depth reaches them. `children_count` says how many there are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub children: Vec<NodeView>,
    pub children_count: usize,
}

/// Size and bounds of a tree.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeSummary {
    /// Topics tracked on their own.
    pub topics: usize,
    pub max_topics: usize,
    pub nodes: usize,
    /// `(other)` nodes holding folded topics.
    pub other_nodes: usize,
    /// Messages on topics that were past a bound, counted in an `(other)` node.
    pub folded_messages: u64,
    /// Messages whose topic was longer than [`MAX_TOPIC_BYTES`].
    pub cut_topic_messages: u64,
    pub messages: u64,
    /// When the current subscription began: the start of what the rates' windows cover
    /// (`null` before the first).
    pub counting_since_ms: Option<EpochMillis>,
}

/// Topic statistics of one broker.
#[derive(Debug)]
pub struct TopicTree {
    nodes: Vec<Node>,
    stats: Vec<Stats>,
    index: Map<Box<str>, u32>,
    max_topics: usize,
    topics: usize,
    name_bytes: usize,
    other_nodes: usize,
    folded_messages: u64,
    cut_topic_messages: u64,
    messages: u64,
    counting: Counting,
}

impl Default for TopicTree {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_TOPICS)
    }
}

/// The topic as tracked: cut to [`MAX_TOPIC_BYTES`] on a character boundary.
fn tracked_key(topic: &str) -> (&str, bool) {
    if topic.len() <= MAX_TOPIC_BYTES {
        return (topic, false);
    }
    let mut cut = MAX_TOPIC_BYTES;
    while !topic.is_char_boundary(cut) {
        cut -= 1;
    }
    (&topic[..cut], true)
}

/// Levels of a tracked topic, the last one holding whatever is past [`MAX_DEPTH`].
fn levels(key: &str) -> impl Iterator<Item = &str> {
    key.splitn(MAX_DEPTH, '/')
}

impl TopicTree {
    pub fn new(max_topics: usize) -> Self {
        let root = Node {
            name: "".into(),
            parent: ROOT,
            children: Children::None,
            stats: None,
        };
        Self {
            nodes: vec![root],
            stats: Vec::new(),
            index: Map::default(),
            max_topics: max_topics.max(1),
            topics: 0,
            name_bytes: 0,
            other_nodes: 0,
            folded_messages: 0,
            cut_topic_messages: 0,
            messages: 0,
            counting: Counting::default(),
        }
    }

    /// A new subscription began at `now`: rates count from here. What the topics counted before
    /// is dropped (lazily, at each topic's next message or reading), since messages published
    /// while not subscribed were not seen.
    pub fn start_counting(&mut self, now: EpochMillis) {
        self.counting = Counting {
            since: Some(now),
            subscription: self.counting.subscription.wrapping_add(1),
        };
    }

    /// Counts one message received at `now`.
    #[inline]
    pub fn record(&mut self, message: Message<'_>, now: EpochMillis) {
        let (key, cut) = tracked_key(message.topic);
        let index = match self.index.get(key) {
            Some(&i) => i,
            None => self.new_topic(key, cut, now),
        };
        self.messages += 1;
        if cut {
            self.cut_topic_messages += 1;
        }
        let stats = &mut self.stats[index as usize];
        stats.messages += 1;
        stats.bytes += message.payload.len() as u64;
        stats.last_seen = stats.last_seen.max(now);
        stats.first_seen = stats.first_seen.min(now);
        stats.retained = message.retain;
        stats.retained_messages += u64::from(message.retain);
        stats.qos[usize::from(message.qos.min(2))] += 1;
        if stats.rates_subscription != self.counting.subscription {
            stats.rates.clear();
            stats.rates_subscription = self.counting.subscription;
        }
        stats.rates.record(now);
        stats.preview.set(message.payload);
    }

    /// The stats entry of a topic not in the index: its own when within bounds, else the
    /// `(other)` entry of its deepest ancestor already in the tree.
    #[cold]
    fn new_topic(&mut self, key: &str, cut: bool, now: EpochMillis) -> u32 {
        // Walk down as far as the tree already goes.
        let mut node = ROOT;
        let mut depth = 0;
        let mut existing_ancestor = ROOT;
        let count = levels(key).count();
        let mut new_name_bytes = key.len();
        for (i, level) in levels(key).enumerate() {
            let name_len = level.len() + if cut && i + 1 == count { 3 } else { 0 };
            match self.child(node, level, cut && i + 1 == count) {
                Some(child) => {
                    node = child;
                    depth = i + 1;
                    if i + 1 < count {
                        existing_ancestor = child;
                    }
                }
                None => {
                    new_name_bytes += name_len;
                    for rest in levels(key).skip(i + 1) {
                        new_name_bytes += rest.len();
                    }
                    break;
                }
            }
        }
        let new_nodes = count - depth;
        let within_bounds = self.topics < self.max_topics
            && self.nodes.len() + new_nodes <= self.max_topics * NODES_PER_TOPIC
            && self.name_bytes + new_name_bytes <= self.max_topics * NAME_BYTES_PER_TOPIC;
        if within_bounds {
            let mut node = ROOT;
            for (i, level) in levels(key).enumerate() {
                let last = i + 1 == count;
                node = match self.child(node, level, cut && last) {
                    Some(child) => child,
                    None => {
                        let name: Box<str> = if cut && last {
                            format!("{level}{CUT_MARK}").into()
                        } else {
                            level.into()
                        };
                        self.add_node(node, name)
                    }
                };
            }
            let stats = self.add_stats(node, now);
            self.index.insert(key.into(), stats);
            self.topics += 1;
            self.name_bytes += new_name_bytes;
            stats
        } else {
            self.folded_messages += 1;
            let other = match self.named_child(existing_ancestor, OTHER) {
                Some(other) => other,
                None => {
                    self.other_nodes += 1;
                    self.add_node(existing_ancestor, OTHER.into())
                }
            };
            match self.nodes[other as usize].stats {
                Some(stats) => stats,
                None => self.add_stats(other, now),
            }
        }
    }

    fn child(&self, node: u32, level: &str, cut: bool) -> Option<u32> {
        if cut {
            self.named_child(node, &format!("{level}{CUT_MARK}"))
        } else {
            self.named_child(node, level)
        }
    }

    fn named_child(&self, node: u32, name: &str) -> Option<u32> {
        match &self.nodes[node as usize].children {
            Children::None => None,
            Children::List(ids) => ids
                .iter()
                .copied()
                .find(|&c| &*self.nodes[c as usize].name == name),
            Children::Map(map) => map.get(name).copied(),
        }
    }

    /// Children of a node with their names, in no particular order.
    fn children_of(&self, node: u32) -> Vec<(&str, u32)> {
        match &self.nodes[node as usize].children {
            Children::None => Vec::new(),
            Children::List(ids) => ids
                .iter()
                .map(|&c| (&*self.nodes[c as usize].name, c))
                .collect(),
            Children::Map(map) => map.iter().map(|(n, &c)| (&**n, c)).collect(),
        }
    }

    fn add_node(&mut self, parent: u32, name: Box<str>) -> u32 {
        let id = self.nodes.len() as u32;
        let children = std::mem::take(&mut self.nodes[parent as usize].children);
        self.nodes[parent as usize].children = match children {
            Children::None => Children::List(vec![id]),
            Children::List(mut ids) if ids.len() < LIST_CHILDREN => {
                ids.push(id);
                Children::List(ids)
            }
            Children::List(ids) => {
                let mut map: Map<Box<str>, u32> = ids
                    .into_iter()
                    .map(|c| (self.nodes[c as usize].name.clone(), c))
                    .collect();
                map.insert(name.clone(), id);
                Children::Map(map)
            }
            Children::Map(mut map) => {
                map.insert(name.clone(), id);
                Children::Map(map)
            }
        };
        self.nodes.push(Node {
            name,
            parent,
            children: Children::None,
            stats: None,
        });
        id
    }

    fn add_stats(&mut self, node: u32, now: EpochMillis) -> u32 {
        let id = self.stats.len() as u32;
        self.stats
            .push(Stats::new(node, now, self.counting.subscription));
        self.nodes[node as usize].stats = Some(id);
        id
    }

    pub fn summary(&self) -> TreeSummary {
        TreeSummary {
            topics: self.topics,
            max_topics: self.max_topics,
            nodes: self.nodes.len(),
            other_nodes: self.other_nodes,
            folded_messages: self.folded_messages,
            cut_topic_messages: self.cut_topic_messages,
            messages: self.messages,
            counting_since_ms: self.counting.since,
        }
    }

    /// The node of `topic` (`""` is the root), as the tree names it.
    fn find(&self, topic: &str) -> Option<u32> {
        if topic.is_empty() {
            return Some(ROOT);
        }
        let mut node = ROOT;
        for level in levels(topic) {
            node = self.named_child(node, level)?;
        }
        Some(node)
    }

    fn topic_of(&self, mut node: u32) -> String {
        let mut names = Vec::new();
        while node != ROOT {
            names.push(&*self.nodes[node as usize].name);
            node = self.nodes[node as usize].parent;
        }
        names.reverse();
        names.join("/")
    }

    /// Figures of every node, each the sum of its own topic and its children's.
    fn all_figures(&self, now: EpochMillis) -> Vec<Figures> {
        let mut figures = vec![self.empty_figures(now); self.nodes.len()];
        for stats in &self.stats {
            figures[stats.node as usize] = Figures::of(stats, now, self.counting);
        }
        // A child is always created after its parent: summing from the last node up is bottom-up.
        for id in (1..self.nodes.len()).rev() {
            let (head, tail) = figures.split_at_mut(id);
            head[self.nodes[id].parent as usize].add(&tail[0]);
        }
        figures
    }

    /// Figures of no topic at all: zero counts over the span the tree is counting.
    fn empty_figures(&self, now: EpochMillis) -> Figures {
        Figures::empty(self.counting.rates(None, now))
    }

    /// Figures of one topic or subtree; `None` when the tree has no such node.
    pub fn figures(&self, topic: &str, now: EpochMillis) -> Option<Figures> {
        let node = self.find(topic)?;
        Some(self.all_figures(now).swap_remove(node as usize))
    }

    /// The subtree at `root` (`""` for the whole tree), `depth` levels of children below it.
    /// A node with more than `limit` children shows the `limit` largest by `value`, then one
    /// [`MORE`] node holding the sum of the others (so sums stay exact).
    pub fn view(
        &self,
        root: &str,
        depth: usize,
        limit: usize,
        value: ValueOf,
        now: EpochMillis,
    ) -> Option<NodeView> {
        let node = self.find(root)?;
        let figures = self.all_figures(now);
        let shape = Shape {
            limit: limit.max(1),
            value,
            figures: &figures,
            empty: self.empty_figures(now),
        };
        Some(self.build(node, self.topic_of(node), depth, &shape))
    }

    fn build(&self, id: u32, topic: String, depth: usize, shape: &Shape<'_>) -> NodeView {
        let node = &self.nodes[id as usize];
        let own = node.stats.map(|s| &self.stats[s as usize]);
        let child_topic = |name: &str| {
            if id == ROOT {
                name.to_string()
            } else {
                format!("{topic}/{name}")
            }
        };
        let mut children = Vec::new();
        if depth > 0 {
            let mut ids = self.children_of(id);
            ids.sort_unstable();
            let mut rest = shape.empty.clone();
            let mut hidden = 0;
            if ids.len() > shape.limit {
                let of = |c: u32| shape.figures[c as usize].value(shape.value);
                ids.sort_by(|a, b| of(b.1).total_cmp(&of(a.1)).then(a.0.cmp(b.0)));
                for &(_, c) in &ids[shape.limit..] {
                    rest.add(&shape.figures[c as usize]);
                    hidden += 1;
                }
                ids.truncate(shape.limit);
            }
            for (name, child) in ids {
                children.push(self.build(child, child_topic(name), depth - 1, shape));
            }
            if hidden > 0 {
                children.push(NodeView {
                    name: MORE.to_string(),
                    topic: child_topic(MORE),
                    value: rest.value(shape.value),
                    figures: rest,
                    is_topic: false,
                    retained: None,
                    preview: None,
                    folded: false,
                    children: Vec::new(),
                    children_count: hidden,
                });
            }
        }
        let f = &shape.figures[id as usize];
        NodeView {
            name: node.name.to_string(),
            topic,
            value: f.value(shape.value),
            figures: f.clone(),
            is_topic: own.is_some(),
            retained: own.map(|s| s.retained),
            preview: own.map(|s| s.preview.preview()),
            folded: &*node.name == OTHER && node.children.is_empty(),
            children,
            children_count: node.children.len(),
        }
    }

    /// Every tracked topic (not the `(other)` entries) with its own figures.
    pub fn topics(&self, now: EpochMillis) -> impl Iterator<Item = (&str, Figures)> + '_ {
        self.index.iter().map(move |(topic, &s)| {
            (
                &**topic,
                Figures::of(&self.stats[s as usize], now, self.counting),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::{Window, WindowCount};

    /// A 30-second edge.
    const T0: u64 = 1_700_000_010_000;

    fn msg<'a>(topic: &'a str, payload: &'a [u8]) -> Message<'a> {
        Message {
            topic,
            payload,
            qos: 0,
            retain: false,
        }
    }

    #[test]
    fn counts_are_exact_at_every_level() {
        let mut tree = TopicTree::default();
        let plan = [
            ("plant/a/temp", 3u64, 10usize),
            ("plant/a/hum", 2, 5),
            ("plant/b/temp", 4, 1),
            ("plant", 1, 7),
            ("office/x", 5, 0),
        ];
        for (topic, n, size) in plan {
            for _ in 0..n {
                tree.record(msg(topic, &vec![b'x'; size]), T0);
            }
        }
        let f = |t: &str| tree.figures(t, T0).unwrap();
        assert_eq!((f("").messages, f("").bytes, f("").topics), (15, 51, 5));
        assert_eq!((f("plant").messages, f("plant").bytes), (10, 51));
        assert_eq!((f("plant/a").messages, f("plant/a").bytes), (5, 40));
        assert_eq!(f("plant/a/temp").messages, 3);
        assert_eq!(f("plant/b").messages, 4);
        assert_eq!((f("office").messages, f("office").bytes), (5, 0));
        assert!(tree.figures("nope", T0).is_none());
        let view = tree
            .view("plant", 1, usize::MAX, ValueOf::Messages, T0)
            .unwrap();
        assert_eq!(view.value, 10.0);
        assert!(view.is_topic);
        let names: Vec<_> = view
            .children
            .iter()
            .map(|c| (c.name.as_str(), c.value, c.children.len(), c.children_count))
            .collect();
        assert_eq!(names, [("a", 5.0, 0, 2), ("b", 4.0, 0, 1)]);
        let full = tree.view("", 10, usize::MAX, ValueOf::Bytes, T0).unwrap();
        assert_eq!(full.value, 51.0);
        assert_eq!(full.children[1].children[0].topic, "plant/a");
        assert_eq!(
            full.children[1].children[0].children[1].topic,
            "plant/a/temp"
        );
        assert_eq!(tree.summary().messages, 15);
        assert_eq!(tree.summary().topics, 5);
    }

    #[test]
    fn first_last_seen_qos_retained_and_preview() {
        let clock = T0;
        let mut tree = TopicTree::default();
        tree.record(msg("s/1", b"one"), clock);
        tree.record(
            Message {
                topic: "s/1",
                payload: b"two",
                qos: 1,
                retain: true,
            },
            clock + 5_000,
        );
        tree.record(
            Message {
                topic: "s/2",
                payload: &[0xff, 0x00],
                qos: 2,
                retain: false,
            },
            clock + 2_000,
        );
        let now = clock + 12_500;
        let one = tree.figures("s/1", now).unwrap();
        assert_eq!(one.first_seen_ms, Some(clock));
        assert_eq!(one.last_seen_ms, Some(clock + 5_000));
        assert_eq!(one.seconds_since_last, Some(7.5));
        assert_eq!(one.qos, [1, 1, 0]);
        assert_eq!(one.retained_messages, 1);
        let s = tree.figures("s", now).unwrap();
        assert_eq!(s.first_seen_ms, Some(clock));
        assert_eq!(s.last_seen_ms, Some(clock + 5_000));
        assert_eq!(s.seconds_since_last, Some(7.5));
        assert_eq!(s.qos, [1, 1, 1]);
        let view = tree
            .view("s", 1, usize::MAX, ValueOf::Messages, now)
            .unwrap();
        assert_eq!(view.children[0].retained, Some(true));
        assert_eq!(view.children[0].preview.as_ref().unwrap().text, "two");
        assert_eq!(view.children[1].preview.as_ref().unwrap().text, "ff00");
        assert_eq!(view.retained, None);
        assert!(!view.is_topic);
    }

    #[test]
    fn subtree_rates_are_sums_of_their_topics() {
        let mut tree = TopicTree::default();
        tree.start_counting(T0);
        // a/1 at 10/s, a/2 at 5/s, for 16 minutes; b/1 once, at the end.
        for i in 0..9_600u64 {
            tree.record(msg("a/1", b""), T0 + i * 100);
            if i % 2 == 0 {
                tree.record(msg("a/2", b""), T0 + i * 100);
            }
        }
        tree.record(msg("b/1", b""), T0 + 959_000);
        let now = T0 + 960_000;
        let rates = |t: &str| tree.figures(t, now).unwrap().rates;
        let per_minute = |t: &str| Window::ALL.map(|w| rates(t).get(w).per_minute);
        assert_eq!(per_minute("a/1"), [Some(600.0); 3]);
        assert_eq!(per_minute("a/2"), [Some(300.0); 3]);
        assert_eq!(per_minute("a"), [Some(900.0); 3]);
        assert_eq!(rates("a").get(Window::FifteenMinutes).count, 13_500.0);
        assert_eq!(rates("b/1").get(Window::OneMinute).count, 1.0);
        assert_eq!(rates("").get(Window::OneMinute).count, 901.0);
        assert_eq!(
            rates(""),
            rates("a").plus(&rates("b")),
            "the root is the sum of its subtrees"
        );
        // The sunburst's `rate_1m` sizes nodes by their count over the minute.
        let view = tree.view("", 1, 1, ValueOf::Rate1m, now).unwrap();
        assert_eq!(view.value, 901.0);
        assert_eq!(
            (view.children[0].name.as_str(), view.children[0].value),
            ("a", 900.0)
        );
        assert_eq!(
            (view.children[1].name.as_str(), view.children[1].value),
            (MORE, 1.0)
        );
        assert_eq!(
            view.children[1]
                .figures
                .rates
                .get(Window::OneMinute)
                .per_minute,
            Some(1.0)
        );
        let view = tree.view("", 0, 1, ValueOf::Rate15m, now).unwrap();
        assert_eq!(view.value, 13_501.0);
    }

    #[test]
    fn rates_cover_the_time_since_the_subscription_not_since_a_topic_was_first_seen() {
        let mut tree = TopicTree::default();
        // Nothing covered before the first subscription.
        let empty = tree.figures("", T0).unwrap().rates;
        assert_eq!(empty, WindowCounts::from_fn(|_| WindowCount::EMPTY));
        assert_eq!(tree.summary().counting_since_ms, None);
        tree.start_counting(T0);
        assert_eq!(tree.summary().counting_since_ms, Some(T0));
        // A topic first seen 10 s after the subscription was silent before: 5 messages in the
        // last minute, not 5 over 50 s.
        for _ in 0..5 {
            tree.record(msg("late", b""), T0 + 10_000);
        }
        let minute = |t: &str, now| tree.figures(t, now).unwrap().rates.one_minute;
        assert_eq!(minute("late", T0 + 60_000).per_minute, Some(5.0));
        assert_eq!(minute("late", T0 + 58_000).covered_s, 58.0);
        assert_eq!(minute("late", T0 + 58_000).per_minute, None);
        // An empty subtree covers the same span, with a count of 0.
        let root = tree.figures("", T0 + 58_000).unwrap().rates.one_minute;
        assert_eq!((root.count, root.covered_s), (5.0, 58.0));
    }

    #[test]
    fn a_reconnection_starts_the_windows_over() {
        let mut tree = TopicTree::default();
        tree.start_counting(T0);
        // 1/s on "on" for 20 minutes; "gone" only before the outage.
        for i in 0..1_200u64 {
            tree.record(msg("on", b""), T0 + i * 1_000);
            tree.record(msg("gone", b""), T0 + i * 1_000);
        }
        let lost = T0 + 1_200_000;
        let minute = |tree: &TopicTree, t: &str, now| tree.figures(t, now).unwrap().rates;
        assert_eq!(minute(&tree, "on", lost).one_minute.per_minute, Some(60.0));
        // Down 5 s, then subscribed again; "on" goes on, 1/s.
        let back = lost + 5_000;
        tree.start_counting(back);
        for i in 0..10u64 {
            tree.record(msg("on", b""), back + i * 1_000);
        }
        // The minute ends at the last 2 s edge, 11 s after the reconnection.
        let now = back + 11_500;
        for (topic, count) in [("on", 10.0), ("gone", 0.0), ("", 10.0)] {
            let rates = minute(&tree, topic, now);
            for w in Window::ALL {
                let c = rates.get(w);
                assert_eq!(c.per_minute, None, "{topic} {w:?}");
                assert!(c.covered_s <= 11.0, "{topic} {w:?}: {c:?}");
            }
            assert_eq!(rates.one_minute.count, count, "{topic}");
            assert_eq!(rates.one_minute.covered_s, 11.0);
        }
        // The counts before the outage are gone even from the longer windows.
        let at_edge = back - back % 30_000 + 60_000;
        assert_eq!(minute(&tree, "on", at_edge).fifteen_minutes.count, 10.0);
        assert_eq!(minute(&tree, "gone", at_edge).fifteen_minutes.count, 0.0);
        // Once a whole minute lies after the reconnection it is covered again: the reconnection
        // fell mid-bucket, so that minute starts at the next edge, after the first message.
        let minute_on = minute(&tree, "on", back + 60_500).one_minute;
        assert_eq!(minute_on.per_minute, None);
        let minute_on = minute(&tree, "on", back + 61_000).one_minute;
        assert_eq!(minute_on.per_minute, Some(9.0));
    }

    #[test]
    fn past_the_cap_new_topics_fold_into_their_parents_other_child() {
        let mut tree = TopicTree::new(3);
        for t in ["f/1", "f/2", "g"] {
            tree.record(msg(t, b"ab"), T0);
        }
        assert_eq!(tree.summary().topics, 3);
        for t in ["f/3", "f/4", "f/3", "h/deep/er", "f/1"] {
            tree.record(msg(t, b"ab"), T0);
        }
        let summary = tree.summary();
        assert_eq!(summary.topics, 3);
        assert_eq!(summary.folded_messages, 4);
        assert_eq!(summary.other_nodes, 2);
        assert_eq!(tree.figures("f/(other)", T0).unwrap().messages, 3);
        assert_eq!(tree.figures("f", T0).unwrap().messages, 6);
        assert_eq!(tree.figures("(other)", T0).unwrap().messages, 1);
        assert_eq!(tree.figures("", T0).unwrap().messages, 8);
        assert_eq!(tree.figures("", T0).unwrap().bytes, 16);
        let view = tree
            .view("f", 1, usize::MAX, ValueOf::Messages, T0)
            .unwrap();
        let other = view.children.iter().find(|c| c.name == OTHER).unwrap();
        assert!(other.folded);
        // Memory stays flat: many more new topics add nothing.
        let nodes = tree.summary().nodes;
        for i in 0..10_000 {
            tree.record(msg(&format!("f/x{i}/y"), b""), T0);
        }
        assert_eq!(tree.summary().nodes, nodes);
        assert_eq!(tree.summary().folded_messages, 10_004);
    }

    #[test]
    fn deep_topics_share_the_node_budget() {
        // 4 nodes per topic: a topic of 20 new levels does not fit a tree of 2 topics.
        let mut tree = TopicTree::new(2);
        let deep = vec!["l"; 20].join("/");
        tree.record(msg(&deep, b""), T0);
        assert_eq!(tree.summary().topics, 0);
        assert_eq!(tree.summary().folded_messages, 1);
        assert_eq!(tree.figures("(other)", T0).unwrap().messages, 1);
    }

    #[test]
    fn a_thousand_levels_and_sixty_kib_names_are_bounded() {
        let mut tree = TopicTree::new(100_000);
        let deep = (0..1000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("/");
        tree.record(msg(&deep, b"x"), T0);
        let long = "n".repeat(60 * 1024);
        tree.record(msg(&long, b"y"), T0);
        tree.record(msg(&format!("{long}/tail"), b"z"), T0);
        let summary = tree.summary();
        assert_eq!(
            summary.topics, 2,
            "the two long names share their first KiB"
        );
        assert_eq!(summary.cut_topic_messages, 3);
        assert!(summary.nodes <= 1 + MAX_DEPTH + 1, "{summary:?}");
        let view = tree
            .view("", MAX_DEPTH + 5, usize::MAX, ValueOf::Messages, T0)
            .unwrap();
        let mut depth = 0;
        let mut node = &view;
        while let Some(child) = node.children.iter().find(|c| c.name == "0" || depth > 0) {
            node = child;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert!(node.name.ends_with(CUT_MARK), "{}", &node.name[..20]);
        assert!(node.name.len() <= MAX_TOPIC_BYTES);
        let long_node = view
            .children
            .iter()
            .find(|c| c.name.starts_with('n'))
            .unwrap();
        assert_eq!(
            long_node.name,
            format!("{}{CUT_MARK}", "n".repeat(MAX_TOPIC_BYTES))
        );
        assert_eq!(long_node.value, 2.0);
        // A cut inside a multi-byte character cuts before it.
        let mut tree = TopicTree::default();
        let wide = format!("{}é", "a".repeat(MAX_TOPIC_BYTES - 1));
        tree.record(msg(&wide, b""), T0);
        assert_eq!(tree.summary().cut_topic_messages, 1);
    }

    #[test]
    fn empty_levels_and_a_topic_that_is_also_a_parent() {
        let mut tree = TopicTree::default();
        tree.record(msg("/lead", b""), T0);
        tree.record(msg("a//b", b""), T0);
        tree.record(msg("a", b""), T0);
        assert_eq!(tree.figures("", T0).unwrap().messages, 3);
        assert_eq!(tree.figures("a", T0).unwrap().messages, 2);
        assert_eq!(tree.figures("a/", T0).unwrap().messages, 1);
        assert_eq!(tree.figures("/lead", T0).unwrap().messages, 1);
        let view = tree.view("", 3, usize::MAX, ValueOf::Messages, T0).unwrap();
        assert_eq!(view.children[0].name, "");
        assert_eq!(view.children[0].children[0].topic, "/lead");
    }

    #[test]
    fn a_view_keeps_the_largest_children_and_sums_the_rest() {
        let mut tree = TopicTree::default();
        for (topic, n) in [("d/a", 1), ("d/b", 5), ("d/c", 3), ("d/e", 2)] {
            for _ in 0..n {
                tree.record(msg(topic, b"xy"), T0);
            }
        }
        let view = tree.view("d", 1, 2, ValueOf::Messages, T0).unwrap();
        let shown: Vec<_> = view
            .children
            .iter()
            .map(|c| (c.name.as_str(), c.value, c.children_count))
            .collect();
        assert_eq!(shown, [("b", 5.0, 0), ("c", 3.0, 0), (MORE, 3.0, 2)]);
        assert_eq!(view.children[2].figures.bytes, 6);
        assert_eq!(view.children[2].topic, "d/(more)");
        assert_eq!(
            view.value,
            view.children.iter().map(|c| c.value).sum::<f64>()
        );
    }

    #[test]
    fn a_node_with_many_children_finds_each_of_them() {
        let mut tree = TopicTree::default();
        for round in 1..=3u64 {
            for i in 0..(LIST_CHILDREN * 3) {
                tree.record(msg(&format!("w/c{i}"), b""), T0);
            }
            for i in 0..(LIST_CHILDREN * 3) {
                assert_eq!(
                    tree.figures(&format!("w/c{i}"), T0).unwrap().messages,
                    round
                );
            }
        }
        assert_eq!(tree.summary().topics, LIST_CHILDREN * 3);
        assert_eq!(tree.summary().nodes, 2 + LIST_CHILDREN * 3);
        let view = tree
            .view("w", 1, usize::MAX, ValueOf::Messages, T0)
            .unwrap();
        assert_eq!(view.children.len(), LIST_CHILDREN * 3);
        assert_eq!(view.children[0].name, "c0");
        assert_eq!(view.value, 3.0 * (LIST_CHILDREN * 3) as f64);
    }

    #[test]
    fn topics_lists_tracked_topics_with_their_own_figures() {
        let mut tree = TopicTree::default();
        tree.record(msg("a/b", b"12"), T0);
        tree.record(msg("a", b"1"), T0);
        let mut topics: Vec<_> = tree
            .topics(T0)
            .map(|(t, f)| (t.to_string(), f.bytes))
            .collect();
        topics.sort();
        assert_eq!(topics, [("a".to_string(), 1), ("a/b".to_string(), 2)]);
    }
}
