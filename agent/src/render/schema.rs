//! values.schema.json validation (placeholder, filled in below).
use super::RenderError;
use super::chart::Chart;
use super::value::Value;

pub fn validate(_c: &Chart, _v: &Value) -> Result<(), RenderError> {
    Ok(())
}
