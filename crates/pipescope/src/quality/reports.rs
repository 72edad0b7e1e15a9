//! Periodic profile reports (docs/quality.md "Reports"): every `report_every` a quality topic's
//! task writes the HTML report of the windows closed since the previous one into the reports
//! directory (a temporary file, then a rename: a reader never sees half a report) and deletes
//! the oldest past `keep_reports`. The directory is the list: it survives restarts.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use pipescope_core::EpochMillis;
use pipescope_core::quality::reports;

use super::{QualityState, QualityTopic};
use crate::profile::{Report, render_html};

/// One report on disk.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ReportEntry {
    /// The quality topic (`[quality.<name>]`).
    pub quality: String,
    /// The file name: `GET /api/v1/quality/reports/{file}` serves it.
    pub file: String,
    /// When it was written (epoch ms, to the second).
    pub written_at_ms: EpochMillis,
    pub bytes: u64,
    /// Records in the report; absent for reports written before the monitor's last start.
    pub records: Option<u64>,
}

/// Why a report was not written.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot write the quality report {file} of {quality} into {dir}: {source} — check that the directory ([store] reports_dir) is writable and has room"
)]
pub struct ReportError {
    quality: String,
    file: String,
    dir: String,
    source: std::io::Error,
}

/// The reports of `topic` in `dir`, file name and time, oldest first.
fn topic_reports(topic: &QualityTopic, dir: &Path) -> std::io::Result<Vec<(String, EpochMillis)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        if let Some(name) = name.to_str()
            && let Some(at) = reports::written_at(&topic.name, name)
        {
            found.push((name.to_string(), at));
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(found)
}

/// Writes `topic`'s report of the windows closed since its previous one, at `now`, and
/// deletes the oldest past its cap. Blocking: file I/O. Returns the file name.
pub fn write_report(topic: &QualityTopic, now: EpochMillis) -> Result<Option<String>, ReportError> {
    let Some(settings) = &topic.reports else {
        return Ok(None);
    };
    let Some(taken) = topic.observer().take_report() else {
        return Ok(None);
    };
    let file = reports::file_name(&topic.name, now);
    let dir = &settings.dir;
    let failed = |source| ReportError {
        quality: topic.name.clone(),
        file: file.clone(),
        dir: dir.display().to_string(),
        source,
    };
    let report = Report {
        source: format!(
            "quality topic {} ({}), {} window{} of {} before {}",
            topic.name,
            topic.source,
            taken.windows,
            if taken.windows == 1 { "" } else { "s" },
            humantime::format_duration(std::time::Duration::from_millis(topic.window_ms)),
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(now)
            ),
        ),
        generated_at_ms: now,
        profile: taken.profile,
        sample: taken.sample,
    };
    let records = report.profile.records;
    let html = render_html(&report);
    std::fs::create_dir_all(dir).map_err(failed)?;
    // A dot name no listing reads: a crash leaves it, the next write of the same second
    // replaces it.
    let temporary: PathBuf = dir.join(format!(".{file}.tmp"));
    std::fs::write(&temporary, html).map_err(failed)?;
    std::fs::rename(&temporary, dir.join(&file)).map_err(failed)?;
    let mut kept = topic.report_records();
    kept.insert(file.clone(), records);
    let on_disk = topic_reports(topic, dir).map_err(failed)?;
    for old in reports::to_delete(on_disk, settings.keep) {
        kept.remove(&old);
        if let Err(e) = std::fs::remove_file(dir.join(&old))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(quality = %topic.name, "cannot delete the old report {old} in {}: {e}", dir.display());
        }
    }
    // Bounded by the files kept (a file deleted by hand leaves its entry until it ages out).
    while kept.len() > settings.keep {
        let Some(oldest) = kept.keys().next().cloned() else {
            break;
        };
        kept.remove(&oldest);
    }
    Ok(Some(file))
}

/// Writes a report, counting it written or failed (for the metrics).
pub fn write_and_count(topic: &QualityTopic, now: EpochMillis) {
    match write_report(topic, now) {
        Ok(Some(file)) => {
            topic.reports_written.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(quality = %topic.name, "wrote the quality report {file}");
        }
        Ok(None) => {}
        Err(e) => {
            topic.reports_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(quality = %topic.name, "{e}");
        }
    }
}

/// Every quality topic's reports on disk, newest first. Blocking: reads the directory.
pub fn list(state: &QualityState) -> std::io::Result<Vec<ReportEntry>> {
    let mut out = Vec::new();
    for topic in state.topics() {
        let dir = state.reports_dir();
        let records = topic.report_records().clone();
        for (file, at) in topic_reports(topic, dir)? {
            let Ok(meta) = std::fs::metadata(dir.join(&file)) else {
                continue; // deleted meanwhile
            };
            out.push(ReportEntry {
                quality: topic.name.clone(),
                records: records.get(&file).copied(),
                file,
                written_at_ms: at,
                bytes: meta.len(),
            });
        }
    }
    out.sort_by(|a, b| {
        b.written_at_ms
            .cmp(&a.written_at_ms)
            .then_with(|| a.file.cmp(&b.file))
    });
    Ok(out)
}

