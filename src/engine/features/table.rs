//! The training table as read: feature columns and the target, checked as they arrive, then
//! encoded into a [`Dataset`] with each feature's [`FeatureSpec`].

use std::collections::HashMap;

use super::super::drift::BinProfile;
use super::super::error::{EngineError, ErrorKind, Result};
use super::super::memory::{
    try_grow, try_grow_by, try_with_capacity, MemoryBudget, BYTES_PER_VALUE,
};
use super::super::parallel;
use super::super::stats;
use super::{ArrayShape, Dataset, Encoding, FeatureSpec, RawValue, SqlType, DEFAULT_MAX_ONE_HOT};

/// Feature specs, the dataset, and each feature's distribution as read.
pub type DatasetWithProfiles = (Vec<FeatureSpec>, Dataset, Vec<(String, BinProfile)>);

/// A training table as read from Postgres: feature columns and the target, NULL kept as NaN
/// (a value read is never NaN: non-finite values are refused as they arrive).
///
/// Values are checked as they arrive so that a NaN or infinity is reported with its column and
/// row, not discovered later as a mysterious fit failure.
///
/// Rows are stored as they arrive in the row-major layout of the encoded matrix the models
/// train on, so encoding happens in place: the table *becomes* the [`Dataset`], and training
/// holds one copy of the values, not a raw copy beside an encoded one. A column takes the
/// slots its encoding will fill: one, or one per indicator of a one-hot text column, whose
/// category code waits in the block's first slot until [`RawTable::into_dataset`].
#[derive(Debug, Clone)]
pub struct RawTable {
    names: Vec<String>,
    types: Vec<SqlType>,
    target_name: String,
    /// Row-major, `width` values a row; empty until [`RawTable::fix_layout`].
    rows: Vec<f64>,
    /// Per column: its first slot in a row (set by the first row, when the categories and
    /// `max_one_hot` that decide the widths are known).
    slots: Vec<usize>,
    width: usize,
    target: Vec<f64>,
    /// Per text column: its categories, most frequent first; its values are 1-based codes.
    categories: Vec<Vec<String>>,
    /// Per text column: the code of each category (other values have none: NULL).
    codes: Vec<HashMap<Box<[u8]>, f64>>,
    /// A class target's labels (class index = position); empty: the target is a number.
    classes: HashMap<Box<[u8]>, f64>,
    /// The reference time of date features, in days since 1970-01-01; their values arrive as
    /// days since 1970-01-01 too.
    as_of: f64,
    max_one_hot: usize,
    /// Threads number columns are encoded on, a column each (`customer_value.training_threads`).
    threads: usize,
    imputation: Vec<(String, Imputation)>,
    budget: MemoryBudget,
    /// Per column: the array column and position it holds, for an array element.
    elements: Vec<Option<Encoding>>,
}

/// How a feature column's NULLs are filled (`options->'impute'`); the value is computed on
/// the training rows, stored with the model and used identically when scoring.
#[derive(Debug, Clone, PartialEq)]
pub enum Imputation {
    Median,
    Mean,
    /// The most frequent value (ties: the smallest).
    Mode,
    Constant(f64),
}

impl Imputation {
    pub fn parse(value: &serde_json::Value) -> Option<Imputation> {
        match value {
            serde_json::Value::String(s) => match s.as_str() {
                "median" => Some(Imputation::Median),
                "mean" => Some(Imputation::Mean),
                "mode" => Some(Imputation::Mode),
                _ => None,
            },
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|v| v.is_finite())
                .map(Imputation::Constant),
            _ => None,
        }
    }

    /// The value NULLs become, from a column's non-NULL values `present` (in the order read),
    /// which it leaves sorted ascending — the mean is summed in the order read first.
    fn value_sorting(&self, present: &mut [f64]) -> f64 {
        let mean = present.iter().sum::<f64>() / present.len().max(1) as f64;
        // pdqsort: ties are equal bits under total_cmp, so the order is the stable sort's
        present.sort_unstable_by(f64::total_cmp);
        let sorted: &[f64] = present;
        match self {
            Imputation::Median => stats::quantile_sorted(sorted, 0.5),
            Imputation::Mean => mean,
            Imputation::Mode => {
                let (mut best, mut best_n) = (sorted[0], 0usize);
                let mut i = 0;
                while i < sorted.len() {
                    let mut j = i;
                    while j < sorted.len() && sorted[j] == sorted[i] {
                        j += 1;
                    }
                    if j - i > best_n {
                        best = sorted[i];
                        best_n = j - i;
                    }
                    i = j;
                }
                best
            }
            Imputation::Constant(v) => *v,
        }
    }
}

