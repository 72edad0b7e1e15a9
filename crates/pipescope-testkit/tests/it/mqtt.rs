use std::time::{Duration, Instant};

use pipescope_testkit::{Mosquitto, MosquittoOptions};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

fn client(broker: &Mosquitto, id: &str) -> (Client, rumqttc::Connection) {
    let mut options = MqttOptions::new(id, "127.0.0.1", broker.port);
    options.set_keep_alive(Duration::from_secs(10));
    options.set_max_packet_size(1 << 20, 1 << 20);
    Client::new(options, 1_000)
}

#[test]
fn ten_thousand_messages_published_are_all_received() {
    let broker = Mosquitto::start();
    let (subscriber, mut sub_conn) = client(&broker, "sub");
    subscriber.subscribe("test/#", QoS::AtLeastOnce).unwrap();
    // Wait for SUBACK before publishing, so no message precedes the subscription.
    for event in sub_conn.iter() {
        if let Event::Incoming(Packet::SubAck(_)) = event.unwrap() {
            break;
        }
    }
    let receiver = std::thread::spawn(move || {
        let mut received = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        for event in sub_conn.iter() {
            if let Event::Incoming(Packet::Publish(_)) = event.expect("subscriber connection") {
                received += 1;
                if received == 10_000 {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "only {received} messages arrived"
            );
        }
        received
    });
    let (publisher, mut pub_conn) = client(&broker, "pub");
    let sender = std::thread::spawn(move || {
        for i in 0..10_000 {
            publisher
                .publish(
                    format!("test/{}", i % 10),
                    QoS::AtLeastOnce,
                    false,
                    i.to_string(),
                )
                .unwrap();
        }
        publisher
    });
    // Drive the publisher's connection until all its PUBACKs are in.
    let mut acked = 0;
    for event in pub_conn.iter() {
        if let Event::Incoming(Packet::PubAck(_)) = event.expect("publisher connection") {
            acked += 1;
            if acked == 10_000 {
                break;
            }
        }
    }
    sender.join().unwrap();
    assert_eq!(receiver.join().unwrap(), 10_000);
}

#[test]
fn sys_messages_received_moves() {
    let broker = Mosquitto::start();
    let (client, mut conn) = client(&broker, "sys-reader");
    client
        .subscribe("$SYS/broker/messages/received", QoS::AtMostOnce)
        .unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    for event in conn.iter() {
        if let Event::Incoming(Packet::Publish(p)) = event.unwrap() {
            let text = String::from_utf8(p.payload.to_vec()).unwrap();
            values.push(text.trim().parse::<u64>().expect("a number"));
            // Our own traffic (CONNECT, SUBSCRIBE, PINGREQ...) moves the counter.
            if values.len() >= 2 && values.last() > values.first() {
                break;
            }
            client
                .publish("noise", QoS::AtMostOnce, false, "x")
                .unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "$SYS counter did not move: {values:?}"
        );
    }
    assert!(values.last() > values.first(), "{values:?}");
}

#[test]
fn password_listener_refuses_wrong_credentials() {
    let broker = Mosquitto::start_with(MosquittoOptions {
        credentials: Some(("alice".into(), "wonderland".into())),
        ..Default::default()
    });
    let connack_code = |password: &str| {
        let mut options = MqttOptions::new(format!("c-{password}"), "127.0.0.1", broker.port);
        options.set_credentials("alice", password);
        let (_client, mut conn) = Client::new(options, 10);
        match conn.iter().next().unwrap() {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => format!("{:?}", ack.code),
            Ok(other) => panic!("unexpected first event {other:?}"),
            Err(e) => format!("{e}"),
        }
    };
    assert_eq!(connack_code("wonderland"), "Success");
    let refused = connack_code("wrong");
    assert!(
        refused.contains("NotAuthorized") || refused.contains("BadUserNamePassword"),
        "{refused}"
    );
}

#[test]
fn tls_listener_serves_the_generated_certificate() {
    let broker = Mosquitto::start_with(MosquittoOptions {
        tls: true,
        ..Default::default()
    });
    let ca = broker.ca.as_ref().unwrap();
    let ca_pem = std::fs::read(&ca.ca_cert).unwrap();
    let mut options = MqttOptions::new("tls-client", "localhost", broker.tls_port.unwrap());
    options.set_transport(rumqttc::Transport::tls(ca_pem, None, None));
    let (_client, mut conn) = Client::new(options, 10);
    match conn.iter().next().unwrap() {
        Ok(Event::Incoming(Packet::ConnAck(ack))) => {
            assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success)
        }
        other => panic!("TLS connect failed: {other:?}"),
    }
}

#[test]
fn restart_keeps_the_port() {
    let mut broker = Mosquitto::start();
    let port = broker.port;
    broker.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    broker.restart();
    assert_eq!(broker.port, port);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}