/// The report named `file`, only if it is one of a quality topic's (nothing else of the
/// directory, nothing outside it). Blocking.
pub fn read(state: &QualityState, file: &str) -> std::io::Result<Option<Vec<u8>>> {
    let ours = state
        .topics()
        .any(|t| reports::written_at(&t.name, file).is_some());
    if !ours {
        return Ok(None);
    }
    match std::fs::read(state.reports_dir().join(file)) {
        Ok(html) => Ok(Some(html)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pipescope_core::ManualClock;

    use super::*;

    const T0: EpochMillis = 1_800_000_000_000; // 2027-01-15T08:00:00Z

    fn state(dir: &Path, keep: usize) -> QualityState {
        let config = format!(
            "[store]\nreports_dir = {:?}\n[mqtt.m]\nurl = \"mqtt://h\"\n\
             [quality.visits]\nmqtt = \"m\"\nfilter = \"v/#\"\nwindow = \"10s\"\nreport_every = \"10s\"\nkeep_reports = {keep}\n\
             [quality.quiet]\nmqtt = \"m\"\nfilter = \"q/#\"\n",
            dir.display().to_string()
        );
        let config = crate::config::parse("t", &config, []).unwrap();
        QualityState::new(&config, Arc::new(ManualClock::at(T0)))
    }

    #[test]
    fn reports_are_written_whole_listed_newest_first_and_the_oldest_past_the_cap_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path(), 2);
        let visits = state.get("visits").unwrap();
        for i in 0..3u64 {
            let at = T0 + i * 10_000;
            visits.observer().observe(
                format!(r#"{{"user":"u{i}","secret_field":1}}"#).as_bytes(),
                "v/1",
                at + 1,
            );
            visits.observer().tick(at + 10_000);
            let file = write_report(visits, at + 10_000).unwrap().unwrap();
            assert_eq!(reports::written_at("visits", &file), Some(at + 10_000));
        }
        // Reports off: nothing written.
        assert_eq!(write_report(state.get("quiet").unwrap(), T0).unwrap(), None);
        let listed = list(&state).unwrap();
        let files: Vec<&str> = listed.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "visits-20270115T080030Z.html",
                "visits-20270115T080020Z.html"
            ]
        );
        assert_eq!(listed[0].records, Some(1));
        assert_eq!(listed[0].quality, "visits");
        assert_eq!(listed[0].written_at_ms, T0 + 30_000);
        let on_disk: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(on_disk.len(), 2, "no temporary file left: {on_disk:?}");
        let html = String::from_utf8(read(&state, &listed[0].file).unwrap().unwrap()).unwrap();
        assert!(
            html.contains("secret_field") && html.contains("u2"),
            "{html}"
        );
        assert_eq!(listed[0].bytes, html.len() as u64);
        assert_eq!(visits.report_records().len(), 2);
    }

    #[test]
    fn only_a_listed_report_name_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("reports");
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(dir.path().join("secret.html"), "secret").unwrap();
        std::fs::write(inner.join("notes.html"), "notes").unwrap();
        std::fs::write(inner.join("visits-20270115T080000Z.html"), "ok").unwrap();
        let state = state(&inner, 2);
        assert_eq!(
            read(&state, "visits-20270115T080000Z.html").unwrap(),
            Some(b"ok".to_vec())
        );
        for file in [
            "../secret.html",
            "notes.html",
            "../reports/visits-20270115T080000Z.html",
            "/etc/passwd",
            "visits-20270115T080010Z.html",
        ] {
            assert_eq!(read(&state, file).unwrap(), None, "{file}");
        }
        // A report of a topic no longer configured is not listed (nor served).
        std::fs::write(inner.join("gone-20270115T080000Z.html"), "old").unwrap();
        assert_eq!(list(&state).unwrap().len(), 1);
        assert_eq!(list(&state).unwrap()[0].records, None);
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        let state = state(&blocked, 2);
        let e = write_report(state.get("visits").unwrap(), T0).unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with(
                "cannot write the quality report visits-20270115T080000Z.html of visits into "
            ) && message.contains("reports_dir"),
            "{message}"
        );
        write_and_count(state.get("visits").unwrap(), T0);
        assert_eq!(
            state
                .get("visits")
                .unwrap()
                .reports_failed
                .load(Ordering::Relaxed),
            1
        );
    }
}