impl RawTable {
    pub fn new(target_name: &str, features: Vec<(String, SqlType)>) -> Result<RawTable> {
        let mut names = Vec::with_capacity(features.len());
        let mut types = Vec::with_capacity(features.len());
        for (name, sql_type) in features {
            Encoding::for_column(&name, &sql_type)?;
            names.push(name);
            types.push(sql_type);
        }
        if names.is_empty() {
            return Err(EngineError::insufficient_data(
                "no feature columns to train on",
            )
            .with_detail(format!(
                "Every column of the source is the target \"{target_name}\", part of the primary key, or excluded."
            )));
        }
        let n = names.len();
        let categories = vec![Vec::new(); n];
        let codes = vec![HashMap::new(); names.len()];
        Ok(RawTable {
            names,
            types,
            target_name: target_name.to_string(),
            rows: Vec::new(),
            slots: Vec::new(),
            width: 0,
            target: Vec::new(),
            categories,
            codes,
            classes: HashMap::new(),
            as_of: 0.0,
            max_one_hot: DEFAULT_MAX_ONE_HOT,
            threads: 1,
            imputation: Vec::new(),
            budget: MemoryBudget::UNLIMITED,
            elements: vec![None; n],
        })
    }

    pub fn n_rows(&self) -> usize {
        self.target.len()
    }

    /// The categories of text column `j`, most frequent first: a value is kept as its 1-based
    /// position here; a value not among them is kept as NULL (an unseen category).
    pub fn set_categories(&mut self, j: usize, categories: Vec<String>) {
        if let (Some(c), Some(codes)) = (self.categories.get_mut(j), self.codes.get_mut(j)) {
            *codes = positions(&categories, 1);
            *c = categories;
        }
    }

    /// The labels of a class target: a text target value is kept as its 0-based position here.
    /// Column `j` holds position `position` of array column `column`, of shape `shape`.
    pub fn set_array_element(
        &mut self,
        j: usize,
        column: &str,
        shape: ArrayShape,
        position: usize,
    ) {
        if let Some(e) = self.elements.get_mut(j) {
            *e = Some(Encoding::Element {
                column: column.to_string(),
                position: position as u32,
                length: shape.length as u32,
                pad: shape.pad,
            });
        }
    }

    pub fn set_target_classes(&mut self, classes: &[String]) {
        self.classes = positions(classes, 0);
    }

    /// The reference time of date features (days since 1970-01-01).
    pub fn set_as_of(&mut self, days: f64) {
        self.as_of = days;
    }

    /// The memory training may use: rows beyond it are refused as they arrive (53200).
    pub fn set_budget(&mut self, budget: MemoryBudget) {
        self.budget = budget;
    }

    /// Bytes one row is counted for (see [`BYTES_PER_VALUE`]).
    pub fn bytes_per_row(&self) -> u64 {
        (self.names.len() as u64 + 1) * BYTES_PER_VALUE
    }

