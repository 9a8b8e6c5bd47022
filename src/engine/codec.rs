//! The stored model: everything scoring needs (feature schema, predictor, tiers) in one
//! self-describing byte string.
//!
//! Layout (little endian):
//! ```text
//! offset 0  magic            8 bytes  "CVMODEL\0"
//! offset 8  format version   u16      FORMAT_VERSION
//! offset 10 reserved         u16      0
//! offset 12 payload length   u32
//! offset 16 CRC-32 (IEEE)    u32      of the payload
//! offset 20 payload          postcard encoding of ModelArtifact
//! ```
//! Decoding checks every field before trusting the payload, then validates the structure
//! (lengths, tree indices), so a corrupted, truncated or foreign byte string is a clean error —
//! never a crash and never a silently wrong prediction. A newer format version is refused with a
//! message that says what to do; older versions stay readable, each decoded into a frozen copy
//! of its layout and converted: version 1 (customer_value 0.1) into [`ModelArtifactV1`],
//! version 2 (customer_value 0.2) into [`ModelArtifactV2`]. Version 3 (customer_value 0.3)
//! added the RFM segment boundaries.
//!
//! Compatibility rule for the nested types (features, predictors, tiers): postcard encodes an
//! enum variant by its index and a struct as its fields in order, so a variant may be *appended*
//! to an enum without touching older bytes, but adding or reordering struct fields needs a new
//! format version and a frozen copy of the old layout here.

use serde::{Deserialize, Serialize};

use super::clv::model::ClvQuantity;
use super::error::{EngineError, ErrorKind, Result};
use super::features::FeatureSpec;
use super::models::{Algorithm, Predictor};
use super::segments::RfmSegments;
use super::tiers::TierScheme;

pub const MAGIC: &[u8; 8] = b"CVMODEL\0";
pub const FORMAT_VERSION: u16 = 3;
pub const HEADER_LEN: usize = 20;

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    Regression,
    /// A probabilistic customer-lifetime-value model.
    Clv,
    /// A binary classifier: the prediction is the probability of the positive class.
    Classification,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Regression => "regression",
            Task::Clv => "clv",
            Task::Classification => "classification",
        }
    }
}

/// How the predictor's raw output becomes the prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Link {
    Identity,
    /// The logistic function: the predictor gives log-odds (logistic regression, boosted trees
    /// on log loss), kept additive for explanations; the prediction is a probability.
    Logistic,
}

/// A transformation of the target applied for training and undone for the prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetTransform {
    Identity,
    /// Trained on ln(1 + y) (skewed spend with many zeros); predictions are e^p − 1.
    Log1p,
}

/// A trained model as stored in `customer_value.models.model` (format version 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub algorithm: Algorithm,
    pub task: Task,
    pub target: Option<String>,
    pub features: Vec<FeatureSpec>,
    pub predictor: Predictor,
    pub tiers: TierScheme,
    pub link: Link,
    pub target_transform: TargetTransform,
    /// Class labels of a classifier, negative class first (e.g. `["false", "true"]`).
    pub classes: Vec<String>,
    /// Training cover of every tree node (for exact TreeSHAP explanations); empty if unknown.
    pub covers: Vec<f64>,
    /// Split gain of every tree node (gain importance of boosted trees); empty if unknown.
    pub gains: Vec<f64>,
    /// Mean of each encoded feature over the training rows (the baseline of linear
    /// explanations); empty if unknown.
    pub feature_means: Vec<f64>,
    /// The RFM segment boundaries of the training population (`rfm_segment`): models trained
    /// from a purchase log or on an RFM summary with its monetary value; `None` otherwise.
    pub segments: Option<RfmSegments>,
    /// Derived on first use and never stored (not part of the format).
    #[serde(skip)]
    pub derived: Derived,
}

/// What is computed from a model once and reused for every row: the TreeSHAP tables (a decoded
/// model lives in the backend cache, so `explain` over many rows prepares them once).
#[derive(Debug, Clone, Default)]
pub struct Derived {
    tree_shap: std::cell::OnceCell<super::models::explain::TreeShapTables>,
}

