//! The machines windower.

use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use pipescope_core::pipeline::window::{MachineWindow, Pushed, SensorReading, Windower};
use pipescope_core::{Clock, ManualClock};

fn check(window: &MachineWindow) {
    assert!(window.window_start <= window.window_end, "{window:?}");
    assert!(window.count > 0, "{window:?}");
    assert_eq!(
        window.count,
        window.sensors.values().map(|s| s.count).sum::<u64>(),
        "{window:?}"
    );
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let size_ms = u64::from(u.int_in_range(1u32..=100_000)?);
    let lateness_ms = if u.ratio(1, 8)? {
        u64::MAX
    } else {
        u64::from(u.int_in_range(0u32..=50_000)?)
    };
    let clock = ManualClock::at(u.arbitrary()?);
    let mut w = Windower::with_clock(size_ms, lateness_ms, Arc::new(clock.clone()));
    if u.arbitrary()? {
        w = w.with_max_ahead(u.arbitrary()?);
    }
    let (mut late, mut future) = (0u64, 0u64);
    let mut offsets = [0i64; 4];
    while !u.is_empty() {
        let before = w.watermark();
        match u.int_in_range(0u8..=9)? {
            0..=4 => {
                let partition = u.int_in_range(0i32..=3)?;
                // mostly near the clock, sometimes anywhere
                let now = clock.now_millis();
                let ts = if u.ratio(1, 4)? {
                    u.arbitrary()?
                } else {
                    now.saturating_add_signed(i64::from(u.arbitrary::<i16>()?) * 100)
                };
                let reading = SensorReading {
                    line: "l".into(),
                    machine: format!("m{}", u.int_in_range(0u8..=3)?),
                    sensor: format!("s{}", u.int_in_range(0u8..=2)?),
                    value: f64::from_bits(u.arbitrary()?),
                    ts,
                };
                let p = partition as usize;
                offsets[p] = if u.ratio(1, 16)? {
                    u.arbitrary()?
                } else {
                    offsets[p].saturating_add(1)
                };
                match w.push(&reading, partition, offsets[p]) {
                    Pushed::Accepted => {}
                    Pushed::Late => late += 1,
                    Pushed::Future => {
                        future += 1;
                        assert_eq!(w.watermark(), before, "a reading from the future moved it");
                    }
                }
            }
            5 => w.assign(u.int_in_range(0i32..=3)?),
            6 => w.drop_partition(u.int_in_range(0i32..=3)?),
            7 => clock.advance(Duration::from_millis(u64::from(u.arbitrary::<u16>()?))),
            8 => {
                for window in w.drain_closed() {
                    check(&window);
                }
            }
            _ => {
                let _ = w.safe_offsets();
            }
        }
        if let Some(before) = before {
            assert!(w.watermark() >= Some(before), "the watermark went back");
        }
    }
    assert_eq!((w.late(), w.future()), (late, future));
    let open = w.open_windows();
    let all = w.drain_all();
    assert_eq!(all.len(), open);
    all.iter().for_each(check);
    assert_eq!(w.open_windows(), 0);
    Ok(())
}

/// The machines windower (pipescope-core pipeline::window) driven by arbitrary operations:
/// readings with any event time (u64::MAX and 0 included) and value (NaN included) on a few
/// partitions, assignments, revocations, clock steps and drains. It must not panic, and:
/// the watermark never goes back, a reading refused as from the future leaves it where it
/// was, every reading is accepted, late or from the future (counted), every emitted window is
/// well formed, and the open-window count matches what a final drain emits.
pub fn windower(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}
