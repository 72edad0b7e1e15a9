//! The part harness on small shell programs: stdout at exit, a failed exit named with its log,
//! SIGTERM and kill -9, and the /metrics sum.

use std::time::Duration;

use pipescope_testkit::Part;
use pipescope_testkit::part::metric_sum;

fn shell(name: &str, script: &str) -> Part {
    Part::builder("sh", name)
        .args(["-c", script])
        .without_web()
        .env("GREETING", "hello")
        .start()
}

#[test]
fn finish_returns_stdout_and_a_failure_names_the_part_with_its_log() {
    let mut ok = shell("greeter", "echo \"{\\\"said\\\":\\\"$GREETING\\\"}\"");
    assert_eq!(ok.finish(Duration::from_secs(10)), "{\"said\":\"hello\"}\n");
    assert!(ok.has_exited());

    let mut failing = shell("failing", "echo broken >&2; exit 3");
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        failing.finish(Duration::from_secs(10))
    }))
    .expect_err("a failed exit fails finish");
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(message.starts_with("failing failed"), "{message}");
    assert!(message.contains("broken"), "{message}");
}

#[test]
fn stop_sends_sigterm_and_kill9_stops_at_once() {
    let mut polite = shell(
        "polite",
        "trap 'echo bye; exit 0' TERM; echo ready >&2; while :; do sleep 0.05; done",
    );
    // SIGTERM before the trap is set would kill the shell: wait until it says it is set.
    assert!(pipescope_testkit::wait_until(
        Duration::from_secs(10),
        || { polite.log().contains("ready") }
    ));
    let status = polite
        .stop(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status}");

    let mut stubborn = shell("stubborn", "exec sleep 30");
    assert!(!stubborn.has_exited());
    stubborn.kill9();
    assert!(stubborn.has_exited());
}

#[test]
fn metric_sum_adds_a_metric_over_its_label_sets_only() {
    let text = "# HELP x_total x\n\
                x_total{a=\"1\"} 2\n\
                x_total{a=\"2\"} 3.5\n\
                x_total_other 100\n\
                y 1\n";
    assert_eq!(metric_sum(text, "x_total"), Some(5.5));
    assert_eq!(metric_sum(text, "y"), Some(1.0));
    assert_eq!(metric_sum(text, "z"), None);
}