    /// Threads to encode number columns on, one column each (1: the calling thread only).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    pub fn set_max_one_hot(&mut self, n: usize) {
        self.max_one_hot = n;
    }

    /// How NULLs of named columns are imputed (others: the median).
    pub fn set_imputation(&mut self, rules: Vec<(String, Imputation)>) -> Result<()> {
        for (column, _) in &rules {
            let array_of = |j: usize| match &self.elements[j] {
                Some(Encoding::Element { column, .. }) => Some(column),
                _ => None,
            };
            let found = (0..self.names.len())
                .find(|&j| self.names[j] == *column || array_of(j) == Some(column));
            match found {
                None => {
                    return Err(EngineError::new(
                        ErrorKind::UndefinedColumn,
                        format!("option \"impute\" names \"{column}\", which is not a feature column"),
                    )
                    .with_detail(format!("The feature columns are: {}.", self.names.join(", "))))
                }
                Some(j) if self.types[j] == SqlType::Text => {
                    return Err(EngineError::invalid_parameter(format!(
                        "option \"impute\" cannot apply to text column \"{column}\""
                    ))
                    .with_detail("A NULL category is scored like an unseen one: at the training shares (one-hot) or the overall mean (target encoding)."))
                }
                Some(_) => {}
            }
        }
        self.imputation = rules;
        Ok(())
    }

    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// Appends one row of numbers (tests: the glue appends raw values with `push_values`).
    #[cfg(test)]
    pub fn push_row(&mut self, features: &[Option<f64>], target: Option<f64>) -> Result<()> {
        let values: Vec<RawValue<'_>> = features.iter().map(|v| RawValue::from(*v)).collect();
        self.push_values(&values, target.into()).map(|_| ())
    }

    /// Appends one row as read: `features` has one value per feature column; a text column's
    /// value is kept as its category's code, a class target's as its class index. Returns
    /// whether the row has a target (rows without one are not trained on).
    pub fn push_values(&mut self, features: &[RawValue<'_>], target: RawValue<'_>) -> Result<bool> {
        if features.len() != self.names.len() {
            return Err(EngineError::new(
                ErrorKind::Internal,
                format!(
                    "row has {} feature values, expected {}",
                    features.len(),
                    self.names.len()
                ),
            ));
        }
        let row_number = self.target.len() + 1;
        self.budget
            .check_rows(row_number as u64, self.bytes_per_row(), false)?;
        if self.slots.is_empty() {
            self.fix_layout();
        }
        let start = self.rows.len();
        try_grow_by(&mut self.rows, self.width, "the feature matrix")?;
        // the other slots of a one-hot block are written when it is encoded
        self.rows.resize(start + self.width, 0.0);
        for (i, value) in features.iter().enumerate() {
            let value = match *value {
                RawValue::Null => f64::NAN,
                RawValue::Number(v) if !v.is_finite() => {
                    self.rows.truncate(start);
                    return Err(non_finite(&self.names[i], v, row_number));
                }
                RawValue::Number(v) => v,
                RawValue::Text(t) => self.codes[i].get(t).copied().unwrap_or(f64::NAN),
            };
            self.rows[start + self.slots[i]] = value;
        }
        let target = match target {
            RawValue::Null => None,
            RawValue::Number(v) => Some(v),
            RawValue::Text(t) => self.classes.get(t).copied(),
        };
        if let Some(v) = target.filter(|v| !v.is_finite()) {
            self.rows.truncate(start);
            return Err(non_finite(&self.target_name, v, row_number));
        }
        try_grow(&mut self.target, "the target column")?;
        self.target.push(target.unwrap_or(f64::NAN));
        Ok(target.is_some())
    }

    /// Each column's first slot in a row, from the widths its encoding will take (see
    /// [`RawTable::encoded_width`]); at least one slot, so that a column about to be refused
    /// (a text column of one category) still holds its values until it is.
    fn fix_layout(&mut self) {
        self.slots.clear();
        let mut next = 0;
        for j in 0..self.names.len() {
            self.slots.push(next);
            next += self.column_width(j).max(1);
        }
        self.width = next;
    }

    /// Drops rows whose target is NULL, encodes and imputes every feature column and checks
    /// that each can teach the model something.
    pub fn into_dataset(self) -> Result<(Vec<FeatureSpec>, Dataset)> {
        self.into_dataset_with_profiles()
            .map(|(specs, data, _)| (specs, data))
    }

    /// [`RawTable::into_dataset`], plus each feature's distribution before imputation (NULL
    /// kept; a target-encoded column by category code) for drift.
    pub fn into_dataset_with_profiles(mut self) -> Result<DatasetWithProfiles> {
        let n_kept = self.rows_with_target()?;
        let dropped_null_target = self.target.len() - n_kept;
        // Memory: the rows without a target leave the matrix in place and every column is
        // encoded into its own slots, so besides the matrix only one column's values are
        // copied out at a time.
        self.drop_rows_without_target();
        let matrix = std::mem::take(&mut self.rows);
        let mut out = EncodedColumns::new(n_kept, self.width, matrix);
        let n = self.names.len();
        let mut j = 0;
        while j < n {
            if self.types[j] == SqlType::Text {
                self.check_slot(j, &out)?;
                let (column, present) = self.read_column(j, &out)?;
                self.check_informative(j, &present)?;
                self.encode_categories(j, &column, &present, &mut out)?;
                j += 1;
                continue;
            }
            // the next number columns, one per thread, each computed on its own (the same bits
            // on any number of threads), then written in column order
            let end = (j..n)
                .take(self.threads)
                .take_while(|&k| self.types[k] != SqlType::Text)
                .last()
                .map_or(j + 1, |k| k + 1);
            let encoded = parallel::map_each(end - j, self.threads, &|k| {
                let (column, present) = self.read_column(j + k, &out)?;
                self.check_informative(j + k, &present)?;
                self.number_column(j + k, column, present)
            });
            for (k, column) in encoded.into_iter().enumerate() {
                let (spec, profile, values) = column?;
                self.check_slot(j + k, &out)?;
                out.push(spec, profile, &values)?;
            }
            j = end;
        }
        let target = std::mem::take(&mut self.target);
        out.into_dataset(target, dropped_null_target)
    }

    /// Checks that the columns before `j` filled exactly the slots before j's (a text column
    /// of one category, the only one wider in the layout than encoded, is refused).
    fn check_slot(&self, j: usize, out: &EncodedColumns) -> Result<()> {
        if out.specs.len() == self.slots[j] {
            return Ok(());
        }
        Err(EngineError::new(
            ErrorKind::Internal,
            format!("feature column \"{}\" is out of place", self.names[j]),
        ))
    }

    /// Column `j`'s values as read (a date's as ages; NULL as NaN) and its non-NULL values.
    fn read_column(&self, j: usize, out: &EncodedColumns) -> Result<(Vec<f64>, Vec<f64>)> {
        let mut column = out.column(self.slots[j])?;
        if self.types[j].is_time() {
            // NULL stays NaN (as_of − NaN is NaN)
            column.iter_mut().for_each(|v| *v = self.as_of - *v);
        }
        let mut present = try_with_capacity(column.len(), "a feature column")?;
        present.extend(column.iter().copied().filter(|v| !v.is_nan()));
        Ok((column, present))
    }

    /// Removes the rows whose target is NULL, moving the others up within the matrix.
    fn drop_rows_without_target(&mut self) {
        let p = self.width;
        let mut kept = 0;
        for i in 0..self.target.len() {
            if self.target[i].is_nan() {
                continue;
            }
            if kept != i {
                self.rows.copy_within(i * p..(i + 1) * p, kept * p);
                self.target[kept] = self.target[i];
            }
            kept += 1;
        }
        self.rows.truncate(kept * p);
        self.target.truncate(kept);
        self.rows.shrink_to_fit();
        self.target.shrink_to_fit();
    }

    /// The number of encoded columns of feature column `j`: one per category but the most
    /// frequent for a one-hot text column, one for any other.
    fn column_width(&self, j: usize) -> usize {
        let categories = self.categories[j].len();
        if self.types[j] == SqlType::Text && categories <= self.max_one_hot {
            categories.saturating_sub(1)
        } else {
            1
        }
    }

    /// The number of rows whose target is not NULL (an error when there are none).
    fn rows_with_target(&self) -> Result<usize> {
        if self.target.is_empty() {
            return Err(EngineError::insufficient_data(
                "the source has no rows to train on",
            ));
        }
        let kept = self.target.iter().filter(|v| !v.is_nan()).count();
        if kept == 0 {
            return Err(EngineError::insufficient_data(format!(
                "no rows to train on: the target column \"{}\" is NULL in all {} rows",
                self.target_name,
                self.target.len()
            )));
        }
        Ok(kept)
    }

    /// Refuses a column that is NULL or constant in every training row.
    fn check_informative(&self, j: usize, present: &[f64]) -> Result<()> {
        let name = &self.names[j];
        let leave_out = format!("Leave it out with options => '{{\"exclude\": [\"{name}\"]}}'.");
        let Some(&first) = present.first() else {
            return Err(EngineError::insufficient_data(format!(
                "feature column \"{name}\" is NULL in every training row"
            ))
            .with_hint(leave_out));
        };
        // a position that is always 0 (the oldest period of padded histories) belongs to its
        // array all the same: a sequence model reads every position
        if present.iter().any(|&v| v != first) || self.elements[j].is_some() {
            return Ok(());
        }
        let shown = match self.types[j] {
            SqlType::Text => format!(
                "\"{}\"",
                self.categories[j]
                    .get(first as usize - 1)
                    .map(String::as_str)
                    .unwrap_or("?")
            ),
            // 1.7e308, not 309 digits
            _ if first != 0.0 && !(1e-6..1e15).contains(&first.abs()) => format!("{first:e}"),
            _ => first.to_string(),
        };
        Err(EngineError::insufficient_data(format!(
            "feature column \"{name}\" is constant ({shown}) in every training row"
        ))
        .with_detail("A constant column carries no information about the target.")
        .with_hint(leave_out))
    }

    /// A text column (values as category codes): one-hot indicators for few categories,
    /// target (mean) encoding for many.
    fn encode_categories(
        &self,
        j: usize,
        kept: &[f64],
        present: &[f64],
        out: &mut EncodedColumns,
    ) -> Result<()> {
        let (name, sql_type) = (&self.names[j], self.types[j].sql_name());
        let categories = &self.categories[j];
        if categories.len() > self.max_one_hot {
            // codes for now: the means are computed on the training rows only, after the
            // holdout split (`Dataset::encode_target_means`)
            out.pending_target_means.push(out.specs.len());
            out.push(
                FeatureSpec {
                    name: name.clone(),
                    sql_type: sql_type.to_string(),
                    encoding: Encoding::TargetMean {
                        categories: categories.clone(),
                        means: Vec::new(),
                        fallback: 0.0,
                    },
                    impute: None,
                },
                BinProfile::of_nan(kept),
                kept,
            )?;
            return Ok(());
        }
        // one indicator per category but the most frequent (the reference level)
        let total = present.len() as f64;
        for (c, category) in categories.iter().enumerate().skip(1) {
            let code = (c + 1) as f64;
            let share = present.iter().filter(|v| **v == code).count() as f64 / total;
            let values: Vec<f64> = kept
                .iter()
                .map(|&v| {
                    if v.is_nan() {
                        share
                    } else {
                        f64::from(u8::from(v == code))
                    }
                })
                .collect();
            out.push(
                FeatureSpec {
                    name: format!("{name}={category}"),
                    sql_type: sql_type.to_string(),
                    encoding: Encoding::Indicator {
                        column: name.clone(),
                        category: category.clone(),
                        known: categories.clone(),
                        share,
                    },
                    impute: None,
                },
                BinProfile::of_nan(&values),
                &values,
            )?;
        }
        Ok(())
    }

    /// A number, boolean or date column (dates already as ages) encoded: its spec, its
    /// distribution before imputation (for drift) and its values with NULLs imputed by its rule.
    /// `present` holds the non-NULL values of `column`.
    fn number_column(
        &self,
        j: usize,
        mut column: Vec<f64>,
        mut present: Vec<f64>,
    ) -> Result<(FeatureSpec, BinProfile, Vec<f64>)> {
        let (name, sql_type) = (&self.names[j], &self.types[j]);
        let element = self.elements[j].clone();
        let source = match &element {
            Some(Encoding::Element { column, .. }) => column,
            _ => name,
        };
        let rule = self
            .imputation
            .iter()
            .find(|(c, _)| c == source)
            .map_or(&Imputation::Median, |(_, r)| r);
        let impute = rule.value_sorting(&mut present);
        let encoding = if let Some(element) = element {
            element
        } else if sql_type.is_time() {
            Encoding::DaysBefore { as_of: self.as_of }
        } else {
            Encoding::for_column(name, sql_type)?
        };
        let profile = BinProfile::of_nan_sorted(&column, &present);
        drop(present);
        column
            .iter_mut()
            .filter(|v| v.is_nan())
            .for_each(|v| *v = impute);
        let spec = FeatureSpec {
            name: name.clone(),
            sql_type: sql_type.sql_name().to_string(),
            encoding,
            impute: Some(impute),
        };
        Ok((spec, profile, column))
    }
}