impl PartialEq for Derived {
    /// A cache: two models are equal whatever has been derived from them so far.
    fn eq(&self, _: &Derived) -> bool {
        true
    }
}

/// Per-feature contributions to one prediction: `baseline + Σ contributions = prediction`,
/// on the scale the model adds up on (`scale`).
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub baseline: f64,
    pub prediction: f64,
    pub contributions: Vec<f64>,
    /// "value", "log_odds" (a classifier with a logistic link) or "log1p" (a log1p target).
    pub scale: &'static str,
    /// `prediction − baseline − Σ contributions` of an approximate method (integrated
    /// gradients); `None` for the exact ones.
    pub residual: Option<f64>,
    /// The key each contribution is reported under (by column, or a sequence's period).
    pub keys: Vec<String>,
}

/// An array element's position lies within its length, and every element of one array column
/// agrees on its shape (scoring places the array once per row, for all of them).
fn check_array_element(f: &FeatureSpec, earlier: &[FeatureSpec]) -> Result<()> {
    let Some((shape, position)) = f.array_element() else {
        return Ok(());
    };
    let bad = !(1..=super::features::MAX_ARRAY_LENGTH).contains(&shape.length)
        || position >= shape.length
        || earlier
            .iter()
            .any(|g| g.column() == f.column() && g.array_element().is_none_or(|(s, _)| s != shape));
    if bad {
        return Err(EngineError::corrupted(format!(
            "array feature \"{}\" does not fit its array's shape",
            f.name
        )));
    }
    Ok(())
}

/// Format version 1 (customer_value 0.1), frozen: never change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifactV1 {
    pub algorithm: Algorithm,
    pub task: Task,
    pub target: Option<String>,
    pub features: Vec<FeatureSpec>,
    pub predictor: Predictor,
    pub tiers: TierScheme,
}

impl From<ModelArtifactV1> for ModelArtifact {
    fn from(v1: ModelArtifactV1) -> ModelArtifact {
        ModelArtifactV2 {
            algorithm: v1.algorithm,
            task: v1.task,
            target: v1.target,
            features: v1.features,
            predictor: v1.predictor,
            tiers: v1.tiers,
            link: Link::Identity,
            target_transform: TargetTransform::Identity,
            classes: Vec::new(),
            covers: Vec::new(),
            gains: Vec::new(),
            feature_means: Vec::new(),
        }
        .into()
    }
}

/// Format version 2 (customer_value 0.2), frozen: never change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifactV2 {
    pub algorithm: Algorithm,
    pub task: Task,
    pub target: Option<String>,
    pub features: Vec<FeatureSpec>,
    pub predictor: Predictor,
    pub tiers: TierScheme,
    pub link: Link,
    pub target_transform: TargetTransform,
    pub classes: Vec<String>,
    pub covers: Vec<f64>,
    pub gains: Vec<f64>,
    pub feature_means: Vec<f64>,
}

impl From<ModelArtifactV2> for ModelArtifact {
    fn from(v2: ModelArtifactV2) -> ModelArtifact {
        ModelArtifact {
            algorithm: v2.algorithm,
            task: v2.task,
            target: v2.target,
            features: v2.features,
            predictor: v2.predictor,
            tiers: v2.tiers,
            link: v2.link,
            target_transform: v2.target_transform,
            classes: v2.classes,
            covers: v2.covers,
            gains: v2.gains,
            feature_means: v2.feature_means,
            segments: None,
            derived: Derived::default(),
        }
    }
}

