//! Fault injection for testing monitors (docs/pipeline.md): a part drops or duplicates a given
//! fraction of what it carries, seeded so a run can be repeated, and reports exactly which
//! messages it touched, so a monitor's loss and duplicate counts can be checked against it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Carried as usual.
    Pass,
    /// Acknowledged upstream and not written: lost on purpose.
    Drop,
    /// Written twice.
    Duplicate,
}

/// Why a fault plan was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultPlanError {
    #[error(
        "{flag} must be a fraction between 0 and 1, got {value} — for example {flag} 0.05 for 5 %"
    )]
    NotAFraction { flag: &'static str, value: f64 },
    #[error(
        "--inject-drop {drop} and --inject-duplicate {duplicate} add up to more than 1 — lower one of them"
    )]
    Over { drop: f64, duplicate: f64 },
}

/// Seeded decisions, one per message in the order the part handles them: the same seed and the
/// same order give the same faults.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    drop: f64,
    duplicate: f64,
    rng: StdRng,
}

impl FaultPlan {
    /// A plan dropping a `drop` fraction and duplicating a `duplicate` fraction (disjoint).
    pub fn new(drop: f64, duplicate: f64, seed: u64) -> Result<Self, FaultPlanError> {
        for (flag, value) in [("--inject-drop", drop), ("--inject-duplicate", duplicate)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultPlanError::NotAFraction { flag, value });
            }
        }
        if drop + duplicate > 1.0 {
            return Err(FaultPlanError::Over { drop, duplicate });
        }
        Ok(Self {
            drop,
            duplicate,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// True when the plan never injects anything.
    pub fn is_off(&self) -> bool {
        self.drop == 0.0 && self.duplicate == 0.0
    }

    /// The fault for the next message.
    pub fn decide(&mut self) -> Fault {
        if self.is_off() {
            return Fault::Pass;
        }
        // One draw per message whatever the fractions, so changing one fraction does not
        // shift the decisions of later messages.
        let draw: f64 = self.rng.random();
        if draw < self.drop {
            Fault::Drop
        } else if draw < self.drop + self.duplicate {
            Fault::Duplicate
        } else {
            Fault::Pass
        }
    }
}

/// One line of the injection report (JSON lines): which message got which fault. `stream` is
/// the stream its sequence number counts in (docs/trace-headers.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultReport<'a> {
    pub fault: Fault,
    pub origin: &'a str,
    pub stream: &'a str,
    pub seq: u64,
    pub topic: &'a str,
    pub partition: i32,
}

impl FaultReport<'_> {
    /// The report line, without its newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a fault report always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(plan: &mut FaultPlan, n: usize) -> Vec<Fault> {
        (0..n).map(|_| plan.decide()).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
        let a = faults(&mut FaultPlan::new(0.1, 0.1, 7).unwrap(), 1_000);
        let b = faults(&mut FaultPlan::new(0.1, 0.1, 7).unwrap(), 1_000);
        let c = faults(&mut FaultPlan::new(0.1, 0.1, 8).unwrap(), 1_000);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn fractions_are_kept_within_sampling_error() {
        let mut plan = FaultPlan::new(0.05, 0.02, 7).unwrap();
        let all = faults(&mut plan, 100_000);
        let count = |f| all.iter().filter(|x| **x == f).count();
        // Binomial standard deviations: about 69 and 44; allow four.
        assert!(
            (4_724..=5_276).contains(&count(Fault::Drop)),
            "{}",
            count(Fault::Drop)
        );
        assert!(
            (1_824..=2_176).contains(&count(Fault::Duplicate)),
            "{}",
            count(Fault::Duplicate)
        );
    }

    #[test]
    fn off_by_default_and_the_extremes_are_exact() {
        let mut off = FaultPlan::new(0.0, 0.0, 1).unwrap();
        assert!(off.is_off());
        assert!(faults(&mut off, 100).iter().all(|f| *f == Fault::Pass));
        let mut all = FaultPlan::new(1.0, 0.0, 1).unwrap();
        assert!(faults(&mut all, 100).iter().all(|f| *f == Fault::Drop));
        let mut twice = FaultPlan::new(0.0, 1.0, 1).unwrap();
        assert!(
            faults(&mut twice, 100)
                .iter()
                .all(|f| *f == Fault::Duplicate)
        );
    }

    #[test]
    fn a_drop_fraction_leaves_the_duplicate_decisions_of_the_rest_alone() {
        let only_dup = faults(&mut FaultPlan::new(0.0, 0.1, 3).unwrap(), 500);
        let both = faults(&mut FaultPlan::new(0.1, 0.1, 3).unwrap(), 500);
        // Same draws: wherever `both` passes, `only_dup` passes too.
        for (a, b) in only_dup.iter().zip(&both) {
            if *b == Fault::Pass {
                assert_eq!(*a, Fault::Pass);
            }
        }
    }

    #[test]
    fn bad_fractions_say_which_flag_and_what_to_write() {
        let e = FaultPlan::new(1.5, 0.0, 1).unwrap_err();
        assert!(
            e.to_string().contains("--inject-drop must be a fraction"),
            "{e}"
        );
        let e = FaultPlan::new(0.0, f64::NAN, 1).unwrap_err();
        assert!(e.to_string().contains("--inject-duplicate"), "{e}");
        let e = FaultPlan::new(0.6, 0.6, 1).unwrap_err();
        assert!(e.to_string().contains("add up to more than 1"), "{e}");
    }

    #[test]
    fn a_report_line_names_the_message() {
        let line = FaultReport {
            fault: Fault::Drop,
            origin: "sim-1",
            stream: "machine/a/b",
            seq: 41,
            topic: "machine.data",
            partition: 2,
        }
        .to_line();
        assert_eq!(
            line,
            r#"{"fault":"drop","origin":"sim-1","stream":"machine/a/b","seq":41,"topic":"machine.data","partition":2}"#
        );
    }
}
