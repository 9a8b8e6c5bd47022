//! Value tiers: named bands of the predicted value (VIP / high / medium / low by default).
//!
//! A tier scheme is an ordered list, best first; each tier but the last has a lower bound and a
//! customer belongs to the first tier whose bound their prediction reaches. Bounds come either
//! from shares of the training population (quantiles of the training-set predictions) or are
//! given as absolute thresholds.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{EngineError, Result};
use super::stats::{quantile_sorted, quantile_sorted_counted};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    /// Lowest prediction in this tier; `None` for the last (catch-all) tier.
    pub min: Option<f64>,
    /// Share of the training population the tier was cut for, when cut by shares.
    pub share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierScheme {
    pub tiers: Vec<Tier>,
}

/// What the user asked for in `options->'tiers'`.
#[derive(Debug, Clone, PartialEq)]
pub enum TierSpec {
    /// `[{"name": "VIP", "share": 0.05}, …]`, best first, shares summing to 1.
    Shares(Vec<(String, f64)>),
    /// `[{"name": "gold", "min": 500}, …, {"name": "bronze"}]`, best first, decreasing bounds,
    /// the last without a bound.
    Thresholds(Vec<(String, Option<f64>)>),
}

impl Default for TierSpec {
    fn default() -> Self {
        TierSpec::Shares(vec![
            ("VIP".into(), 0.05),
            ("high".into(), 0.15),
            ("medium".into(), 0.30),
            ("low".into(), 0.50),
        ])
    }
}

fn tier_error(message: impl Into<String>) -> EngineError {
    EngineError::invalid_parameter(message).with_hint(
        "Give tiers best first, e.g. [{\"name\": \"VIP\", \"share\": 0.05}, …, {\"name\": \"low\", \"share\": 0.5}] with shares summing to 1, or [{\"name\": \"gold\", \"min\": 500}, …, {\"name\": \"bronze\"}] with decreasing bounds.",
    )
}

/// One entry of the `tiers` array, checked on its own (the scheme is checked as a whole later).
struct TierEntry {
    name: String,
    share: Option<f64>,
    min: Option<f64>,
}

impl TierEntry {
    /// Reads entry `i` (0-based). `earlier` are the names of the entries before it, which this
    /// one must not repeat. Checks run in the order the messages are documented in: object, keys,
    /// name, duplicate name, then the numbers.
    fn parse(i: usize, item: &Value, earlier: &[String]) -> Result<TierEntry> {
        let obj = item
            .as_object()
            .ok_or_else(|| tier_error(format!("tier {} is not a JSON object", i + 1)))?;
        for key in obj.keys() {
            if !["name", "share", "min"].contains(&key.as_str()) {
                return Err(tier_error(format!(
                    "unknown key \"{key}\" in tier {}; valid keys are name, share, min",
                    i + 1
                )));
            }
        }
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| tier_error(format!("tier {} has no \"name\" string", i + 1)))?;
        if earlier.iter().any(|n| n == name) {
            return Err(tier_error(format!("tier name \"{name}\" appears twice")));
        }
        Ok(TierEntry {
            name: name.to_string(),
            share: tier_number(obj, "share", name)?,
            min: tier_number(obj, "min", name)?,
        })
    }
}

/// The finite number under `key` of the tier called `name`; absent and `null` both mean none.
fn tier_number(obj: &Map<String, Value>, key: &str, name: &str) -> Result<Option<f64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| tier_error(format!("\"{key}\" of tier \"{name}\" must be a number"))),
    }
}