fn decode_payload<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T> {
    let (value, rest): (T, &[u8]) = postcard::take_from_bytes(payload)
        .map_err(|e| EngineError::corrupted(format!("model payload cannot be decoded: {e}")))?;
    if !rest.is_empty() {
        return Err(EngineError::corrupted(format!(
            "model payload has {} unexpected trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}

impl ModelArtifact {
    /// A model of any kind (value, class or CLV model) with no class labels, link or
    /// explanation data yet: training sets those that apply.
    pub fn new(
        algorithm: Algorithm,
        task: Task,
        target: Option<String>,
        features: Vec<FeatureSpec>,
        predictor: Predictor,
        tiers: TierScheme,
    ) -> ModelArtifact {
        ModelArtifactV1 {
            algorithm,
            task,
            target,
            features,
            predictor,
            tiers,
        }
        .into()
    }

    /// Whether encoded inputs `x` can be scored: a CLV model's row must be a valid summary
    /// (frequency a whole number ≥ 0, 0 ≤ recency ≤ t, …) — anything else would give a
    /// meaningless number or overflow, so it is refused with what is wrong.
    pub fn check_row(&self, x: &[f64]) -> Result<()> {
        if self.task != Task::Clv || x.len() < 3 {
            return Ok(());
        }
        match super::clv::data::summary_problem(x[0], x[1], x[2]) {
            None => Ok(()),
            Some(problem) => Err(EngineError::invalid_parameter(format!(
                "this row is not a valid RFM summary: {problem}"
            ))
            .with_hint("customer_value.rfm() and create_rfm() build valid summaries: frequency counts repeat purchases, recency is the age at the last purchase (0 ≤ recency ≤ t).")),
        }
    }

    /// Predicts from encoded feature values (one per feature, in feature order): the value, or
    /// for a classifier the probability of the positive class.
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        let raw = self.predictor.predict(x);
        let linked = match self.link {
            Link::Identity => raw,
            Link::Logistic => super::stats::sigmoid(raw),
        };
        match self.target_transform {
            TargetTransform::Identity => linked,
            TargetTransform::Log1p => linked.exp_m1(),
        }
    }

    /// Exact per-feature contributions for encoded inputs `x`: `coef · (x − training mean)` for
    /// linear models, TreeSHAP (Lundberg et al. 2018) with the stored node covers for tree
    /// ensembles. Models without the needed training facts (trained before 0.2.0), MLPs and
    /// CLV models are refused with a reason.
    pub fn explain(&self, x: &[f64]) -> Result<Explanation> {
        use super::models::explain::{linear_contributions, TreeExplainer, TreeShapTables};
        let unavailable = |why: &str| {
            Err(EngineError::new(
                ErrorKind::NotSupported,
                format!(
                    "explanations are not available for this {} model: {why}",
                    self.algorithm.name()
                ),
            ))
        };
        let (baseline, contributions) = match &self.predictor {
            Predictor::Linear(m) if !self.feature_means.is_empty() => {
                linear_contributions(m, &self.feature_means, x)?
            }
            Predictor::Trees(t) if !self.covers.is_empty() => {
                let cell = &self.derived.tree_shap;
                if cell.get().is_none() {
                    let _ = cell.set(TreeShapTables::new(t, &self.covers)?);
                }
                let tables = cell.get().ok_or_else(|| {
                    EngineError::new(ErrorKind::Internal, "TreeSHAP tables were not kept")
                })?;
                let explainer = TreeExplainer::with_tables(t, tables)?;
                (explainer.baseline(), explainer.contributions(x)?)
            }
            Predictor::Linear(_) | Predictor::Trees(_) => {
                return unavailable("it was trained before customer_value 0.2.0 (retrain it)")
            }
            Predictor::Mlp(_) | Predictor::Ziln(_) => {
                return unavailable("a neural network has no exact additive explanation")
            }
            Predictor::Sequence(m) => {
                let (baseline, contributions) = m.integrated_gradients(x);
                let prediction = self.predict_raw_output(x);
                let residual = prediction - baseline - contributions.iter().sum::<f64>();
                return Ok(Explanation {
                    baseline,
                    prediction,
                    contributions,
                    scale: self.explanation_scale(),
                    residual: Some(residual),
                    keys: m.contribution_keys(&self.features),
                });
            }
            Predictor::OneVsRest(_) => {
                return unavailable("a multi-class model has one explanation per class, not one per prediction")
            }
            Predictor::Hurdle(_) => {
                return unavailable("a two-part model's prediction is the product of two models, P(buy) × E[spend | buy], not a sum of contributions")
            }
            Predictor::Clv(_) => {
                return unavailable("a CLV model's value follows from frequency, recency and t by its formula (see model_params)")
            }
        };
        Ok(Explanation {
            baseline,
            prediction: self.predict_raw_output(x),
            contributions,
            scale: self.explanation_scale(),
            residual: None,
            keys: self
                .features
                .iter()
                .map(|f| f.column().to_string())
                .collect(),
        })
    }

    /// The scale explanations add up on.
    fn explanation_scale(&self) -> &'static str {
        match (self.link, self.target_transform) {
            (Link::Logistic, _) => "log_odds",
            (_, TargetTransform::Log1p) => "log1p",
            _ => "value",
        }
    }

    /// The predicted class label of a classifier (binary: by the 0.5 cut; multi-class: the most
    /// likely class); `None` for a value model.
    pub fn predicted_label(&self, x: &[f64]) -> Option<&str> {
        if self.task != Task::Classification {
            return None;
        }
        let k = match &self.predictor {
            Predictor::OneVsRest(_) => self.predictor.predicted_class(x)?,
            _ => usize::from(self.predict(x) >= 0.5),
        };
        self.classes.get(k).map(String::as_str)
    }

    /// The predictor's raw output (log-odds for a logistic link), the scale explanations add up on.
    #[inline]
    pub fn predict_raw_output(&self, x: &[f64]) -> f64 {
        self.predictor.predict(x)
    }

    /// Predicts from raw column values (one per feature, `None` for SQL NULL), imputing as
    /// scoring does; `x` is a reusable buffer. A NULL where the model has no imputation value is
    /// an error naming the feature.
    pub fn predict_raw(&self, raw: &[Option<f64>], x: &mut Vec<f64>) -> Result<f64> {
        if raw.len() != self.features.len() {
            return Err(EngineError::new(
                ErrorKind::Internal,
                format!(
                    "{} raw values for a model with {} features",
                    raw.len(),
                    self.features.len()
                ),
            ));
        }
        x.clear();
        for (value, spec) in raw.iter().zip(&self.features) {
            match value.or(spec.impute) {
                Some(v) => x.push(v),
                None => {
                    return Err(EngineError::new(
                        ErrorKind::NullValue,
                        format!("feature \"{}\" is NULL", spec.name),
                    ))
                }
            }
        }
        Ok(self.predict(x))
    }

    /// A CLV quantity (expected purchases, P(alive), expected spend) for encoded inputs.
    pub fn clv_quantity(&self, quantity: ClvQuantity, x: &[f64]) -> Result<f64> {
        match &self.predictor {
            Predictor::Clv(m) => m.quantity(quantity, x, &format!("this {} model", self.algorithm.name())),
            _ => Err(EngineError::invalid_parameter(format!(
                "this {} model is not a CLV model",
                self.algorithm.name()
            ))
            .with_hint("expected_purchases, p_alive and expected_spend need a model trained with bgnbd, pareto_nbd, gamma_gamma or clv.")),
        }
    }

    /// The fitted parameters, as `customer_value.model_params` returns them.
    pub fn params(&self) -> serde_json::Value {
        let names: Vec<&str> = self.features.iter().map(|f| f.name.as_str()).collect();
        let mut params = self.predictor.params(&names);
        if let Some(map) = params.as_object_mut() {
            map.insert("algorithm".into(), serde_json::json!(self.algorithm.name()));
            if let Some(segments) = &self.segments {
                map.insert("rfm_segments".into(), segments.params());
            }
        }
        params
    }

    pub fn validate(&self) -> Result<()> {
        if self.features.is_empty() {
            return Err(EngineError::corrupted("model has no features"));
        }
        for (i, f) in self.features.iter().enumerate() {
            if f.impute.is_some_and(|v| !v.is_finite()) {
                return Err(EngineError::corrupted(format!(
                    "feature \"{}\" has a non-finite imputation value",
                    f.name
                )));
            }
            if self.features[..i].iter().any(|g| g.name == f.name) {
                return Err(EngineError::corrupted(format!(
                    "feature \"{}\" appears twice",
                    f.name
                )));
            }
            check_array_element(f, &self.features[..i])?;
        }
        self.predictor.validate(self.features.len())?;
        let n_nodes = match &self.predictor {
            Predictor::Trees(t) => t.nodes.len(),
            _ => 0,
        };
        for (what, values) in [("covers", &self.covers), ("gains", &self.gains)] {
            if !values.is_empty() && values.len() != n_nodes {
                return Err(EngineError::corrupted(format!(
                    "model has {} tree-node {what} for {n_nodes} nodes",
                    values.len()
                )));
            }
            if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(EngineError::corrupted(format!(
                    "model has an invalid tree-node {what} value"
                )));
            }
        }
        if !self.feature_means.is_empty() && self.feature_means.len() != self.features.len() {
            return Err(EngineError::corrupted(
                "model's feature means do not match its features",
            ));
        }
        if self.feature_means.iter().any(|v| !v.is_finite()) {
            return Err(EngineError::corrupted(
                "model has a non-finite feature mean",
            ));
        }
        match (self.task, self.classes.len(), &self.predictor) {
            (Task::Classification, n, Predictor::OneVsRest(models)) if n == models.len() => {}
            (Task::Classification, 2, p) if !matches!(p, Predictor::OneVsRest(_)) => {}
            (Task::Classification, n, _) => {
                return Err(EngineError::corrupted(format!(
                    "a classifier has {n} class labels for its class models"
                )))
            }
            (_, 0, p) if !matches!(p, Predictor::OneVsRest(_)) => {}
            (_, _, _) => return Err(EngineError::corrupted("a value model has class labels")),
        }
        if self.link == Link::Logistic && self.task != Task::Classification {
            return Err(EngineError::corrupted("a logistic link on a value model"));
        }
        if let Some(segments) = &self.segments {
            segments.validate()?;
        }
        self.tiers.validate()
    }

    /// Largest encoded model: a bytea value (a varlena) holds at most 1 GB including its
    /// 4-byte header.
    pub const MAX_STORED_BYTES: usize = (1 << 30) - 5;

    pub fn encode(&self) -> Result<Vec<u8>> {
        let payload = postcard::to_allocvec(self).map_err(|e| {
            EngineError::new(ErrorKind::Internal, format!("cannot encode model: {e}"))
        })?;
        // a bytea value holds at most 1 GB (varlena); the header must fit in it too
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&len| len as usize + HEADER_LEN <= Self::MAX_STORED_BYTES)
            .ok_or_else(|| {
                EngineError::new(
                    ErrorKind::TooManyRows,
                    format!(
                        "the model is {} MB; a stored model holds at most {} MB",
                        payload.len() >> 20,
                        Self::MAX_STORED_BYTES >> 20
                    ),
                )
                .with_hint("Use fewer or shallower trees (n_trees, max_depth, min_samples_leaf), or fewer hidden units.")
            })?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<ModelArtifact> {
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err(EngineError::corrupted(
                "model bytes are not a customer_value model (bad header)",
            ));
        }
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let version = u16_at(8);
        if version == 0 {
            return Err(EngineError::corrupted("model bytes carry format version 0"));
        }
        if version > FORMAT_VERSION {
            return Err(EngineError::new(
                ErrorKind::NotSupported,
                format!(
                    "model format version {version} is newer than this customer_value reads (up to {FORMAT_VERSION})"
                ),
            )
            .with_hint("Upgrade the customer_value extension, or retrain the model with this version."));
        }
        if u16_at(10) != 0 {
            return Err(EngineError::corrupted(
                "model bytes have a damaged header (reserved bytes are not zero)",
            ));
        }
        let declared = u32_at(12) as usize;
        let payload = &bytes[HEADER_LEN..];
        if payload.len() != declared {
            return Err(EngineError::corrupted(format!(
                "model bytes are truncated or padded: header says {declared} payload bytes, found {}",
                payload.len()
            )));
        }
        if crc32fast::hash(payload) != u32_at(16) {
            return Err(EngineError::corrupted("model bytes fail their checksum"));
        }
        let artifact: ModelArtifact = match version {
            1 => decode_payload::<ModelArtifactV1>(payload)?.into(),
            2 => decode_payload::<ModelArtifactV2>(payload)?.into(),
            _ => decode_payload::<ModelArtifact>(payload)?,
        };
        artifact.validate()?;
        Ok(artifact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::features::Encoding;
    use crate::engine::models::forest::{Node, TreeEnsemble};
    use crate::engine::models::LinearModel;
    use crate::engine::stats::SplitMix64;
    use crate::engine::tiers::TierSpec;

    fn features(n: usize) -> Vec<FeatureSpec> {
        (0..n)
            .map(|i| FeatureSpec {
                name: format!("f{i}"),
                sql_type: "double precision".into(),
                encoding: Encoding::Number,
                impute: Some(i as f64),
            })
            .collect()
    }

    pub(crate) fn sample_models() -> Vec<ModelArtifact> {
        use crate::engine::segments::RecencySource;
        let tiers = TierSpec::default().fit(&[1.0, 2.0, 3.0, 4.0]);
        let leaf = Node::leaf;
        let mut with_segments = ModelArtifact::new(
            Algorithm::Linear,
            Task::Regression,
            Some("spend".into()),
            features(2),
            Predictor::Linear(LinearModel {
                intercept: 1.5,
                coefficients: vec![2.0, -1.0],
            }),
            tiers.clone(),
        );
        with_segments.segments = Some(
            RfmSegments::cut(
                RecencySource::SinceLast("days_since_last".into()),
                "frequency".into(),
                "monetary_value".into(),
                &[[3.0, 0.0, 0.0], [40.0, 2.0, 25.0], [200.0, 5.0, 60.0]],
                None,
            )
            .unwrap(),
        );
        vec![
            ModelArtifact::new(
                Algorithm::Linear,
                Task::Regression,
                Some("spend".into()),
                features(2),
                Predictor::Linear(LinearModel {
                    intercept: 1.5,
                    coefficients: vec![2.0, -1.0],
                }),
                tiers.clone(),
            ),
            ModelArtifact::new(
                Algorithm::RandomForest,
                Task::Regression,
                Some("spend".into()),
                features(1),
                Predictor::Trees(TreeEnsemble {
                    n_features: 1,
                    roots: vec![0, 3],
                    nodes: vec![Node::split(0, 1, 2, 0.5), leaf(1.0), leaf(3.0), leaf(5.0)],
                    scale: 0.5,
                    offset: 0.0,
                    complete: Default::default(),
                }),
                tiers,
            ),
            with_segments,
            sample_sequence_model(),
        ]
    }

    /// A GRU over a 4-period history `h` beside one static feature, with random weights.
    fn sample_sequence_model() -> ModelArtifact {
        use crate::engine::models::mlp::{Objective, OutputActivation};
        use crate::engine::models::sequence::gru::Gru;
        use crate::engine::models::sequence::model::{InputScaling, SequenceLayout};
        use crate::engine::models::sequence::network::{Encoder, SequenceNetwork};
        use crate::engine::models::SequenceModel;
        let mut specs = features(1);
        specs.extend((0..4).map(|position| FeatureSpec {
            name: format!("h[{}]", position + 1),
            sql_type: "double precision[]".into(),
            encoding: Encoding::Element {
                column: "h".into(),
                position,
                length: 4,
                pad: true,
            },
            impute: Some(0.0),
        }));
        let mut rng = crate::engine::stats::SplitMix64::new(5);
        let encoder = Encoder::Gru(Gru::new(1, 3, &mut rng));
        let network = SequenceNetwork::new(encoder, 1, 4, Objective::SquaredError, &mut rng);
        let model = SequenceModel {
            layout: SequenceLayout::of(&specs, "gru").unwrap(),
            scaling: InputScaling {
                channel_mean: vec![1.0],
                channel_scale: vec![2.0],
                static_mean: vec![0.5],
                static_scale: vec![1.5],
            },
            network,
            target_mean: 10.0,
            target_scale: 4.0,
            output: OutputActivation::Identity,
        };
        let tiers = TierSpec::default().fit(&[1.0, 2.0, 3.0, 4.0]);
        ModelArtifact::new(
            Algorithm::Gru,
            Task::Regression,
            Some("spend".into()),
            specs,
            Predictor::Sequence(model),
            tiers,
        )
    }

    #[test]
    fn array_elements_out_of_their_shape_are_refused() {
        let model = sample_sequence_model();
        assert!(model.validate().is_ok());
        let set = |k: usize, position: u32, length: u32| {
            let mut m = model.clone();
            if let Encoding::Element {
                position: p,
                length: l,
                ..
            } = &mut m.features[k].encoding
            {
                (*p, *l) = (position, length);
            }
            m.validate().map_err(|e| (e.kind, e.message))
        };
        let refused = |name: &str| {
            Err((
                ErrorKind::DataCorrupted,
                format!("array feature \"{name}\" does not fit its array's shape"),
            ))
        };
        assert_eq!(set(2, 4, 4), refused("h[2]"));
        assert_eq!(set(1, 0, 0), refused("h[1]"));
        // the first element's shape differs from the others'
        assert_eq!(set(1, 0, 5), refused("h[2]"));
        assert!(set(1, 0, 4).is_ok());
    }

    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.trim().len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// Bytes written by customer_value 0.1.0 (format version 1), recorded in tests/data/models:
    /// they must keep decoding to the same model and predictions.
    #[test]
    fn format_version_1_bytes_from_release_0_1_0_still_load() {
        let linear = from_hex(include_str!("../../tests/data/models/format_v1_linear.hex"));
        let forest = from_hex(include_str!("../../tests/data/models/format_v1_forest.hex"));
        assert_eq!(u16::from_le_bytes([linear[8], linear[9]]), 1);
        let linear = ModelArtifact::decode(&linear).unwrap();
        let forest = ModelArtifact::decode(&forest).unwrap();
        assert_eq!(linear, sample_models()[0]);
        assert_eq!(forest, sample_models()[1]);
        // 1.5 + 2·1 − 1·2 and the two-tree mean, computed by hand
        assert_eq!(linear.predict(&[1.0, 2.0]), 1.5);
        assert_eq!(forest.predict(&[1.0]), 4.0);
        assert_eq!(linear.link, Link::Identity);
        assert!(linear.covers.is_empty() && linear.classes.is_empty());
    }

    #[test]
    fn new_fields_are_validated() {
        let mut m = sample_models()[1].clone();
        m.covers = vec![1.0; 3];
        assert!(ModelArtifact::decode(&m.encode().unwrap()).is_err());
        m.covers = vec![4.0, 2.0, 2.0, 4.0];
        assert!(ModelArtifact::decode(&m.encode().unwrap()).is_ok());
        m.link = Link::Logistic;
        assert!(ModelArtifact::decode(&m.encode().unwrap()).is_err());
        m.task = Task::Classification;
        assert!(ModelArtifact::decode(&m.encode().unwrap()).is_err());
        m.classes = vec!["false".into(), "true".into()];
        let back = ModelArtifact::decode(&m.encode().unwrap()).unwrap();
        // logistic link: sigmoid of the raw output (3 for x = 0)
        assert!((back.predict(&[0.0]) - 1.0 / (1.0 + (-3.0f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn round_trip_preserves_every_field_and_prediction() {
        for model in sample_models() {
            let bytes = model.encode().unwrap();
            assert_eq!(&bytes[..8], MAGIC);
            let back = ModelArtifact::decode(&bytes).unwrap();
            assert_eq!(back, model);
        }
        let linear = sample_models()[0].params();
        assert_eq!(linear["intercept"], 1.5);
        assert_eq!(linear["coefficients"]["f1"], -1.0);
        assert_eq!(sample_models()[1].params()["max_depth"], 1);
        let forest = &sample_models()[1];
        // tree 1: x <= 0.5 → 1 else 3; tree 2: 5; mean
        assert_eq!(forest.predict(&[0.0]), 3.0);
        assert_eq!(forest.predict(&[1.0]), 4.0);
    }

    #[test]
    fn header_faults_are_reported_precisely() {
        let bytes = sample_models()[0].encode().unwrap();
        let err = ModelArtifact::decode(b"hello").unwrap_err();
        assert_eq!(err.kind, ErrorKind::DataCorrupted);
        assert!(err.message.contains("bad header"));

        let truncated = &bytes[..bytes.len() - 3];
        let err = ModelArtifact::decode(truncated).unwrap_err();
        assert!(err.message.contains("truncated"), "{}", err.message);

        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        let err = ModelArtifact::decode(&flipped).unwrap_err();
        assert_eq!(err.message, "model bytes fail their checksum");

        let mut newer = bytes.clone();
        newer[8] = 9;
        let err = ModelArtifact::decode(&newer).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotSupported);
        assert!(err.message.contains("format version 9 is newer"));
    }

    /// A payload with a valid checksum but a structure that would index out of bounds must be
    /// refused by validation, not trusted.
    #[test]
    fn structurally_invalid_payload_with_valid_checksum_is_refused() {
        let mut model = sample_models()[1].clone();
        if let Predictor::Trees(t) = &mut model.predictor {
            t.nodes[0].right = 42;
        }
        let bytes = model.encode().unwrap();
        let err = ModelArtifact::decode(&bytes).unwrap_err();
        assert_eq!(err.kind, ErrorKind::DataCorrupted);
        assert!(err.message.contains("child 42"), "{}", err.message);
    }

    /// Property: whatever is done to the bytes, decoding returns (never panics), and anything it
    /// accepts is a valid model. 20,000 mutations per model in the test suite; the drill
    /// `scripts/drills/fuzz_decoder.sh` runs millions (CV_FUZZ_ITERATIONS).
    #[test]
    fn mutated_bytes_never_panic() {
        let iterations: usize = std::env::var("CV_FUZZ_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let mut rng = SplitMix64::new(2024);
        let (mut accepted, mut refused) = (0usize, 0usize);
        for model in sample_models() {
            let bytes = model.encode().unwrap();
            for _ in 0..iterations {
                let mut b = bytes.clone();
                match rng.below(4) {
                    0 => {
                        let i = rng.below(b.len());
                        b[i] ^= 1 << rng.below(8);
                    }
                    1 => b.truncate(rng.below(b.len())),
                    2 => {
                        // corrupt the payload and repair the checksum, to reach the decoder
                        let i = HEADER_LEN + rng.below(b.len() - HEADER_LEN);
                        b[i] = rng.next_u64() as u8;
                        let crc = crc32fast::hash(&b[HEADER_LEN..]).to_le_bytes();
                        b[16..20].copy_from_slice(&crc);
                    }
                    _ => {
                        let n = rng.below(64);
                        b = (0..n).map(|_| rng.next_u64() as u8).collect();
                    }
                }
                match ModelArtifact::decode(&b) {
                    Ok(m) => {
                        m.validate().unwrap();
                        // any finite parameters are a valid model, but extreme ones can overflow:
                        // scoring refuses a non-finite prediction (src/pg/score.rs)
                        let x = vec![0.25; m.features.len()];
                        let _ = m.predict(&x);
                        accepted += 1;
                    }
                    Err(_) => refused += 1,
                }
            }
        }
        println!("decoder fuzz: {} inputs, {accepted} decoded to valid models, {refused} refused cleanly", accepted + refused);
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod codec_tests;