/// Encoded feature columns as they are built (a text column may become several), written
/// into the row-major matrix the rows were read into, column `j` into slot `j` of every row.
struct EncodedColumns {
    specs: Vec<FeatureSpec>,
    profiles: Vec<(String, BinProfile)>,
    x: Vec<f64>,
    n_rows: usize,
    width: usize,
    pending_target_means: Vec<usize>,
}

impl EncodedColumns {
    fn new(n_rows: usize, width: usize, x: Vec<f64>) -> EncodedColumns {
        EncodedColumns {
            specs: Vec::new(),
            profiles: Vec::new(),
            x,
            n_rows,
            width,
            pending_target_means: Vec::new(),
        }
    }

    /// A copy of the values in `slot` of every row.
    fn column(&self, slot: usize) -> Result<Vec<f64>> {
        let mut values = try_with_capacity(self.n_rows, "a feature column")?;
        values.extend(self.x.iter().skip(slot).step_by(self.width.max(1)));
        Ok(values)
    }

    /// The next column's spec, profile and values (one per row).
    fn push(&mut self, spec: FeatureSpec, profile: BinProfile, values: &[f64]) -> Result<()> {
        let (j, p) = (self.specs.len(), self.width);
        if j >= p || values.len() != self.n_rows {
            return Err(EngineError::new(
                ErrorKind::Internal,
                format!(
                    "encoded column {} does not fit a matrix of {p} columns",
                    j + 1
                ),
            ));
        }
        for (cell, v) in self.x.iter_mut().skip(j).step_by(p).zip(values) {
            *cell = *v;
        }
        self.profiles.push((spec.name.clone(), profile));
        self.specs.push(spec);
        Ok(())
    }

