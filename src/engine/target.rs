//! What a target column is, and everything that follows from it — decided once, here: the task
//! (a value or a class), the default metric, a classifier's class labels, and how the target's
//! values become numbers. The Postgres layer reports the column's type and, when asked, its
//! distinct values; it decides nothing.

use super::codec::{TargetTransform, Task};
use super::error::{EngineError, ErrorKind, Result};
use super::features::{Dataset, SqlType};
use super::metrics::Metric;
use super::models::Algorithm;
use super::options::TrainOptions;

/// Most classes of a text target.
pub const MAX_CLASSES: usize = 50;

/// How the target's values are read.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetReading {
    /// As a number (a boolean as 0/1).
    Number,
    /// As text, each label its class index (position in the list, alphabetical).
    Classes(Vec<String>),
}

/// Settles `options` (task, metric, class labels, classes) for the target column `name` of
/// `sql_type`, and says how to read its values. `distinct_labels` is called only for a text
/// class target: it returns the column's distinct values (at most
/// [`crate::engine::features::MAX_CATEGORIES`]).
pub fn settle_target(
    name: &str,
    sql_type: &SqlType,
    algorithm: Algorithm,
    options: &mut TrainOptions,
    distinct_labels: &mut dyn FnMut() -> Vec<String>,
) -> Result<TargetReading> {
    let inferred = inferred_task(name, sql_type)?;
    if algorithm.is_clv() {
        // CLV models compare their value with a numeric target
        if !sql_type.is_number() {
            return Err(EngineError::new(
                ErrorKind::DatatypeMismatch,
                format!("target column \"{name}\" of a CLV model must be numeric"),
            ));
        }
        return Ok(TargetReading::Number);
    }
    let task = options.task.unwrap_or(inferred);
    if task == Task::Regression && !sql_type.is_number() {
        return Err(EngineError::new(
            ErrorKind::DatatypeMismatch,
            format!(
                "target column \"{name}\" has type {}; a value model needs a numeric target",
                sql_type.sql_name()
            ),
        ));
    }
    options.task = Some(task);
    if task == Task::Classification && !options.metric_given {
        options.metric = Metric::Auc;
    }
    options.class_labels = if *sql_type == SqlType::Boolean {
        ("false".into(), "true".into())
    } else {
        ("0".into(), "1".into())
    };
    if *sql_type != SqlType::Text {
        return Ok(TargetReading::Number);
    }
    // a text label: its values (alphabetical) are the classes, coded 0..k-1
    let mut classes = distinct_labels();
    classes.sort();
    settle_classes(name, classes, options)
}

/// The task a target's type implies: a boolean or text is a class, a number a value.
fn inferred_task(name: &str, sql_type: &SqlType) -> Result<Task> {
    if *sql_type == SqlType::Boolean || *sql_type == SqlType::Text {
        Ok(Task::Classification)
    } else if sql_type.is_number() {
        Ok(Task::Regression)
    } else {
        Err(EngineError::new(
            ErrorKind::DatatypeMismatch,
            format!(
                "target column \"{name}\" has type {}; the target must be a number (a value), a boolean or text (a class)",
                sql_type.sql_name()
            ),
        )
        .with_hint("Use a numeric column (e.g. spend), a boolean (e.g. churned) or a text label (e.g. tier), or cast it in a SELECT source."))
    }
}

/// A text target's classes (sorted): two are a binary classifier's labels, more a multi-class
/// classifier's (accuracy by default).
fn settle_classes(
    name: &str,
    classes: Vec<String>,
    options: &mut TrainOptions,
) -> Result<TargetReading> {
    match classes.len() {
        0 | 1 => {
            return Err(EngineError::insufficient_data(format!(
                "target column \"{name}\" has {} distinct value(s); a classifier needs at least 2",
                classes.len()
            )))
        }
        n if n > MAX_CLASSES => {
            return Err(EngineError::invalid_parameter(format!(
                "target column \"{name}\" has more than {MAX_CLASSES} distinct values; a classifier takes at most {MAX_CLASSES}"
            ))
            .with_hint("Group rare labels, or predict a number instead."))
        }
        2 => options.class_labels = (classes[0].clone(), classes[1].clone()),
        _ => {
            if !options.metric_given {
                options.metric = Metric::Accuracy;
            }
            options.classes = classes.clone();
        }
    }
    Ok(TargetReading::Classes(classes))
}

