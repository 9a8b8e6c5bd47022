//! Which cut-offs a leak-free training uses, and over which window its targets run.
//!
//! With `as_of` the last day of history, `H` the horizon and `w` the target window:
//! - the **holdout** (a backtest) is the most recent complete window before `as_of`: features at
//!   the cut-off `as_of − w`, target the spend in (`as_of − w`, `as_of`];
//! - the backtest's model learns from cut-offs whose target windows end by the holdout's
//!   cut-off (`as_of − 2w`, then one step earlier each), so nothing it learns from is later
//!   than what it is tested on;
//! - the stored model learns from the same ladder moved forward by `w` (`as_of − w`, …): its
//!   newest targets end at `as_of`.
//!
//! A cut-off is used only with at least one step of history before it. `w` is the horizon when
//! the history holds three of them (one to learn from, one to learn, one to test); a shorter
//! history gets the longest window that fits three times, and targets are extrapolated to the
//! horizon by the count model's own expected-purchase curve (see `snapshot::Snapshot::scale`).

use crate::engine::error::{EngineError, Result};

use super::date_text;
use super::options::LogOptions;

/// Shortest target window: a week (a shorter one says little about next year's spend).
pub const MIN_WINDOW_DAYS: i32 = 7;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub as_of: i32,
    pub horizon: i32,
    pub window: i32,
    pub step: i32,
    /// The backtest's cut-off: `as_of − window`.
    pub holdout_cutoff: i32,
    /// Cut-offs the backtest's model learns from, newest first.
    pub backtest_cutoffs: Vec<i32>,
    /// Cut-offs the stored model learns from, newest first.
    pub training_cutoffs: Vec<i32>,
}

impl Plan {
    /// The plan for a log whose first purchase is on `first_day`, trained `as_of`.
    pub fn new(first_day: i32, as_of: i32, o: &LogOptions) -> Result<Plan> {
        let span = as_of - first_day + 1;
        let window = o
            .window_days
            .unwrap_or_else(|| o.horizon_days.min(span / 3));
        if window < MIN_WINDOW_DAYS {
            return Err(too_short(first_day, as_of, span));
        }
        let step = o
            .cutoff_step_days
            .unwrap_or_else(|| (window + 2) / 3)
            .max(1);
        let ladder = |newest: i32| -> Vec<i32> {
            (0..o.cutoffs as i32)
                .map(|k| newest - k * step)
                .take_while(|c| c - first_day >= step)
                .collect()
        };
        let holdout_cutoff = as_of - window;
        let plan = Plan {
            as_of,
            horizon: o.horizon_days,
            window,
            step,
            holdout_cutoff,
            backtest_cutoffs: ladder(holdout_cutoff - window),
            training_cutoffs: ladder(holdout_cutoff),
        };
        if plan.backtest_cutoffs.is_empty() {
            return Err(too_short(first_day, as_of, span).with_detail(format!(
                "A {window}-day target window needs {} days of history: a cut-off with {step} days of history before it, its window, and the holdout window.",
                2 * window + step
            )));
        }
        Ok(plan)
    }

    /// The plan as stored in the model's metrics (dates as ISO text).
    pub fn to_json(&self) -> serde_json::Value {
        let dates = |days: &[i32]| days.iter().map(|d| date_text(*d)).collect::<Vec<_>>();
        serde_json::json!({
            "as_of": date_text(self.as_of),
            "horizon_days": self.horizon,
            "window_days": self.window,
            "cutoff_step_days": self.step,
            "holdout_cutoff": date_text(self.holdout_cutoff),
            "backtest_cutoffs": dates(&self.backtest_cutoffs),
            "training_cutoffs": dates(&self.training_cutoffs),
            "extrapolated": self.window < self.horizon,
        })
    }
}

fn too_short(first_day: i32, as_of: i32, span: i32) -> EngineError {
    EngineError::insufficient_data(format!(
        "the log's history from {} to as_of {} ({span} days) is too short to learn from and backtest",
        date_text(first_day),
        date_text(as_of)
    ))
    .with_hint(format!(
        "train_from_log needs at least {} days of history (three windows of {MIN_WINDOW_DAYS} days); pass a later as_of or a shorter option \"window_days\".",
        3 * MIN_WINDOW_DAYS
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::error::ErrorKind;

    #[test]
    fn a_long_history_uses_the_horizon_as_window() {
        // 1,000 days of history, a 90-day horizon
        let o = LogOptions {
            horizon_days: 90,
            ..LogOptions::default()
        };
        let p = Plan::new(0, 999, &o).unwrap();
        assert_eq!((p.window, p.step, p.holdout_cutoff), (90, 30, 909));
        assert_eq!(p.backtest_cutoffs, vec![819, 789, 759, 729, 699, 669]);
        assert_eq!(p.training_cutoffs, vec![909, 879, 849, 819, 789, 759]);
        // every backtest target window ends by the holdout cut-off
        assert!(p
            .backtest_cutoffs
            .iter()
            .all(|c| c + p.window <= p.holdout_cutoff));
    }

    #[test]
    fn a_short_history_shortens_the_window_to_a_third() {
        // CDNOW's calibration: 1997-01-01 .. 1997-09-30 is 273 days, a 273-day horizon
        let o = LogOptions {
            horizon_days: 273,
            ..LogOptions::default()
        };
        let p = Plan::new(9_862, 10_134, &o).unwrap();
        assert_eq!(p.window, 91);
        assert_eq!(p.step, 31);
        assert_eq!(date_text(p.holdout_cutoff), "1997-07-01");
        // cut-offs need a step of history: 1997-04-01 and 1997-03-01, not 1997-01-29
        assert_eq!(p.backtest_cutoffs, vec![9_952, 9_921]);
        assert_eq!(p.training_cutoffs.len(), 5);
        assert_eq!(p.to_json()["extrapolated"], true);
    }

    #[test]
    fn too_short_a_history_is_refused() {
        let err = Plan::new(0, 19, &LogOptions::default()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        assert!(err.message.contains("20 days"), "{}", err.message);
        // a window given that leaves no backtest cut-off
        let o = LogOptions {
            window_days: Some(50),
            ..LogOptions::default()
        };
        let err = Plan::new(0, 110, &o).unwrap_err();
        assert!(err.detail.unwrap().contains("117 days"));
    }
}