    fn into_dataset(self, y: Vec<f64>, dropped_null_target: usize) -> Result<DatasetWithProfiles> {
        if self.specs.len() != self.width {
            return Err(EngineError::new(
                ErrorKind::Internal,
                format!(
                    "{} encoded columns for a matrix of {}",
                    self.specs.len(),
                    self.width
                ),
            ));
        }
        let data = Dataset {
            n_rows: self.n_rows,
            n_features: self.width,
            x: self.x,
            y,
            dropped_null_target,
            pending_target_means: self.pending_target_means,
            compact: None,
        };
        Ok((self.specs, data, self.profiles))
    }
}

/// Each value's position in `values`, counted from `first`.
fn positions(values: &[String], first: usize) -> HashMap<Box<[u8]>, f64> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (v.as_bytes().into(), (i + first) as f64))
        .collect()
}

fn non_finite(column: &str, value: f64, row_number: usize) -> EngineError {
    EngineError::new(
        ErrorKind::NonFiniteValue,
        format!("column \"{column}\" holds {value} in row {row_number} of the source"),
    )
    .with_detail("NaN and infinite values cannot be used for training.")
    .with_hint("Filter or replace them in a SELECT source.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RawTable {
        RawTable::new(
            "spend",
            vec![
                ("a".to_string(), SqlType::Integer),
                ("b".to_string(), SqlType::Boolean),
            ],
        )
        .unwrap()
    }

    #[test]
    fn nulls_are_imputed_with_the_median_and_null_targets_dropped() {
        let mut t = table();
        t.push_row(&[Some(1.0), Some(1.0)], Some(10.0)).unwrap();
        t.push_row(&[None, Some(0.0)], Some(20.0)).unwrap();
        t.push_row(&[Some(5.0), None], Some(30.0)).unwrap();
        t.push_row(&[Some(3.0), Some(0.0)], None).unwrap();
        t.push_row(&[Some(2.0), Some(1.0)], Some(40.0)).unwrap();
        let (specs, data) = t.into_dataset().unwrap();
        assert_eq!(data.n_rows, 4);
        assert_eq!(data.dropped_null_target, 1);
        // median of a over kept rows {1, 5, 2} = 2; of b over {1, 0, 1} = 1
        assert_eq!(specs[0].impute, Some(2.0));
        assert_eq!(specs[1].impute, Some(1.0));
        assert_eq!(data.row(1), &[2.0, 0.0]);
        assert_eq!(data.row(2), &[5.0, 1.0]);
        assert_eq!(data.y, vec![10.0, 20.0, 30.0, 40.0]);
        assert_eq!(specs[1].encoding, Encoding::Boolean);
    }

    #[test]
    fn constant_and_all_null_columns_are_refused_by_name() {
        let mut t = table();
        t.push_row(&[Some(1.0), None], Some(1.0)).unwrap();
        t.push_row(&[Some(2.0), None], Some(2.0)).unwrap();
        let err = t.into_dataset().unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        assert!(
            err.message.contains("\"b\" is NULL in every"),
            "{}",
            err.message
        );

        let mut t = table();
        t.push_row(&[Some(7.0), Some(1.0)], Some(1.0)).unwrap();
        t.push_row(&[Some(7.0), Some(0.0)], Some(2.0)).unwrap();
        let err = t.into_dataset().unwrap_err();
        assert!(
            err.message.contains("\"a\" is constant (7)"),
            "{}",
            err.message
        );
        let mut t = table();
        t.push_row(&[Some(1.7e308), Some(1.0)], Some(1.0)).unwrap();
        t.push_row(&[Some(1.7e308), Some(0.0)], Some(2.0)).unwrap();
        let err = t.into_dataset().unwrap_err();
        assert!(
            err.message.contains("is constant (1.7e308)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn non_finite_values_name_column_and_row() {
        let mut t = table();
        t.push_row(&[Some(1.0), Some(1.0)], Some(1.0)).unwrap();
        let err = t
            .push_row(&[Some(f64::NAN), Some(1.0)], Some(1.0))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NonFiniteValue);
        assert_eq!(err.message, "column \"a\" holds NaN in row 2 of the source");
        let err = t
            .push_row(&[Some(1.0), Some(1.0)], Some(f64::INFINITY))
            .unwrap_err();
        assert!(
            err.message.contains("\"spend\" holds inf"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unsupported_types_are_refused_with_the_column_named() {
        let err =
            RawTable::new("y", vec![("city".into(), SqlType::Other("text".into()))]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotSupported);
        assert!(err.message.contains("\"city\" has type text"));
    }

    #[test]
    fn boolean_features_refuse_numbers_and_number_features_accept_any_number() {
        assert!(Encoding::Number.accepts(&SqlType::Numeric));
        assert!(Encoding::Number.accepts(&SqlType::SmallInt));
        assert!(!Encoding::Number.accepts(&SqlType::Boolean));
        assert!(!Encoding::Boolean.accepts(&SqlType::Integer));
        assert!(!Encoding::Number.accepts(&SqlType::Other("text".into())));
    }
}

#[cfg(test)]
mod encoding_tests {
    use super::*;
    use crate::engine::features::{FeatureEncoder, Purpose};

    fn table() -> RawTable {
        let mut raw = RawTable::new(
            "y",
            vec![
                ("segment".into(), SqlType::Text),
                ("city".into(), SqlType::Text),
                ("last".into(), SqlType::Date),
            ],
        )
        .unwrap();
        // segment codes: 1 = a (most frequent), 2 = b, 3 = c; city has 12 categories
        raw.set_categories(0, vec!["a".into(), "b".into(), "c".into()]);
        raw.set_categories(1, (0..12).map(|i| format!("c{i}")).collect());
        raw.set_as_of(20_000.0);
        let cities: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
        for i in 0..60 {
            let segment = [
                RawValue::Text(b"a"),
                RawValue::Text(b"a"),
                RawValue::Text(b"b"),
                RawValue::Text(b"c"),
                RawValue::Null,
            ][i % 5];
            let city = RawValue::Text(cities[i % 12].as_bytes());
            let last = RawValue::Number(20_000.0 - i as f64);
            raw.push_values(&[segment, city, last], RawValue::Number(i as f64))
                .unwrap();
        }
        raw
    }

    #[test]
    fn one_hot_indicators_skip_the_reference_level_and_give_unknowns_the_shares() {
        let (specs, data) = table().into_dataset().unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["segment=b", "segment=c", "city", "last"]);
        // 48 non-NULL segments: 24 a, 12 b, 12 c → shares 0.25, 0.25
        let Encoding::Indicator { share, .. } = &specs[0].encoding else {
            panic!("indicator expected")
        };
        assert_eq!(*share, 0.25);
        assert_eq!(data.row(0)[..2], [0.0, 0.0]); // a: the reference level
        assert_eq!(data.row(2)[..2], [1.0, 0.0]); // b
        assert_eq!(data.row(4)[..2], [0.25, 0.25]); // NULL: the shares
                                                    // scoring encodes text the same way, and an unseen category like NULL
        let segment_b = FeatureEncoder::new(&specs[0], Purpose::Scoring);
        assert_eq!(segment_b.text(Some(b"b")), Some(1.0));
        assert_eq!(segment_b.text(Some(b"a")), Some(0.0));
        assert_eq!(segment_b.text(Some(b"zzz")), Some(0.25));
        assert_eq!(segment_b.text(None), Some(0.25));
        assert_eq!(specs[0].column(), "segment");
        // dates become ages at as_of: row i was i days before
        assert_eq!(data.row(7)[3], 7.0);
        assert_eq!(specs[3].encoding, Encoding::DaysBefore { as_of: 20_000.0 });
    }

    /// Columns n (a number), s (text of `categories`) and m (a number).
    fn text_between_numbers(categories: &[&str]) -> RawTable {
        let mut raw = RawTable::new(
            "y",
            vec![
                ("n".into(), SqlType::Double),
                ("s".into(), SqlType::Text),
                ("m".into(), SqlType::Double),
            ],
        )
        .unwrap();
        raw.set_categories(1, categories.iter().map(|c| c.to_string()).collect());
        raw
    }

    #[test]
    fn rows_without_a_target_leave_the_matrix_and_every_block_keeps_its_slots() {
        // a number, a one-hot block of two indicators, a number: rows 1 and 3 have no target
        let mut raw = text_between_numbers(&["a", "b", "c"]);
        let rows: [(f64, RawValue<'_>, f64, Option<f64>); 6] = [
            (1.0, RawValue::Text(b"c"), 10.0, Some(1.0)),
            (2.0, RawValue::Text(b"b"), 20.0, None),
            (3.0, RawValue::Null, 30.0, Some(3.0)),
            (4.0, RawValue::Text(b"a"), 40.0, None),
            (5.0, RawValue::Text(b"b"), 50.0, Some(5.0)),
            (6.0, RawValue::Text(b"zz"), 60.0, Some(6.0)),
        ];
        for (n, s, m, y) in rows {
            raw.push_values(&[RawValue::Number(n), s, RawValue::Number(m)], y.into())
                .unwrap();
        }
        let (specs, data) = raw.into_dataset().unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["n", "s=b", "s=c", "m"]);
        assert_eq!((data.n_rows, data.dropped_null_target), (4, 2));
        // kept s: c, NULL, b, unseen → present b and c once each: shares 1/2
        assert_eq!(
            data.x,
            [
                [1.0, 0.0, 1.0, 10.0],
                [3.0, 0.5, 0.5, 30.0],
                [5.0, 1.0, 0.0, 50.0],
                [6.0, 0.5, 0.5, 60.0],
            ]
            .concat()
        );
        assert_eq!(data.y, [1.0, 3.0, 5.0, 6.0]);
    }

    #[test]
    fn a_text_column_of_one_category_is_refused_by_name_between_others() {
        let mut raw = text_between_numbers(&["only"]);
        for i in 0..4 {
            let v = f64::from(i);
            raw.push_values(
                &[
                    RawValue::Number(v),
                    RawValue::Text(b"only"),
                    RawValue::Number(v),
                ],
                RawValue::Number(v),
            )
            .unwrap();
        }
        let err = raw.into_dataset().unwrap_err();
        assert!(
            err.message.contains("\"s\" is constant (\"only\")"),
            "{}",
            err.message
        );
    }

    /// Number columns around a one-hot block, with NULLs, a date and a mean imputation.
    fn mixed_table(threads: usize, constant: &[usize]) -> RawTable {
        let names = ["a", "b", "s", "c", "d", "e"];
        let types = [
            SqlType::Double,
            SqlType::Date,
            SqlType::Text,
            SqlType::Double,
            SqlType::Integer,
            SqlType::Double,
        ];
        let columns = names
            .iter()
            .zip(types)
            .map(|(n, t)| (n.to_string(), t))
            .collect();
        let mut raw = RawTable::new("y", columns).unwrap();
        raw.set_categories(2, vec!["x".into(), "y".into(), "z".into()]);
        raw.set_as_of(20_000.0);
        raw.set_imputation(vec![("d".into(), Imputation::Mean)])
            .unwrap();
        raw.set_threads(threads);
        let mut rng = crate::engine::stats::SplitMix64::new(17);
        for i in 0..3000 {
            let mut number = |j: usize| {
                if constant.contains(&j) {
                    RawValue::Number(1.0)
                } else if i % (7 + j) == 0 {
                    RawValue::Null
                } else {
                    RawValue::Number((rng.next_f64() * 1000.0).round() / 10.0)
                }
            };
            let (a, b, c, d, e) = (number(0), number(1), number(3), number(4), number(5));
            let s = [RawValue::Text(b"x"), RawValue::Text(b"z"), RawValue::Null][i % 3];
            raw.push_values(&[a, b, s, c, d, e], RawValue::Number(i as f64))
                .unwrap();
        }
        raw
    }

    #[test]
    fn number_columns_encode_to_the_same_bits_on_any_number_of_threads() {
        let (specs, data, profiles) = mixed_table(1, &[]).into_dataset_with_profiles().unwrap();
        for threads in [2, 3, 8] {
            let (s, d, p) = mixed_table(threads, &[])
                .into_dataset_with_profiles()
                .unwrap();
            assert_eq!(s, specs);
            assert_eq!(p, profiles);
            let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&d.x), bits(&data.x), "{threads} threads");
        }
        // the first column at fault in column order is named, whatever finishes first
        for threads in [1, 3] {
            let err = mixed_table(threads, &[4, 3])
                .into_dataset_with_profiles()
                .unwrap_err();
            assert!(err.message.contains("\"c\" is constant"), "{}", err.message);
        }
    }

    #[test]
    fn target_means_come_from_the_training_rows_only() {
        let (mut specs, mut data) = table().into_dataset().unwrap();
        assert_eq!(data.pending_target_means, vec![2]);
        // train on rows 0..12 only: city c(k) holds row k − 1 with y = k − 1
        let train: Vec<usize> = (0..12).collect();
        data.encode_target_means(&mut specs, &train);
        let Encoding::TargetMean {
            means, fallback, ..
        } = &specs[2].encoding
        else {
            panic!("target mean expected")
        };
        // overall mean of y 0..11 = 5.5; c1 (code 1) has one row y = 0:
        // (0 + 20 · 5.5) / (1 + 20) = 110 / 21
        assert_eq!(*fallback, 5.5);
        assert!((means[0] - 110.0 / 21.0).abs() < 1e-12);
        // rows outside the training rows use the same means (row 12 is city c1 again)
        assert!((data.row(12)[2] - 110.0 / 21.0).abs() < 1e-12);
        let city = FeatureEncoder::new(&specs[2], Purpose::Scoring);
        assert_eq!(city.text(Some(b"c0")), Some(means[0]));
        assert_eq!(city.text(Some(b"nowhere")), Some(5.5));
        assert!(data.pending_target_means.is_empty());
    }
}
