//! From a column's raw value to a feature's number, in one place for every reader: the training
//! table, the scorer (per row, on its hot path), the champion's evaluation rows and drift.
//!
//! The Postgres layer only moves datums: it reads each column as a [`RawValue`] — a number
//! (numbers as they are, booleans as 0/1, dates and timestamps as days since 1970-01-01), a text
//! (a category) or NULL — and a [`FeatureEncoder`] built from the model's [`FeatureSpec`] turns
//! it into the value the model was trained on: the one-hot indicator or target mean of a
//! category, the age of a date at the model's `as_of`, the imputation value of a NULL.

use std::collections::HashMap;

use super::{Encoding, FeatureSpec};

/// A column's value as the glue read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue<'a> {
    Null,
    /// A number, a boolean (0/1), or a date or timestamp (days since 1970-01-01).
    Number(f64),
    /// A text value (a category), as its bytes.
    Text(&'a [u8]),
}

impl RawValue<'_> {
    /// The value as a number: `None` for NULL (and for a text, which no number column holds).
    #[inline]
    pub fn number(self) -> Option<f64> {
        match self {
            RawValue::Number(v) => Some(v),
            RawValue::Null | RawValue::Text(_) => None,
        }
    }
}

impl From<Option<f64>> for RawValue<'_> {
    fn from(value: Option<f64>) -> Self {
        value.map_or(RawValue::Null, RawValue::Number)
    }
}

/// What a [`FeatureEncoder`] computes: what the model reads when scoring, or the value a
/// feature's drift profile was built from at training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Purpose {
    /// The model's input: NULL imputed, a category as its indicator or mean, a date as its age
    /// at the model's `as_of`.
    Scoring,
    /// The value profiled for drift: NULL kept, a target-encoded category as its code (its
    /// position among the training categories, 1-based), a date as its age at `now_days`.
    Profile { now_days: f64 },
}

#[derive(Debug, Clone)]
enum Kind {
    /// A number or boolean as read.
    Plain,
    /// A category: the value of each known text; `other` for NULL and unseen values (`None`:
    /// kept as NULL).
    Category {
        values: HashMap<Box<[u8]>, f64>,
        other: Option<f64>,
    },
    /// A date or timestamp as its age in days at `as_of`.
    Age { as_of: f64 },
}

/// One feature's encoding, prepared for encoding many rows (categories hashed once).
#[derive(Debug, Clone)]
pub struct FeatureEncoder {
    kind: Kind,
    /// The value of a NULL that is not a category (`None`: NULL stays NULL).
    impute: Option<f64>,
}

impl FeatureEncoder {
    pub fn new(spec: &FeatureSpec, purpose: Purpose) -> FeatureEncoder {
        let hashed = |pairs: Vec<(&String, f64)>| -> HashMap<Box<[u8]>, f64> {
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_bytes().into(), v))
                .collect()
        };
        let kind = match (&spec.encoding, purpose) {
            (
                Encoding::Indicator {
                    category,
                    known,
                    share,
                    ..
                },
                _,
            ) => Kind::Category {
                values: hashed(
                    known
                        .iter()
                        .map(|k| (k, f64::from(u8::from(k == category))))
                        .collect(),
                ),
                other: Some(*share),
            },
            (Encoding::TargetMean { categories, .. }, Purpose::Profile { .. }) => Kind::Category {
                values: hashed(
                    categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c, (i + 1) as f64))
                        .collect(),
                ),
                other: None,
            },
            (
                Encoding::TargetMean {
                    categories,
                    means,
                    fallback,
                },
                Purpose::Scoring,
            ) => Kind::Category {
                values: hashed(categories.iter().zip(means.iter().copied()).collect()),
                other: Some(*fallback),
            },
            (Encoding::DaysBefore { as_of }, Purpose::Scoring) => Kind::Age { as_of: *as_of },
            (Encoding::DaysBefore { .. }, Purpose::Profile { now_days }) => {
                Kind::Age { as_of: now_days }
            }
            // an array element arrives as a number, placed by its ArrayShape
            (Encoding::Number | Encoding::Boolean | Encoding::Element { .. }, _) => Kind::Plain,
        };
        FeatureEncoder {
            kind,
            impute: match purpose {
                Purpose::Scoring => spec.impute,
                Purpose::Profile { .. } => None,
            },
        }
    }

    /// Whether the column must be read as text (a category) rather than as a number.
    #[inline]
    pub fn reads_text(&self) -> bool {
        matches!(self.kind, Kind::Category { .. })
    }

    /// The feature's value for a number read from its column (`None` = SQL NULL). Returns
    /// `None` for a NULL the encoder has no value for (scoring: a NULL the model refuses).
    /// A non-finite input gives a non-finite output, for the caller to refuse with the row.
    #[inline]
    pub fn number(&self, value: Option<f64>) -> Option<f64> {
        match (&self.kind, value) {
            (Kind::Category { other, .. }, _) => *other,
            (_, None) => self.impute,
            (Kind::Age { as_of }, Some(days)) => Some(as_of - days),
            (Kind::Plain, Some(v)) => Some(v),
        }
    }

    /// The feature's value for a text read from its column (`None` = SQL NULL).
    #[inline]
    pub fn text(&self, value: Option<&[u8]>) -> Option<f64> {
        match &self.kind {
            Kind::Category { values, other } => {
                value.and_then(|v| values.get(v).copied()).or(*other)
            }
            _ => value.map_or(self.impute, |_| Some(f64::NAN)),
        }
    }

    /// The feature's value for any raw value.
    #[inline]
    pub fn encode(&self, value: RawValue<'_>) -> Option<f64> {
        match value {
            RawValue::Null if self.reads_text() => self.text(None),
            RawValue::Null => self.number(None),
            RawValue::Number(v) => self.number(Some(v)),
            RawValue::Text(t) => self.text(Some(t)),
        }
    }
}

