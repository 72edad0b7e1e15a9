//! The testkit's own tests: each real service starts, answers, and does what later tests rely on;
//! the part harness, the scripted Kafka broker and the record-batch builder do what they say.

mod influx;
mod kafka;
mod mqtt;
mod part;
mod records;
mod scripted_kafka;
mod synthetic_kafka;

/// A service that is not installed fails the test loudly, naming the command that installs it.
#[test]
fn a_missing_binary_fails_with_its_install_command() {
    let failure = std::panic::catch_unwind(|| {
        pipescope_testkit::find_binary(
            "pipescope-no-such-service",
            "sudo apt-get install -y no-such-service",
        )
    })
    .expect_err("a missing binary must fail the test");
    let message = failure
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("`pipescope-no-such-service` is not installed"),
        "{message}"
    );
    assert!(
        message.contains("Install it with: sudo apt-get install -y no-such-service"),
        "{message}"
    );
}