impl TierSpec {
    /// Parses `options->'tiers'`: every entry is checked first, then whether the scheme is cut
    /// by shares or by bounds, then that scheme as a whole.
    pub fn from_json(value: &Value) -> Result<TierSpec> {
        let items = value
            .as_array()
            .ok_or_else(|| tier_error("option \"tiers\" must be a JSON array"))?;
        if items.len() < 2 {
            return Err(tier_error("option \"tiers\" needs at least two tiers"));
        }
        let mut names: Vec<String> = Vec::new();
        let mut shares = Vec::new();
        let mut mins = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let entry = TierEntry::parse(i, item, &names)?;
            names.push(entry.name);
            shares.push(entry.share);
            mins.push(entry.min);
        }
        let any_share = shares.iter().any(Option::is_some);
        let any_min = mins.iter().any(Option::is_some);
        if any_share && any_min {
            return Err(tier_error(
                "tiers mix \"share\" and \"min\"; use one or the other",
            ));
        }
        if any_share {
            Self::from_shares(names, shares)
        } else if any_min {
            Self::from_thresholds(names, mins)
        } else {
            Err(tier_error("tiers need a \"share\" or a \"min\""))
        }
    }

    /// Tiers cut by shares: every tier has a share in (0, 1], and the shares sum to 1.
    fn from_shares(names: Vec<String>, shares: Vec<Option<f64>>) -> Result<TierSpec> {
        let mut out = Vec::new();
        for (name, share) in names.into_iter().zip(shares) {
            let share =
                share.ok_or_else(|| tier_error(format!("tier \"{name}\" has no \"share\"")))?;
            if share <= 0.0 || share > 1.0 {
                return Err(tier_error(format!(
                    "share of tier \"{name}\" must be in (0, 1], got {share}"
                )));
            }
            out.push((name, share));
        }
        let total: f64 = out.iter().map(|(_, s)| s).sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(tier_error(format!("tier shares sum to {total}, not 1")));
        }
        Ok(TierSpec::Shares(out))
    }

    /// Tiers cut at absolute bounds: strictly decreasing, on every tier but the last, which
    /// takes everyone below the others.
    fn from_thresholds(names: Vec<String>, mins: Vec<Option<f64>>) -> Result<TierSpec> {
        let last = names.len() - 1;
        let mut out = Vec::new();
        let mut previous = f64::INFINITY;
        for (i, (name, min)) in names.into_iter().zip(mins).enumerate() {
            match (i == last, min) {
                (false, None) => {
                    return Err(tier_error(format!(
                        "tier \"{name}\" has no \"min\"; only the last tier may omit it"
                    )))
                }
                (true, Some(_)) => {
                    return Err(tier_error(format!(
                        "the last tier \"{name}\" takes everyone below the others and must not have a \"min\""
                    )))
                }
                (false, Some(m)) if m >= previous => {
                    return Err(tier_error(format!(
                        "tier bounds must decrease, but \"{name}\" has min {m} after {previous}"
                    )))
                }
                (false, Some(m)) => previous = m,
                (true, None) => {}
            }
            out.push((name, min));
        }
        Ok(TierSpec::Thresholds(out))
    }

    /// Cuts the scheme. `predictions` are the model's predictions for the training population.
    pub fn fit(&self, predictions: &[f64]) -> TierScheme {
        match self {
            TierSpec::Thresholds(items) => TierScheme {
                tiers: items
                    .iter()
                    .map(|(name, min)| Tier {
                        name: name.clone(),
                        min: *min,
                        share: None,
                    })
                    .collect(),
            },
            TierSpec::Shares(items) => {
                let mut sorted = predictions.to_vec();
                sorted.sort_by(f64::total_cmp);
                Self::shares_scheme(items, |q| quantile_sorted(&sorted, q))
            }
        }
    }

    /// [`TierSpec::fit`] for predictions that each stand for `counts[i]` customers (grouped
    /// input): the same cut points as for the expanded predictions.
    pub fn fit_counted(&self, predictions: &[f64], counts: &[f64]) -> TierScheme {
        match self {
            TierSpec::Thresholds(_) => self.fit(predictions),
            TierSpec::Shares(items) => {
                let mut sorted: Vec<(f64, f64)> = predictions
                    .iter()
                    .copied()
                    .zip(counts.iter().copied())
                    .collect();
                sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
                Self::shares_scheme(items, |q| quantile_sorted_counted(&sorted, q))
            }
        }
    }

    /// Tiers cut at the quantiles of the shares, best tier first.
    fn shares_scheme(items: &[(String, f64)], quantile: impl Fn(f64) -> f64) -> TierScheme {
        let mut cumulative = 0.0;
        let last = items.len() - 1;
        let tiers = items
            .iter()
            .enumerate()
            .map(|(i, (name, share))| {
                cumulative += share;
                let min = (i < last).then(|| quantile(1.0 - cumulative));
                Tier {
                    name: name.clone(),
                    min,
                    share: Some(*share),
                }
            })
            .collect();
        TierScheme { tiers }
    }
}

