//! What a training reports: the `metrics` jsonb stored with a version, and the predictions'
//! profile for drift.

use serde_json::{json, Value};

use crate::engine::drift::BinProfile;
use crate::engine::metrics::HoldoutMetrics;
use crate::engine::options::TrainOptions;

use super::TrainOutcome;

pub(super) fn profile_of(predictions: &[f64]) -> BinProfile {
    let values: Vec<Option<f64>> = predictions.iter().map(|p| Some(*p)).collect();
    BinProfile::of(&values)
}

pub fn metrics_object(m: &HoldoutMetrics) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("rmse".into(), json!(m.rmse));
    map.insert("mae".into(), json!(m.mae));
    map.insert("r2".into(), json!(m.r2));
    map.insert("spearman".into(), json!(m.spearman));
    map.insert("gini".into(), json!(m.gini));
    map.insert("top_decile_capture".into(), json!(m.top_decile_capture));
    map.insert("decile_mape".into(), json!(m.decile_mape));
    map.insert("total_error_pct".into(), json!(m.total_error_pct));
    if let Some(c) = &m.classification {
        // a classifier: its own keys, and the value metrics that mean something for it
        map.remove("r2");
        map.remove("spearman");
        map.remove("decile_mape");
        map.remove("total_error_pct");
        map.insert("auc".into(), json!(c.auc));
        map.insert("log_loss".into(), json!(c.log_loss));
        map.insert("accuracy".into(), json!(c.accuracy));
        map.insert("f1".into(), json!(c.f1));
        map.insert("positive_rate".into(), json!(c.positive_rate));
        map.insert("calibration".into(), json!(c.calibration));
    }
    map
}

impl TrainOutcome {
    /// The `metrics` jsonb stored with the model.
    pub fn metrics_json(&self, options: &TrainOptions) -> Value {
        let mut map = self
            .metrics
            .as_ref()
            .map(metrics_object)
            .unwrap_or_default();
        map.insert("n_train".into(), json!(self.n_train));
        map.insert("n_test".into(), json!(self.n_test));
        map.insert(
            "dropped_null_target".into(),
            json!(self.dropped_null_target),
        );
        map.insert("selection_metric".into(), json!(options.metric.key()));
        for (k, v) in &self.extra {
            map.insert(k.clone(), v.clone());
        }
        if self.trials.len() > 1 {
            let trials: Vec<Value> = self
                .trials
                .iter()
                .map(|t| {
                    let mut obj = match &t.outcome {
                        Ok(m) => metrics_object(m),
                        Err(e) => {
                            let mut o = serde_json::Map::new();
                            o.insert("error".into(), json!(e.message));
                            o
                        }
                    };
                    obj.insert("algorithm".into(), json!(t.algorithm.name()));
                    if let Some(variant) = &t.variant {
                        obj.insert("variant".into(), json!(variant));
                    }
                    obj.insert(
                        "seconds".into(),
                        json!((t.seconds * 1000.0).round() / 1000.0),
                    );
                    Value::Object(obj)
                })
                .collect();
            map.insert("trials".into(), Value::Array(trials));
        }
        Value::Object(map)
    }
}
