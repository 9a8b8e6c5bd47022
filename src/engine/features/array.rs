//! Numeric array columns as features (`browse_counts int[]`, a purchase history by period): an
//! array of fixed length L becomes L features, one per position, oldest first. L is taken from
//! training. Without option `pad` every array must have exactly L elements; with it, a shorter
//! array is padded on the left with 0 (periods before its history began) and a longer one keeps
//! its last L elements (the most recent), at training and scoring alike.
//!
//! The glue reads the elements; whether they fit, and what the model then reads, is decided
//! here, so training's pre-pass and scoring refuse the same arrays with the same words.

use super::super::error::{EngineError, ErrorKind, Result};

/// Most elements an array feature may have (each is one model input).
pub const MAX_ARRAY_LENGTH: usize = 1000;

/// The fixed shape of an array feature, taken from training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayShape {
    pub length: usize,
    /// Shorter arrays are padded on the left with 0 and longer ones keep their last elements.
    pub pad: bool,
}

/// What a pass over the training rows found about an array column (NULL arrays left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArrayStats {
    /// Fewest and most elements of a non-NULL array; `None` when every array is NULL.
    pub lengths: Option<(usize, usize)>,
    /// Rows whose array holds a NULL element.
    pub rows_with_null_elements: u64,
    /// Most dimensions of an array (a one-dimensional array has 1; an empty one 0).
    pub most_dimensions: usize,
}

impl ArrayShape {
    /// The shape of `column`'s feature from what training saw, or why its arrays cannot be one.
    pub fn from_training(column: &str, stats: &ArrayStats, pad: bool) -> Result<ArrayShape> {
        if stats.most_dimensions > 1 {
            return Err(too_many_dimensions(column, stats.most_dimensions));
        }
        if stats.rows_with_null_elements > 0 {
            return Err(EngineError::new(
                ErrorKind::NullValue,
                format!(
                    "array column \"{column}\" has NULL elements in {} training rows",
                    stats.rows_with_null_elements
                ),
            )
            .with_detail("An element of a feature array has no imputation: only a whole array may be NULL.")
            .with_hint(format!(
                "Replace them in a SELECT source, e.g. array_replace({column}, NULL, 0) AS {column}."
            )));
        }
        let Some((shortest, longest)) = stats.lengths else {
            return Err(EngineError::insufficient_data(format!(
                "array column \"{column}\" is NULL in every training row"
            )));
        };
        if longest == 0 {
            return Err(EngineError::insufficient_data(format!(
                "array column \"{column}\" holds only empty arrays"
            )));
        }
        if longest > MAX_ARRAY_LENGTH {
            return Err(EngineError::new(
                ErrorKind::NotSupported,
                format!(
                    "array column \"{column}\" has arrays of {longest} elements; a feature array has at most {MAX_ARRAY_LENGTH}"
                ),
            )
            .with_hint(format!("Keep the most recent elements in a SELECT source, e.g. {column}[array_upper({column}, 1) - 51:] for the last 52.")));
        }
        if shortest != longest && !pad {
            return Err(EngineError::new(
                ErrorKind::ArrayShape,
                format!(
                    "array column \"{column}\" holds arrays of {shortest} to {longest} elements; a feature array needs one length"
                ),
            )
            .with_hint(format!(
                "Set options => '{{\"pad\": true}}' to pad shorter arrays on the left with 0 to {longest} elements."
            )));
        }
        Ok(ArrayShape {
            length: longest,
            pad,
        })
    }

    /// The feature name of position `position` (0-based, oldest first): `column[1]`, ….
    pub fn element_name(column: &str, position: usize) -> String {
        format!("{column}[{}]", position + 1)
    }

    /// The `length` values the model reads from one array's `elements` (in array order,
    /// `None` for a NULL element) of `dimensions` dimensions, into `out`: an error naming the
    /// column for a NULL element, more than one dimension, or (without `pad`) another length.
    pub fn window(
        &self,
        column: &str,
        elements: &[Option<f64>],
        dimensions: usize,
        out: &mut [f64],
    ) -> Result<()> {
        if dimensions > 1 {
            return Err(too_many_dimensions(column, dimensions));
        }
        if let Some(k) = elements.iter().position(Option::is_none) {
            return Err(EngineError::new(
                ErrorKind::NullValue,
                format!(
                    "array column \"{column}\" has a NULL element at position {}",
                    k + 1
                ),
            )
            .with_hint(format!(
                "Only a whole array may be NULL; replace NULL elements, e.g. array_replace({column}, NULL, 0)."
            )));
        }
        let n = elements.len();
        if n != self.length && !self.pad {
            return Err(EngineError::new(
                ErrorKind::ArrayShape,
                format!(
                    "array column \"{column}\" has {n} elements; the model was trained on arrays of {}",
                    self.length
                ),
            )
            .with_hint("Pass arrays of the trained length, or retrain with options => '{\"pad\": true}'."));
        }
        let kept = &elements[n.saturating_sub(self.length)..];
        let padding = self.length - kept.len();
        out[..padding].fill(0.0);
        for (o, e) in out[padding..self.length].iter_mut().zip(kept) {
            *o = e.unwrap_or(0.0);
        }
        Ok(())
    }
}

