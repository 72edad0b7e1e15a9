//! What the demo and the tests do to tansu 0.6 (the Kafka-compatible broker they start), kept in
//! one place so both do the same.

/// tansu 0.6's sqlite schema has no index on the record headers, and a Fetch reads each record's
/// headers with a query of its own: every record read scans every header in the database, so
/// reading records with headers grows with the square of their number (100,000 records with
/// trace headers: not read back in 5 minutes; the demo's pipeline fell behind within minutes).
/// This index makes it linear and changes no answer. Run it once the broker answers (it has made
/// its tables by then); it is idempotent and kept in the database file.
pub const RECORD_HEADER_INDEX_SQL: &str =
    "create index if not exists header_by_record on header (topition, offset_id);";
