//! What a log model reads for a customer at a cut-off: the kept log features of the snapshot
//! and the static attributes, as one training table, and as encoded model input when scoring
//! the population, the champion, and the drift profiles — the same mapping everywhere.

use crate::engine::codec::ModelArtifact;
use crate::engine::drift::BinProfile;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{
    encoders, Dataset, FeatureEncoder, FeatureSpec, Purpose, RawTable, RawValue, SqlType,
};
use crate::engine::purchases::attributes::Attributes;
use crate::engine::purchases::snapshot::{Snapshot, FEATURES};

use super::log::LOG_TARGET;

/// Where a model feature's raw value comes from.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// Log feature `j` of the snapshot ([`FEATURES`]).
    Log(usize),
    /// Attribute column `a`.
    Attribute(usize),
}

/// Each model feature's column; `Err` names one that neither the log nor the attributes have.
fn columns_of(
    features: &[FeatureSpec],
    attributes: &Attributes,
) -> std::result::Result<Vec<Column>, String> {
    features
        .iter()
        .map(|f| {
            let name = f.column();
            FEATURES
                .iter()
                .position(|n| *n == name)
                .map(Column::Log)
                .or_else(|| attributes.position(name).map(Column::Attribute))
                .ok_or_else(|| name.to_string())
        })
        .collect()
}

/// The raw value of `column` for customer `i` of `snapshot`.
fn raw<'a>(
    snapshot: &Snapshot,
    attributes: &'a Attributes,
    i: usize,
    column: Column,
) -> RawValue<'a> {
    match column {
        Column::Log(j) => RawValue::from(snapshot.row(i)[j]),
        Column::Attribute(a) => attributes.value(snapshot.customers[i], a),
    }
}

/// A model's input for customers of snapshots, encoded as the model reads it.
pub(super) struct ModelInput<'a> {
    columns: Vec<Column>,
    encoders: Vec<FeatureEncoder>,
    attributes: &'a Attributes,
    x: Vec<f64>,
}

impl<'a> ModelInput<'a> {
    pub fn new(
        features: &[FeatureSpec],
        attributes: &'a Attributes,
        purpose: Purpose,
    ) -> std::result::Result<Self, String> {
        Ok(ModelInput {
            columns: columns_of(features, attributes)?,
            encoders: encoders(features, purpose),
            attributes,
            x: vec![0.0; features.len()],
        })
    }

    /// Customer `i` of `snapshot`, encoded (NaN where the encoder has no value).
    pub fn row(&mut self, snapshot: &Snapshot, i: usize) -> &[f64] {
        for (k, column) in self.columns.iter().enumerate() {
            let value = raw(snapshot, self.attributes, i, *column);
            self.x[k] = self.encoders[k].encode(value).unwrap_or(f64::NAN);
        }
        &self.x
    }

    /// Feature `k` of customer `i`, for a profile (`None` = NULL kept).
    fn value(&self, snapshot: &Snapshot, i: usize, k: usize) -> Option<f64> {
        self.encoders[k].encode(raw(snapshot, self.attributes, i, self.columns[k]))
    }
}

/// The training table: for each example (snapshot index, customer) the kept log features and
/// the attributes; the target is given per example.
pub(super) fn training_table(
    snapshots: &[Snapshot],
    examples: impl Iterator<Item = (usize, usize, f64)>,
    kept: &[usize],
    attributes: &Attributes,
) -> Result<(Vec<FeatureSpec>, Dataset)> {
    let columns: Vec<(String, SqlType)> = kept
        .iter()
        .map(|&j| (FEATURES[j].to_string(), SqlType::Double))
        .chain(attributes.columns().iter().cloned())
        .collect();
    let n_attributes = attributes.columns().len();
    let mut table = RawTable::new(LOG_TARGET, columns)?;
    for (a, (_, sql_type)) in attributes.columns().iter().enumerate() {
        if *sql_type == SqlType::Text {
            table.set_categories(kept.len() + a, attributes.categories(a));
        }
    }
    let mut values = Vec::with_capacity(kept.len() + n_attributes);
    for (s, i, target) in examples {
        let snapshot = &snapshots[s];
        let row = snapshot.row(i);
        let c = snapshot.customers[i];
        values.clear();
        values.extend(kept.iter().map(|&j| RawValue::from(row[j])));
        values.extend((0..n_attributes).map(|a| attributes.value(c, a)));
        table.push_values(&values, RawValue::Number(target))?;
    }
    table.into_dataset()
}

/// The distribution of each model feature over the customers of `scoring` (NULL kept; a
/// category by its code), as drift will profile the feature table.
pub(super) fn feature_profiles(
    scoring: &Snapshot,
    features: &[FeatureSpec],
    attributes: &Attributes,
) -> Result<Vec<(String, BinProfile)>> {
    let purpose = Purpose::Profile {
        now_days: f64::from(scoring.cutoff),
    };
    let input = ModelInput::new(features, attributes, purpose).map_err(unknown_column)?;
    Ok(features
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let column: Vec<Option<f64>> = (0..scoring.len())
                .map(|i| input.value(scoring, i, k))
                .collect();
            (f.name.clone(), BinProfile::of(&column))
        })
        .collect())
}

/// The champion's input, or why the features of this log cannot feed it.
pub(super) fn champion_input<'a>(
    champion: &ModelArtifact,
    attributes: &'a Attributes,
) -> std::result::Result<ModelInput<'a>, String> {
    ModelInput::new(&champion.features, attributes, Purpose::Scoring).map_err(|name| {
        format!("its feature \"{name}\" is neither a feature of train_from_log nor an attribute")
    })
}

fn unknown_column(name: String) -> EngineError {
    EngineError::new(
        ErrorKind::Internal,
        format!("model feature \"{name}\" has no column"),
    )
}

/// The input of the model being trained (its features come from these very columns).
pub(super) fn own_input<'a>(
    features: &[FeatureSpec],
    attributes: &'a Attributes,
) -> Result<ModelInput<'a>> {
    ModelInput::new(features, attributes, Purpose::Scoring).map_err(unknown_column)
}
