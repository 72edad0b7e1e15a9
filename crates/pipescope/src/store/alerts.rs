//! The alert engine's states in the store's database (table `alert_state`), so a restart
//! neither forgets a firing alert nor announces it again, the silences (table `silences`), so a
//! restart does not lift them, and the notifiers' last notification per group (table
//! `notifications_sent`), so a restart does not send it again. Written on every change, from its own connection: a few
//! rows, rewritten in one transaction.

use std::path::{Path, PathBuf};

use pipescope_core::alerts::engine::AlertInstance;
use pipescope_core::alerts::notify::SentGroup;
use pipescope_core::alerts::silences::Silence;
use rusqlite::Connection;

use super::DB_FILE;

#[derive(Debug, thiserror::Error)]
pub enum AlertTableError {
    #[error("cannot open the alert states in {path}: {source} — is the store directory writable?")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot read or write the alert states in {path}: {source}")]
    Query {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

#[derive(Debug)]
pub struct AlertTable {
    conn: Connection,
    path: PathBuf,
}

impl AlertTable {
    /// Opens the table in the store directory `dir` (the store must have been opened there).
    pub fn open(dir: &Path) -> Result<Self, AlertTableError> {
        let path = dir.join(DB_FILE);
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(&path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS alert_state (
                     rule TEXT NOT NULL,
                     labels TEXT NOT NULL,
                     instance TEXT NOT NULL,
                     PRIMARY KEY (rule, labels)
                 );
                 CREATE TABLE IF NOT EXISTS silences (
                     id TEXT PRIMARY KEY,
                     silence TEXT NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS notifications_sent (
                     receiver TEXT NOT NULL,
                     group_key TEXT NOT NULL,
                     sent TEXT NOT NULL,
                     PRIMARY KEY (receiver, group_key)
                 );",
            )?;
            Ok(conn)
        };
        let conn = open().map_err(|source| AlertTableError::Open {
            path: path.clone(),
            source,
        })?;
        Ok(Self { conn, path })
    }

    /// Every kept instance. A row that does not decode (a damaged file) is skipped and logged.
    pub fn load(&self) -> Result<Vec<AlertInstance>, AlertTableError> {
        self.load_json(
            "SELECT instance FROM alert_state ORDER BY rule, labels",
            "alert state",
        )
    }

    /// Replaces what is kept with `instances`, in one transaction.
    pub fn save<'a>(
        &mut self,
        instances: impl IntoIterator<Item = &'a AlertInstance>,
    ) -> Result<(), AlertTableError> {
        let rows = instances.into_iter().map(|instance| {
            let labels = serde_json::to_string(&instance.labels).unwrap_or_default();
            (vec![instance.rule.clone(), labels], json(instance))
        });
        self.replace(
            "DELETE FROM alert_state",
            "INSERT INTO alert_state (rule, labels, instance) VALUES (?1, ?2, ?3)",
            rows,
        )
    }

    /// Every kept silence, expired ones included (the caller prunes).
    pub fn load_silences(&self) -> Result<Vec<Silence>, AlertTableError> {
        self.load_json("SELECT silence FROM silences ORDER BY id", "silence")
    }

    /// Replaces the kept silences with `silences`, in one transaction.
    pub fn save_silences<'a>(
        &mut self,
        silences: impl IntoIterator<Item = &'a Silence>,
    ) -> Result<(), AlertTableError> {
        let rows = silences
            .into_iter()
            .map(|silence| (vec![silence.id.clone()], json(silence)));
        self.replace(
            "DELETE FROM silences",
            "INSERT INTO silences (id, silence) VALUES (?1, ?2)",
            rows,
        )
    }

    /// Each notified group's last notification.
    pub fn load_sent(&self) -> Result<Vec<SentGroup>, AlertTableError> {
        self.load_json(
            "SELECT sent FROM notifications_sent ORDER BY receiver, group_key",
            "notification log entry",
        )
    }

