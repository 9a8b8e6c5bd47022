//! What a model name may be: 1 to 200 characters, not blank, without '@' (which separates a
//! name from a version in `name@version`).

use super::error::{EngineError, Result};

pub const MAX_MODEL_NAME_LEN: usize = 200;

pub fn check_model_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.contains('@') || name.len() > MAX_MODEL_NAME_LEN {
        return Err(EngineError::invalid_parameter(format!(
            "invalid model name \"{name}\""
        ))
        .with_detail("A model name is 1 to 200 characters and cannot contain '@' (used for name@version)."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_versioned_and_overlong_names_are_refused() {
        assert!(check_model_name("spend").is_ok());
        assert!(check_model_name("Spend model 2").is_ok());
        for bad in ["", "  ", "spend@2", &"x".repeat(201)] {
            assert!(check_model_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_model_name(&"x".repeat(200)).is_ok());
    }
}