impl TierScheme {
    /// The tier of a prediction: the first (best) tier whose bound it reaches.
    #[inline]
    pub fn assign(&self, prediction: f64) -> &str {
        for tier in &self.tiers {
            match tier.min {
                Some(min) if prediction < min => continue,
                _ => return &tier.name,
            }
        }
        // validate() guarantees a last tier without a bound; keep a safe answer regardless
        self.tiers.last().map(|t| t.name.as_str()).unwrap_or("")
    }

    pub fn validate(&self) -> Result<()> {
        let ok = self.tiers.len() >= 2
            && self.tiers.last().is_some_and(|t| t.min.is_none())
            && self.tiers[..self.tiers.len() - 1]
                .iter()
                .all(|t| t.min.is_some_and(f64::is_finite));
        if ok {
            Ok(())
        } else {
            Err(EngineError::corrupted("tier scheme is invalid"))
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(&self.tiers).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_tiers_cut_at_the_95th_80th_and_50th_percentiles() {
        // predictions 1..=100: numpy.quantile(range(1,101), [.95, .8, .5]) = [95.05, 80.2, 50.5]
        let predictions: Vec<f64> = (1..=100).map(f64::from).collect();
        let scheme = TierSpec::default().fit(&predictions);
        let mins: Vec<Option<f64>> = scheme.tiers.iter().map(|t| t.min).collect();
        assert!((mins[0].unwrap() - 95.05).abs() < 1e-9);
        assert!((mins[1].unwrap() - 80.2).abs() < 1e-9);
        assert!((mins[2].unwrap() - 50.5).abs() < 1e-9);
        assert_eq!(mins[3], None);
        let counts = |name: &str| {
            predictions
                .iter()
                .filter(|&&p| scheme.assign(p) == name)
                .count()
        };
        assert_eq!(counts("VIP"), 5);
        assert_eq!(counts("high"), 15);
        assert_eq!(counts("medium"), 30);
        assert_eq!(counts("low"), 50);
        scheme.validate().unwrap();
    }

    #[test]
    fn thresholds_are_used_as_given() {
        let spec = TierSpec::from_json(&json!([
            {"name": "gold", "min": 500},
            {"name": "silver", "min": 100},
            {"name": "bronze"}
        ]))
        .unwrap();
        let scheme = spec.fit(&[]);
        assert_eq!(scheme.assign(500.0), "gold");
        assert_eq!(scheme.assign(499.9), "silver");
        assert_eq!(scheme.assign(100.0), "silver");
        assert_eq!(scheme.assign(-3.0), "bronze");
    }

    #[test]
    fn malformed_tier_options_are_refused_with_reasons() {
        let cases = [
            (json!({"VIP": 0.1}), "must be a JSON array"),
            (json!([{"name": "a", "share": 1.0}]), "at least two tiers"),
            (
                json!([{"name": "a", "share": 0.5}, {"name": "b", "share": 0.4}]),
                "sum to 0.9",
            ),
            (
                json!([{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}]),
                "appears twice",
            ),
            (
                json!([{"name": "a", "min": 1}, {"name": "b", "min": 5}, {"name": "c"}]),
                "must decrease",
            ),
            (
                json!([{"name": "a", "min": 1}, {"name": "b", "min": 0}]),
                "must not have a \"min\"",
            ),
            (
                json!([{"name": "a", "share": 0.5}, {"name": "b", "min": 1}]),
                "mix",
            ),
            (
                json!([{"name": "a", "share": "x"}, {"name": "b"}]),
                "must be a number",
            ),
            (
                json!([{"name": "a", "weight": 1}, {"name": "b"}]),
                "unknown key \"weight\"",
            ),
        ];
        for (value, expected) in cases {
            let err = TierSpec::from_json(&value).unwrap_err();
            assert!(err.message.contains(expected), "{value}: {}", err.message);
        }
    }
}