fn too_many_dimensions(column: &str, dimensions: usize) -> EngineError {
    EngineError::new(
        ErrorKind::ArrayShape,
        format!("array column \"{column}\" has an array of {dimensions} dimensions; a feature array has one"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(lengths: (usize, usize)) -> ArrayStats {
        ArrayStats {
            lengths: Some(lengths),
            rows_with_null_elements: 0,
            most_dimensions: 1,
        }
    }

    #[test]
    fn the_trained_length_is_the_common_or_with_pad_the_longest() {
        let same = ArrayShape::from_training("b", &stats((5, 5)), false).unwrap();
        assert_eq!(same.length, 5);
        let padded = ArrayShape::from_training("b", &stats((2, 7)), true).unwrap();
        assert_eq!((padded.length, padded.pad), (7, true));
        let err = ArrayShape::from_training("b", &stats((2, 7)), false).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ArrayShape);
        assert_eq!(
            err.message,
            "array column \"b\" holds arrays of 2 to 7 elements; a feature array needs one length"
        );
    }

    #[test]
    fn training_refuses_null_elements_dimensions_and_empty_columns_by_name() {
        let nulls = ArrayStats {
            rows_with_null_elements: 3,
            ..stats((4, 4))
        };
        let err = ArrayShape::from_training("visits", &nulls, true).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NullValue);
        assert!(err.message.contains("\"visits\" has NULL elements in 3"));
        let matrix = ArrayStats {
            most_dimensions: 2,
            ..stats((4, 4))
        };
        let err = ArrayShape::from_training("visits", &matrix, false).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ArrayShape);
        let none = ArrayStats::default();
        let err = ArrayShape::from_training("visits", &none, false).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        let empty = ArrayShape::from_training("visits", &stats((0, 0)), true).unwrap_err();
        assert!(empty.message.contains("only empty arrays"));
        let huge = ArrayShape::from_training("visits", &stats((1, 5000)), true).unwrap_err();
        assert_eq!(huge.kind, ErrorKind::NotSupported);
    }

    #[test]
    fn a_window_pads_on_the_left_and_keeps_the_newest_elements() {
        let shape = ArrayShape {
            length: 4,
            pad: true,
        };
        let mut out = [9.0; 4];
        shape
            .window("b", &[Some(1.0), Some(2.0)], 1, &mut out)
            .unwrap();
        assert_eq!(out, [0.0, 0.0, 1.0, 2.0]);
        let long: Vec<Option<f64>> = (1..=6).map(|v| Some(v as f64)).collect();
        shape.window("b", &long, 1, &mut out).unwrap();
        assert_eq!(out, [3.0, 4.0, 5.0, 6.0]);
        shape.window("b", &[], 0, &mut out).unwrap();
        assert_eq!(out, [0.0; 4]);
    }

    #[test]
    fn a_window_refuses_what_the_model_cannot_read_naming_the_column() {
        let strict = ArrayShape {
            length: 3,
            pad: false,
        };
        let mut out = [0.0; 3];
        let err = strict
            .window("b", &[Some(1.0), Some(2.0)], 1, &mut out)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ArrayShape);
        assert_eq!(
            err.message,
            "array column \"b\" has 2 elements; the model was trained on arrays of 3"
        );
        let err = strict
            .window("b", &[Some(1.0), None, Some(2.0)], 1, &mut out)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NullValue);
        assert_eq!(
            err.message,
            "array column \"b\" has a NULL element at position 2"
        );
        let err = strict
            .window("b", &[Some(1.0); 3], 2, &mut out)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ArrayShape);
        strict.window("b", &[Some(1.0); 3], 1, &mut out).unwrap();
        assert_eq!(out, [1.0; 3]);
    }
}