/// Encoders for every feature of a model, for `purpose`.
pub fn encoders(features: &[FeatureSpec], purpose: Purpose) -> Vec<FeatureEncoder> {
    features
        .iter()
        .map(|f| FeatureEncoder::new(f, purpose))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(encoding: Encoding, impute: Option<f64>) -> FeatureSpec {
        FeatureSpec {
            name: "f".into(),
            sql_type: "text".into(),
            encoding,
            impute,
        }
    }

    #[test]
    fn indicators_give_one_zero_or_the_share() {
        let s = spec(
            Encoding::Indicator {
                column: "segment".into(),
                category: "b".into(),
                known: vec!["a".into(), "b".into()],
                share: 0.25,
            },
            None,
        );
        for purpose in [Purpose::Scoring, Purpose::Profile { now_days: 0.0 }] {
            let e = FeatureEncoder::new(&s, purpose);
            assert!(e.reads_text());
            assert_eq!(e.text(Some(b"b")), Some(1.0));
            assert_eq!(e.text(Some(b"a")), Some(0.0));
            assert_eq!(e.text(Some(b"unseen")), Some(0.25));
            assert_eq!(e.text(None), Some(0.25));
        }
    }

    #[test]
    fn target_means_score_by_mean_and_profile_by_code() {
        let s = spec(
            Encoding::TargetMean {
                categories: vec!["x".into(), "y".into()],
                means: vec![10.0, 20.0],
                fallback: 15.0,
            },
            None,
        );
        let scoring = FeatureEncoder::new(&s, Purpose::Scoring);
        assert_eq!(scoring.encode(RawValue::Text(b"y")), Some(20.0));
        assert_eq!(scoring.encode(RawValue::Text(b"z")), Some(15.0));
        assert_eq!(scoring.encode(RawValue::Null), Some(15.0));
        let profile = FeatureEncoder::new(&s, Purpose::Profile { now_days: 0.0 });
        assert_eq!(profile.encode(RawValue::Text(b"y")), Some(2.0));
        assert_eq!(profile.encode(RawValue::Text(b"z")), None);
        assert_eq!(profile.encode(RawValue::Null), None);
    }

    #[test]
    fn numbers_are_imputed_when_scoring_and_kept_null_when_profiling() {
        let s = spec(Encoding::Number, Some(3.0));
        let scoring = FeatureEncoder::new(&s, Purpose::Scoring);
        assert!(!scoring.reads_text());
        assert_eq!(scoring.number(Some(7.0)), Some(7.0));
        assert_eq!(scoring.number(None), Some(3.0));
        let profile = FeatureEncoder::new(&s, Purpose::Profile { now_days: 0.0 });
        assert_eq!(profile.number(None), None);
        // a NULL the model gives no meaning (the CLV models' columns) is refused
        let refused = FeatureEncoder::new(&spec(Encoding::Number, None), Purpose::Scoring);
        assert_eq!(refused.number(None), None);
    }

    #[test]
    fn dates_are_ages_at_as_of_or_at_now_for_drift() {
        let s = spec(Encoding::DaysBefore { as_of: 20_000.0 }, Some(5.0));
        let scoring = FeatureEncoder::new(&s, Purpose::Scoring);
        assert_eq!(scoring.number(Some(19_990.0)), Some(10.0));
        assert_eq!(scoring.number(None), Some(5.0));
        let profile = FeatureEncoder::new(&s, Purpose::Profile { now_days: 20_100.0 });
        assert_eq!(profile.number(Some(19_990.0)), Some(110.0));
        assert_eq!(profile.number(None), None);
    }
}
