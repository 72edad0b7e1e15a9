use pipescope_testkit::Influxd;

#[test]
fn influxd_writes_and_queries_back_and_keeps_data_across_restart() {
    let mut influxd = Influxd::start();
    influxd.query("", "CREATE DATABASE datapipes");
    let written = ureq::post(format!("{}/write", influxd.url()))
        .query("db", "datapipes")
        .send("calls,region=north count=3i 1700000000000000000\ncalls,region=south count=4i 1700000000000000000\n")
        .unwrap();
    assert_eq!(written.status(), 204);
    let sum = |influxd: &Influxd| -> i64 {
        let answer = influxd.query("datapipes", "SELECT sum(count) FROM calls");
        let json: serde_json::Value = serde_json::from_str(&answer).unwrap();
        json["results"][0]["series"][0]["values"][0][1]
            .as_i64()
            .unwrap_or_else(|| panic!("unexpected answer {answer}"))
    };
    assert_eq!(sum(&influxd), 7);
    influxd.restart();
    assert_eq!(sum(&influxd), 7, "data survives a restart");
}
