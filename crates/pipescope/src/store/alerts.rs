//! The alert engine's states in the store's database (table `alert_state`), so a restart
//! neither forgets a firing alert nor announces it again. Written on every transition, from its
//! own connection: a few rows, rewritten in one transaction.

use std::path::{Path, PathBuf};

use pipescope_core::alerts::engine::AlertInstance;
use rusqlite::{Connection, params};

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
        let query = || -> rusqlite::Result<Vec<String>> {
            let mut statement = self
                .conn
                .prepare("SELECT instance FROM alert_state ORDER BY rule, labels")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect()
        };
        let rows = query().map_err(|source| self.query_error(source))?;
        Ok(rows
            .into_iter()
            .filter_map(|text| match serde_json::from_str(&text) {
                Ok(instance) => Some(instance),
                Err(e) => {
                    tracing::error!("store: an unreadable alert state was skipped ({e})");
                    None
                }
            })
            .collect())
    }

    /// Replaces what is kept with `instances`, in one transaction.
    pub fn save<'a>(
        &mut self,
        instances: impl IntoIterator<Item = &'a AlertInstance>,
    ) -> Result<(), AlertTableError> {
        let write = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM alert_state", [])?;
            {
                let mut insert = tx.prepare(
                    "INSERT INTO alert_state (rule, labels, instance) VALUES (?1, ?2, ?3)",
                )?;
                for instance in instances {
                    let labels = serde_json::to_string(&instance.labels).unwrap_or_default();
                    let text = serde_json::to_string(instance).unwrap_or_default();
                    insert.execute(params![instance.rule, labels, text])?;
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
}
