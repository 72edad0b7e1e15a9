//! MQTT: the topic tree with its rates and bounds, payload previews, and `$SYS` broker metrics.

pub mod oversize;
pub mod preview;
pub mod rate;
pub mod sys;
pub mod tree;

pub use preview::{Encoding, PREVIEW_BYTES, Preview};
pub use rate::{RateCounter, window_count};
pub use sys::{Kind, SysMetric, SysReading, SysState};
pub use tree::{Figures, Message, NodeView, TopicTree, TreeSummary, ValueOf};
