//! The CLV models' options: which columns of the RFM summary they read, the horizon and
//! discounting of `customer_value(row)`, the fit's penalty and iterations, grouped input.

use serde_json::{Map, Value};

use crate::engine::clv::model::CountModel;
use crate::engine::clv::model::MAX_HORIZON_DAYS;
use crate::engine::error::{EngineError, Result};
use crate::engine::models::Algorithm;
use crate::engine::options::values::{choice, integer, number, option_error};

/// The columns of an RFM summary the CLV models read (`options->'columns'` renames them).
#[derive(Debug, Clone, PartialEq)]
pub struct RfmColumns {
    pub frequency: String,
    pub recency: String,
    pub t: String,
    pub monetary_value: String,
    /// Grouped input: the column holding how many customers share each row's summary.
    pub count: Option<String>,
}

impl Default for RfmColumns {
    fn default() -> Self {
        RfmColumns {
            frequency: "frequency".into(),
            recency: "recency".into(),
            t: "t".into(),
            monetary_value: "monetary_value".into(),
            count: None,
        }
    }
}

/// Settings of the CLV models.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvOptions {
    pub columns: RfmColumns,
    /// Horizon of `customer_value(row)` in the summary's time unit.
    pub horizon: f64,
    pub discount_rate: f64,
    pub unit_days: f64,
    pub penalizer: f64,
    pub max_iterations: usize,
    pub count_model: Algorithm,
    /// Read the summary grouped into distinct rows with counts (an exact, weighted fit):
    /// None = when the source is a Citus distributed table and there is no target.
    pub group: Option<bool>,
}

impl Default for ClvOptions {
    fn default() -> Self {
        ClvOptions {
            columns: RfmColumns::default(),
            horizon: 52.0,
            discount_rate: 0.1,
            unit_days: 7.0,
            penalizer: 0.0,
            max_iterations: 5_000,
            count_model: Algorithm::BgNbd,
            group: None,
        }
    }
}

impl ClvOptions {
    /// The option keys every CLV model accepts, in the order error hints list them.
    pub const KEYS: &'static [&'static str] = &[
        "max_iterations",
        "group",
        "deploy",
        "metric",
        "tiers",
        "columns",
        "horizon",
        "penalizer",
        "time_unit_days",
    ];
    /// The further keys of the combined `clv` model.
    pub const COMBINED_KEYS: &'static [&'static str] = &["discount_rate", "count_model"];

    pub fn from_options(map: &Map<String, Value>) -> Result<ClvOptions> {
        let mut o = ClvOptions::default();
        if let Some(h) = number(map, "horizon", 0.0, 1e6, "a number of time units ≥ 0")? {
            o.horizon = h;
        }
        let rate = "a yearly rate from 0 to 10 (0.1 = 10 %)";
        if let Some(d) = number(map, "discount_rate", 0.0, 10.0, rate)? {
            o.discount_rate = d;
        }
        let unit = "the length of the summary's time unit in days (7 for weeks)";
        if let Some(u) = number(map, "time_unit_days", 1e-6, 1e6, unit)? {
            o.unit_days = u;
        }
        if let Some(p) = number(map, "penalizer", 0.0, 1e6, "a non-negative number")? {
            o.penalizer = p;
        }
        if let Some(n) = integer(map, "max_iterations", 1, 1_000_000)? {
            o.max_iterations = n as usize;
        }
        let days = o.horizon * o.unit_days;
        if days > MAX_HORIZON_DAYS {
            return Err(EngineError::invalid_parameter(format!(
                "option \"horizon\" of {} time units of {} days is {days} days; at most {MAX_HORIZON_DAYS} days (100 years) are allowed",
                o.horizon, o.unit_days
            )));
        }
        if let Some(v) = map.get("group") {
            o.group = Some(
                v.as_bool()
                    .ok_or_else(|| option_error("group", "true or false", v))?,
            );
        }
        let (count_models, listed) = CountModel::choices();
        if let Some(m) = choice(map, "count_model", &count_models, &listed)? {
            o.count_model = m;
        }
        if let Some(v) = map.get("columns") {
            o.columns = RfmColumns::from_option(v)?;
        }
        Ok(o)
    }
}

impl RfmColumns {
    /// `options->'columns'`: the summary's column for each role.
    fn from_option(v: &Value) -> Result<RfmColumns> {
        let obj = v.as_object().ok_or_else(|| {
            option_error(
                "columns",
                "an object like {\"frequency\": \"x\", \"recency\": \"t_x\", \"t\": \"T\"}",
                v,
            )
        })?;
        let mut c = RfmColumns::default();
        for (role, column) in obj {
            let column = column
                .as_str()
                .ok_or_else(|| option_error("columns", "an object of column names", v))?
                .to_string();
            match role.as_str() {
                "frequency" => c.frequency = column,
                "recency" => c.recency = column,
                "t" => c.t = column,
                "monetary_value" => c.monetary_value = column,
                "count" => c.count = Some(column),
                other => {
                    return Err(EngineError::invalid_parameter(format!(
                        "unknown key \"{other}\" in option \"columns\""
                    ))
                    .with_hint("Valid keys are frequency, recency, t, monetary_value, count."))
                }
            }
        }
        c.check_distinct()?;
        Ok(c)
    }

    /// Each role reads its own column: one column as two roles would misread every row.
    fn check_distinct(&self) -> Result<()> {
        let roles = [
            ("frequency", Some(&self.frequency)),
            ("recency", Some(&self.recency)),
            ("t", Some(&self.t)),
            ("monetary_value", Some(&self.monetary_value)),
            ("count", self.count.as_ref()),
        ];
        for (i, (role, column)) in roles.iter().enumerate() {
            let Some(column) = column else { continue };
            if let Some((other, _)) = roles[..i].iter().find(|(_, c)| *c == Some(column)) {
                return Err(EngineError::invalid_parameter(format!(
                    "option \"columns\" maps both {other} and {role} to column \"{column}\""
                ))
                .with_hint("Each of frequency, recency, t, monetary_value and count needs a column of its own."));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(options: serde_json::Value) -> Result<ClvOptions> {
        ClvOptions::from_options(options.as_object().unwrap())
    }

    #[test]
    fn options_are_read_and_a_horizon_beyond_a_century_is_refused() {
        let o = parse(json!({"horizon": 26, "count_model": "pareto_nbd",
                             "columns": {"t": "T", "count": "n"}}))
        .unwrap();
        assert_eq!((o.horizon, o.count_model), (26.0, Algorithm::ParetoNbd));
        assert_eq!(
            (o.columns.t.as_str(), o.columns.count.as_deref()),
            ("T", Some("n"))
        );
        assert!(parse(json!({"horizon": 5200})).is_ok()); // 100 years of weeks
        let err = parse(json!({"horizon": 1e6, "time_unit_days": 1e6})).unwrap_err();
        assert!(err.message.contains("100 years"), "{}", err.message);
        let err = parse(json!({"columns": {"x": "y"}})).unwrap_err();
        assert!(err.message.contains("unknown key \"x\""), "{}", err.message);
    }
}
