//! What a log model reads for a customer at a cut-off: the kept log features of the snapshot
//! and the static attributes, as one training table, and as encoded model input when scoring
//! the population, the champion, and the drift profiles — the same mapping everywhere.

use crate::engine::codec::ModelArtifact;
use crate::engine::drift::BinProfile;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::ArrayShape;
use crate::engine::features::{
    encoders, Dataset, FeatureEncoder, FeatureSpec, Purpose, RawTable, RawValue, SqlType,
};
use crate::engine::purchases::attributes::Attributes;
use crate::engine::purchases::sequence::{SequenceShape, CHANNELS};
use crate::engine::purchases::snapshot::{Snapshot, FEATURES};
use crate::engine::purchases::PurchaseLog;

use super::log::LOG_TARGET;

/// Where a model feature's raw value comes from.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// Log feature `j` of the snapshot ([`FEATURES`]).
    Log(usize),
    /// Attribute column `a`.
    Attribute(usize),
    /// Period `position` of the history's channel `channel` ([`CHANNELS`]).
    Sequence { channel: usize, position: usize },
}

/// Where the histories of the sequence models come from: the log, in periods of `period_days`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Histories<'a> {
    pub log: &'a PurchaseLog,
    pub period_days: i32,
}

impl Histories<'_> {
    /// Customer `i` of `snapshot`'s history of `length` periods, both channels.
    fn of(&self, snapshot: &Snapshot, i: usize, length: usize) -> [Vec<f64>; 2] {
        let shape = SequenceShape {
            period_days: self.period_days,
            length,
        };
        shape.values(self.log.history(snapshot.customers[i]), snapshot.cutoff)
    }
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
            let sequence = f.array_element().and_then(|(_, position)| {
                let channel = CHANNELS.iter().position(|c| *c == name)?;
                Some(Column::Sequence { channel, position })
            });
            sequence
                .or_else(|| FEATURES.iter().position(|n| *n == name).map(Column::Log))
                .or_else(|| attributes.position(name).map(Column::Attribute))
                .ok_or_else(|| name.to_string())
        })
        .collect()
}

/// The raw value of `column` for customer `i` of `snapshot` (`history`: the customer's, when
/// the model reads one).
fn raw<'a>(
    snapshot: &Snapshot,
    attributes: &'a Attributes,
    i: usize,
    column: Column,
    history: &[Vec<f64>; 2],
) -> RawValue<'a> {
    match column {
        Column::Log(j) => RawValue::from(snapshot.row(i)[j]),
        Column::Attribute(a) => attributes.value(snapshot.customers[i], a),
        Column::Sequence { channel, position } => {
            RawValue::from(history[channel].get(position).copied())
        }
    }
}

/// A model's input for customers of snapshots, encoded as the model reads it.
pub(super) struct ModelInput<'a> {
    columns: Vec<Column>,
    encoders: Vec<FeatureEncoder>,
    attributes: &'a Attributes,
    x: Vec<f64>,
    /// Where histories come from, how many periods the model reads (0: none), and the last
    /// customer's: (cut-off, customer, both channels).
    histories: Option<Histories<'a>>,
    periods: usize,
    history: (i32, usize, [Vec<f64>; 2]),
}

impl<'a> ModelInput<'a> {
    pub fn new(
        features: &[FeatureSpec],
        attributes: &'a Attributes,
        histories: Option<Histories<'a>>,
        purpose: Purpose,
    ) -> std::result::Result<Self, String> {
        let columns = columns_of(features, attributes)?;
        let periods = features
            .iter()
            .zip(&columns)
            .find(|(_, c)| matches!(c, Column::Sequence { .. }))
            .and_then(|(f, _)| f.array_element())
            .map_or(0, |(shape, _)| shape.length);
        if periods > 0 && histories.is_none() {
            return Err(CHANNELS[0].to_string());
        }
        Ok(ModelInput {
            columns,
            encoders: encoders(features, purpose),
            attributes,
            x: vec![0.0; features.len()],
            histories,
            periods,
            history: (i32::MIN, 0, [Vec::new(), Vec::new()]),
        })
    }

    /// Reads customer `i` of `snapshot`'s history, unless it is the one read last.
    fn read_history(&mut self, snapshot: &Snapshot, i: usize) {
        let (cutoff, customer, _) = &self.history;
        if self.periods == 0 || (*cutoff, *customer) == (snapshot.cutoff, i) {
            return;
        }
        if let Some(h) = &self.histories {
            self.history = (snapshot.cutoff, i, h.of(snapshot, i, self.periods));
        }
    }

