//! The monitor's allocator settings.
//!
//! The binary allocates with mimalloc (`main.rs`). By default mimalloc keeps freed pages
//! resident for a second before it returns them, and asks for transparent huge pages for its
//! arenas. A big cluster's scrape frees and allocates hundreds of MB per tick (answers decoded,
//! a new state and view built beside the last ones), so with those defaults the monitor's peak
//! RSS was 1.4 times its peak heap: 475–495 MB for a 335 MB heap at 100,000 partitions and
//! 10,000 groups, against 400–410 MB with freed memory returned at once and no huge pages
//! (BENCHMARKS.md, "Scale"; about 0.15 s more CPU per such scrape).
//!
//! mimalloc reads its options from the environment when the process loads, before `main` runs.
//! So `pipescope run` and `pipescope demo` start again once, in the same process (`exec`),
//! with the options set that the environment does not set already: a user's own `MIMALLOC_*`
//! setting wins.

use std::ffi::OsString;

/// The mimalloc options the monitor runs with: freed memory purged at once (mimalloc's default
/// waits 1,000 ms) and no transparent huge pages.
pub const MONITOR_OPTIONS: [(&str, &str); 2] =
    [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ALLOW_THP", "0")];

/// The [`MONITOR_OPTIONS`] that `env` (a lookup of the process environment) does not set.
pub fn missing_options(
    env: impl Fn(&str) -> Option<OsString>,
) -> Vec<(&'static str, &'static str)> {
    MONITOR_OPTIONS
        .into_iter()
        .filter(|(name, _)| env(name).is_none())
        .collect()
}

/// Starts this program again in this process with the missing [`MONITOR_OPTIONS`] set, with
/// the same arguments. Returns when there is nothing to set, or when the program cannot be
/// started again (then it goes on with mimalloc's defaults, and says why on stderr).
#[cfg(unix)]
pub fn restart_with_monitor_options() {
    use std::os::unix::process::CommandExt;

    let missing = missing_options(|name| std::env::var_os(name));
    if missing.is_empty() {
        return;
    }
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => {
            eprintln!("warning: cannot find this program to set its allocator options ({e})");
            return;
        }
    };
    let mut args = std::env::args_os();
    let arg0 = args
        .next()
        .unwrap_or_else(|| program.clone().into_os_string());
    let error = std::process::Command::new(&program)
        .arg0(arg0)
        .args(args)
        .envs(missing)
        .exec();
    eprintln!(
        "warning: cannot start {} again with its allocator options ({error}); going on with mimalloc's defaults",
        program.display()
    );
}

/// Elsewhere the environment cannot be set before the allocator reads it: nothing to do.
#[cfg(not(unix))]
pub fn restart_with_monitor_options() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_options_the_environment_lacks_are_set() {
        assert_eq!(missing_options(|_| None), MONITOR_OPTIONS);
        let purge_set = |name: &str| (name == "MIMALLOC_PURGE_DELAY").then(|| "1000".into());
        assert_eq!(
            missing_options(purge_set),
            [("MIMALLOC_ALLOW_THP", "0")],
            "a user's own setting wins"
        );
        assert!(missing_options(|_| Some("1".into())).is_empty());
    }
}