/// What the target is, once settled: it decides the fit and the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TargetKind {
    Value,
    Binary,
    MultiClass,
}

impl TargetKind {
    /// The metrics computed for this kind of target: a `metric` option outside them would
    /// compare nothing with nothing (NULL with NULL) when deciding deployment.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            TargetKind::Value => &[
                Metric::Rmse,
                Metric::Mae,
                Metric::R2,
                Metric::Spearman,
                Metric::Gini,
                Metric::TopDecileCapture,
            ],
            TargetKind::Binary => &[
                Metric::Auc,
                Metric::LogLoss,
                Metric::Accuracy,
                Metric::F1,
                Metric::Gini,
                Metric::Spearman,
                Metric::TopDecileCapture,
                Metric::Rmse,
                Metric::Mae,
            ],
            TargetKind::MultiClass => &[Metric::Accuracy, Metric::LogLoss, Metric::F1],
        }
    }

    pub fn check_metric(self, options: &TrainOptions) -> Result<()> {
        let applicable = self.metrics();
        if !options.metric_given || applicable.contains(&options.metric) {
            return Ok(());
        }
        let what = match self {
            TargetKind::Value => "a value (regression) model",
            TargetKind::Binary => "a binary classifier",
            TargetKind::MultiClass => "a multi-class classifier",
        };
        let names: Vec<&str> = applicable.iter().map(|m| m.key()).collect();
        Err(EngineError::invalid_parameter(format!(
            "metric \"{}\" does not apply to {what}",
            options.metric.key()
        ))
        .with_hint(format!("Use one of: {}.", names.join(", "))))
    }
}

impl TargetKind {
    /// The kind the settled options describe.
    pub fn of(options: &TrainOptions) -> TargetKind {
        match (options.task, options.classes.len() > 2) {
            (Some(Task::Classification), true) => TargetKind::MultiClass,
            (Some(Task::Classification), false) => TargetKind::Binary,
            _ => TargetKind::Value,
        }
    }

    /// Checks the target's values (class indices, 0/1 labels) and the options that depend on
    /// the kind: a classifier needs an algorithm that can classify and no target transform.
    pub fn check_labels(
        self,
        data: &Dataset,
        algorithm: Algorithm,
        options: &TrainOptions,
    ) -> Result<()> {
        match self {
            TargetKind::Value => check_value_algorithm(algorithm, options),
            TargetKind::MultiClass => {
                let k = options.classes.len() as f64;
                match data
                    .y
                    .iter()
                    .find(|y| **y < 0.0 || **y >= k || y.fract() != 0.0)
                {
                    Some(y) => Err(EngineError::new(
                        ErrorKind::Internal,
                        format!("class index {y} outside 0..{k}"),
                    )),
                    None => Ok(()),
                }
            }
            TargetKind::Binary => check_binary(data, algorithm, options),
        }
    }
}

fn check_binary(data: &Dataset, algorithm: Algorithm, options: &TrainOptions) -> Result<()> {
    if let Some(y) = data.y.iter().find(|y| **y != 0.0 && **y != 1.0) {
        return Err(EngineError::new(
            ErrorKind::DatatypeMismatch,
            format!("a classification target must be boolean or 0/1; the target holds {y}"),
        )
        .with_hint(
            "Use a boolean column (e.g. churned), or options => '{\"task\": \"regression\"}'.",
        ));
    }
    if !algorithm.can_classify() {
        return Err(cannot_classify(algorithm));
    }
    if options.target_transform != TargetTransform::Identity {
        return Err(EngineError::invalid_parameter(
            "target_transform applies to value models, not to a classification target",
        ));
    }
    let default_candidates = options.candidates == Algorithm::CANDIDATES;
    for a in &options.candidates {
        if algorithm == Algorithm::Auto && !default_candidates && !a.can_classify() {
            return Err(cannot_classify(*a));
        }
    }
    Ok(())
}

