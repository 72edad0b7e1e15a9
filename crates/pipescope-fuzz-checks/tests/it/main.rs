//! Replays every checked-in fuzz input (fuzz/regressions/<target>/*: the minimized corpus and
//! every crash found) through its target's check, so that they stay fixed on stable.

use std::path::{Path, PathBuf};

use pipescope_fuzz_checks::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {} ({e})", dir.display()))
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_fuzz_target_has_a_check_and_a_regression_corpus() {
    let targets: Vec<String> = names_in(&fuzz_dir().join("fuzz_targets"))
        .into_iter()
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
        .collect();
    let checked: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        targets, checked,
        "fuzz/fuzz_targets and TARGETS must list the same targets"
    );
    for target in targets {
        let dir = fuzz_dir().join("regressions").join(&target);
        assert!(
            !names_in(&dir).is_empty(),
            "{} is empty: check in the target's minimized corpus (see ARCHITECTURE.md, Fuzzing)",
            dir.display()
        );
    }
}

#[test]
fn every_regression_input_passes_its_check() {
    let mut failed = Vec::new();
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let dir = fuzz_dir().join("regressions").join(target);
        for name in names_in(&dir) {
            let path = dir.join(&name);
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()));
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failed.push(format!("{target}/{name}"));
            }
            replayed += 1;
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {replayed} inputs fail their check (the panics are above): {failed:?}; \
         reproduce one with `cargo +nightly fuzz run <target> regressions/<target>/<file>` in fuzz/",
        failed.len()
    );
}
