//! A broker whose answers claim billions of items (issue 15, item 2): the count is a decode
//! error on the item it is in, the scrape goes on, and the next scrape works. Before the
//! decoder checked counts against the bytes left, each of these aborted the process.

use kafka_protocol::messages::ApiKey;
use pipescope_core::SystemClock;
use pipescope_testkit::scripted_kafka::{self, ScriptedBroker};

use crate::kafka::{cluster_config, runtime};

#[test]
fn a_member_assignment_claiming_2_31_topics_fails_that_member_only() {
    let rt = runtime();
    let broker = rt.block_on(ScriptedBroker::builder().hostile_assignment().start());
    let scraper =
        pipescope::kafka::scraper("local", &cluster_config(&broker.bootstrap(), "")).unwrap();
    let mut previous = None;
    for scrape in 0..2 {
        let state = rt.block_on(scraper.scrape(&SystemClock, previous.as_ref()));
        assert_eq!(state.error, None, "scrape {scrape}");
        let app = state.group("payments-app").unwrap();
        let members = &app.description.as_ref().unwrap().members;
        let m1 = members.iter().find(|m| m.member_id == "m-1").unwrap();
        assert_eq!(m1.assignment_error, None, "scrape {scrape}");
        assert_eq!(m1.assignment[0].partitions, vec![0]);
        let m2 = members.iter().find(|m| m.member_id == "m-2").unwrap();
        let error = m2.assignment_error.clone().unwrap();
        assert!(
            error.contains("cannot decode the assignment (version 0)")
                && error.contains("length 2147483647 exceeds the 0 bytes left"),
            "scrape {scrape}: {error}"
        );
        assert!(m2.assignment.is_empty());
        // The rest of the group stands.
        assert_eq!(app.offsets.as_ref().unwrap().len(), 2, "scrape {scrape}");
        previous = Some(state);
    }
    assert_eq!(broker.requests(ApiKey::DescribeGroups), 2);
}

#[test]
fn a_metadata_answer_claiming_2_32_brokers_fails_that_scrape_and_the_next_works() {
    let rt = runtime();
    let broker = rt.block_on(ScriptedBroker::builder().hostile_metadata(1).start());
    let scraper =
        pipescope::kafka::scraper("local", &cluster_config(&broker.bootstrap(), "")).unwrap();
    let failed = rt.block_on(scraper.scrape(&SystemClock, None));
    let error = failed.error.clone().unwrap();
    assert!(
        error.contains("Metadata") && error.contains("exceeds the 0 bytes left"),
        "{error}"
    );
    // The same scraper (and its connection) scrapes the next answer in full.
    let state = rt.block_on(scraper.scrape(&SystemClock, Some(&failed)));
    assert_eq!(state.error, None);
    let topic = state.topic(scripted_kafka::TOPIC).unwrap();
    assert_eq!(topic.partitions[1].latest, Ok(scripted_kafka::LATEST[1]));
    assert!(state.group("payments-app").unwrap().description.is_ok());
    assert!(broker.requests(ApiKey::Metadata) >= 2);
}