/// A value model needs an algorithm that predicts a number: logistic regression learns a class
/// (also among `auto`'s candidates).
pub fn check_value_algorithm(algorithm: Algorithm, options: &TrainOptions) -> Result<()> {
    let candidates: &[Algorithm] = if algorithm == Algorithm::Auto {
        &options.candidates
    } else {
        std::slice::from_ref(&algorithm)
    };
    match candidates.iter().find(|a| **a == Algorithm::Logistic) {
        Some(a) => Err(EngineError::invalid_parameter(format!(
            "algorithm \"{}\" learns a class, but the target is a value (a number)",
            a.name()
        ))
        .with_hint("For a 0/1 column use options => '{\"task\": \"classification\"}'; to predict the number use linear, ridge, gbm, mlp, random_forest or auto.")),
        None => Ok(()),
    }
}

/// The error for an algorithm that cannot learn a class.
pub fn cannot_classify(algorithm: Algorithm) -> EngineError {
    EngineError::invalid_parameter(format!(
        "algorithm \"{}\" cannot learn a classification target",
        algorithm.name()
    ))
    .with_hint("Use logistic, gbm, mlp, random_forest or auto; or options => '{\"task\": \"regression\"}' for a numeric target.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(
        sql_type: SqlType,
        labels: &[&str],
        options: &mut TrainOptions,
    ) -> Result<TargetReading> {
        let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        settle_target("y", &sql_type, Algorithm::Auto, options, &mut || {
            labels.clone()
        })
    }

    #[test]
    fn a_number_is_a_value_and_a_boolean_a_class_judged_by_auc() {
        let mut o = TrainOptions::default();
        assert_eq!(
            settle(SqlType::Numeric, &[], &mut o).unwrap(),
            TargetReading::Number
        );
        assert_eq!((o.task, o.metric), (Some(Task::Regression), Metric::Rmse));
        let mut o = TrainOptions::default();
        settle(SqlType::Boolean, &[], &mut o).unwrap();
        assert_eq!(
            (o.task, o.metric),
            (Some(Task::Classification), Metric::Auc)
        );
        assert_eq!(o.class_labels, ("false".to_string(), "true".to_string()));
    }

    #[test]
    fn text_labels_become_sorted_classes_and_many_are_judged_by_accuracy() {
        let mut o = TrainOptions::default();
        let reading = settle(SqlType::Text, &["vip", "low", "mid"], &mut o).unwrap();
        let sorted = vec!["low".to_string(), "mid".into(), "vip".into()];
        assert_eq!(reading, TargetReading::Classes(sorted.clone()));
        assert_eq!((o.metric, o.classes), (Metric::Accuracy, sorted));
        let mut o = TrainOptions::default();
        settle(SqlType::Text, &["yes", "no"], &mut o).unwrap();
        assert_eq!(o.class_labels, ("no".to_string(), "yes".to_string()));
        assert!(o.classes.is_empty());
        assert_eq!(o.metric, Metric::Auc);
    }

    #[test]
    fn a_given_metric_is_kept_and_wrong_types_are_refused() {
        let mut o = TrainOptions {
            metric: Metric::LogLoss,
            metric_given: true,
            ..TrainOptions::default()
        };
        settle(SqlType::Boolean, &[], &mut o).unwrap();
        assert_eq!(o.metric, Metric::LogLoss);
        let err = settle(SqlType::Date, &[], &mut TrainOptions::default()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::DatatypeMismatch);
        let mut o = TrainOptions {
            task: Some(Task::Regression),
            ..TrainOptions::default()
        };
        let err = settle(SqlType::Text, &["a", "b"], &mut o).unwrap_err();
        assert!(
            err.message.contains("needs a numeric target"),
            "{}",
            err.message
        );
        let err = settle(SqlType::Text, &["only"], &mut TrainOptions::default()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
    }
}