    /// Customer `i` of `snapshot`, encoded (NaN where the encoder has no value).
    pub fn row(&mut self, snapshot: &Snapshot, i: usize) -> &[f64] {
        self.read_history(snapshot, i);
        for (k, column) in self.columns.iter().enumerate() {
            let value = raw(snapshot, self.attributes, i, *column, &self.history.2);
            self.x[k] = self.encoders[k].encode(value).unwrap_or(f64::NAN);
        }
        &self.x
    }

    /// Feature `k` of customer `i`, for a profile (`None` = NULL kept).
    fn value(&mut self, snapshot: &Snapshot, i: usize, k: usize) -> Option<f64> {
        self.read_history(snapshot, i);
        let value = raw(
            snapshot,
            self.attributes,
            i,
            self.columns[k],
            &self.history.2,
        );
        self.encoders[k].encode(value)
    }
}

/// The training table: for each example (snapshot index, customer) the kept log features, the
/// attributes and (`history`: for a sequence model) the customer's history up to the cut-off
/// as the [`CHANNELS`]' array features; the target is given per example.
pub(super) fn training_table(
    snapshots: &[Snapshot],
    examples: impl Iterator<Item = (usize, usize, f64)>,
    kept: &[usize],
    attributes: &Attributes,
    history: Option<(Histories<'_>, usize)>,
) -> Result<(Vec<FeatureSpec>, Dataset)> {
    let periods = history.map_or(0, |(_, length)| length);
    let array = SqlType::NumberArray("double precision[]".into());
    let sequence_columns = CHANNELS
        .iter()
        .flat_map(|c| (0..periods).map(|t| (ArrayShape::element_name(c, t), array.clone())));
    let columns: Vec<(String, SqlType)> = kept
        .iter()
        .map(|&j| (FEATURES[j].to_string(), SqlType::Double))
        .chain(attributes.columns().iter().cloned())
        .chain(sequence_columns)
        .collect();
    let n_attributes = attributes.columns().len();
    let mut table = RawTable::new(LOG_TARGET, columns)?;
    for (a, (_, sql_type)) in attributes.columns().iter().enumerate() {
        if *sql_type == SqlType::Text {
            table.set_categories(kept.len() + a, attributes.categories(a));
        }
    }
    let first_period = kept.len() + n_attributes;
    let shape = ArrayShape {
        length: periods,
        pad: false,
    };
    for (c, channel) in CHANNELS.iter().enumerate() {
        for t in 0..periods {
            table.set_array_element(first_period + c * periods + t, channel, shape, t);
        }
    }
    let mut values = Vec::with_capacity(first_period + 2 * periods);
    for (s, i, target) in examples {
        let snapshot = &snapshots[s];
        let row = snapshot.row(i);
        let c = snapshot.customers[i];
        values.clear();
        values.extend(kept.iter().map(|&j| RawValue::from(row[j])));
        values.extend((0..n_attributes).map(|a| attributes.value(c, a)));
        if let Some((h, length)) = history {
            let [purchases, spend] = h.of(snapshot, i, length);
            values.extend(purchases.into_iter().chain(spend).map(RawValue::Number));
        }
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
    histories: Option<Histories<'_>>,
) -> Result<Vec<(String, BinProfile)>> {
    let purpose = Purpose::Profile {
        now_days: f64::from(scoring.cutoff),
    };
    let mut input =
        ModelInput::new(features, attributes, histories, purpose).map_err(unknown_column)?;
    let mut columns: Vec<Vec<Option<f64>>> =
        vec![Vec::with_capacity(scoring.len()); features.len()];
    for i in 0..scoring.len() {
        for (k, column) in columns.iter_mut().enumerate() {
            column.push(input.value(scoring, i, k));
        }
    }
    Ok(features
        .iter()
        .zip(columns)
        .map(|(f, column)| (f.name.clone(), BinProfile::of(&column)))
        .collect())
}

/// The champion's input, or why the features of this log cannot feed it.
pub(super) fn champion_input<'a>(
    champion: &ModelArtifact,
    attributes: &'a Attributes,
    histories: Option<Histories<'a>>,
) -> std::result::Result<ModelInput<'a>, String> {
    let features = &champion.features;
    ModelInput::new(features, attributes, histories, Purpose::Scoring).map_err(|name| {
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
    histories: Option<Histories<'a>>,
) -> Result<ModelInput<'a>> {
    ModelInput::new(features, attributes, histories, Purpose::Scoring).map_err(unknown_column)
}