    /// Replaces the kept notification log with `sent`, in one transaction.
    pub fn save_sent<'a>(
        &mut self,
        sent: impl IntoIterator<Item = &'a SentGroup>,
    ) -> Result<(), AlertTableError> {
        let rows = sent
            .into_iter()
            .map(|g| (vec![g.receiver.clone(), g.group_key.clone()], json(g)));
        self.replace(
            "DELETE FROM notifications_sent",
            "INSERT INTO notifications_sent (receiver, group_key, sent) VALUES (?1, ?2, ?3)",
            rows,
        )
    }

    /// The rows of a one-column JSON query, decoded; one that does not decode (a damaged file)
    /// is skipped and logged.
    fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        what: &str,
    ) -> Result<Vec<T>, AlertTableError> {
        let query = || -> rusqlite::Result<Vec<String>> {
            let mut statement = self.conn.prepare(sql)?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect()
        };
        let rows = query().map_err(|source| self.query_error(source))?;
        Ok(rows
            .into_iter()
            .filter_map(|text| match serde_json::from_str(&text) {
                Ok(item) => Some(item),
                Err(e) => {
                    tracing::error!("store: an unreadable {what} was skipped ({e})");
                    None
                }
            })
            .collect())
    }

    /// Deletes with `delete`, then inserts each row's keys and JSON with `insert`, in one
    /// transaction.
    fn replace(
        &mut self,
        delete: &str,
        insert: &str,
        rows: impl Iterator<Item = (Vec<String>, String)>,
    ) -> Result<(), AlertTableError> {
        let write = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute(delete, [])?;
            {
                let mut statement = tx.prepare(insert)?;
                for (mut values, text) in rows {
                    values.push(text);
                    statement.execute(rusqlite::params_from_iter(values))?;
                }
            }
            tx.commit()
        };
        write(&mut self.conn).map_err(|source| self.query_error(source))
    }

    fn query_error(&self, source: rusqlite::Error) -> AlertTableError {
        AlertTableError::Query {
            path: self.path.clone(),
            source,
        }
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pipescope_core::alerts::AlertState;

    use super::*;

    #[test]
    fn saved_instances_load_back_and_a_save_replaces_them() {
        let dir = tempfile::tempdir().unwrap();
        let instance = |group: &str| AlertInstance {
            rule: "lag".into(),
            labels: BTreeMap::from([("group".to_string(), group.to_string())]),
            annotations: BTreeMap::from([("summary".to_string(), "s".to_string())]),
            state: AlertState::Firing,
            since_ms: 2,
            active_since_ms: 1,
            firing_since_ms: Some(2),
            resolved_at_ms: None,
            value: Some(16.0),
        };
        let mut table = AlertTable::open(dir.path()).unwrap();
        table.save([&instance("a"), &instance("b")]).unwrap();
        drop(table);
        let mut table = AlertTable::open(dir.path()).unwrap();
        assert_eq!(table.load().unwrap(), [instance("a"), instance("b")]);
        table.save([&instance("c")]).unwrap();
        assert_eq!(table.load().unwrap(), [instance("c")]);
    }

    #[test]
    fn saved_silences_load_back_beside_the_alert_states() {
        let dir = tempfile::tempdir().unwrap();
        let silence = |id: &str| Silence {
            id: id.into(),
            matchers: vec![pipescope_core::alerts::silences::SilenceMatcher {
                name: "team".into(),
                value: "ops".into(),
                is_regex: false,
            }],
            starts_at_ms: 1,
            ends_at_ms: 2,
            created_at_ms: 1,
            created_by: "me".into(),
            comment: "upgrade".into(),
        };
        let mut table = AlertTable::open(dir.path()).unwrap();
        table.save_silences([&silence("a"), &silence("b")]).unwrap();
        drop(table);
        let mut table = AlertTable::open(dir.path()).unwrap();
        assert_eq!(table.load_silences().unwrap(), [silence("a"), silence("b")]);
        assert!(table.load().unwrap().is_empty());
        table.save_silences([]).unwrap();
        assert!(table.load_silences().unwrap().is_empty());
    }
}
