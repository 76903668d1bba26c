//! values.schema.json validation, reported in helm's words:
//! "values don't meet the specifications of the schema(s) in the following chart(s):"
//! then, per chart, one "- at '<json pointer>': <reason>" line per violation.

use jsonschema::error::{TypeKind, ValidationErrorKind};

use gotemplate::Value;

use crate::RenderError;
use crate::chart::Chart;

/// Checks the values of every chart of the tree (the root's and, recursively,
/// each subchart's) against its values.schema.json, reporting every
/// violation of every chart at once, as helm does.
pub fn check(root: &Chart, values: &Value) -> Result<(), RenderError> {
    let mut charts = Vec::new();
    collect(root, values, &mut charts);
    let mut report = String::new();
    for (name, path, schema, values) in &charts {
        let lines = violations(path, schema, values)?;
        if !lines.is_empty() {
            report.push_str(&format!("{name}:\n"));
            for l in lines {
                report.push_str(&l);
                report.push('\n');
            }
        }
    }
    if report.is_empty() {
        return Ok(());
    }
    Err(RenderError::plain(
        &root.name,
        format!(
            "values don't meet the specifications of the schema(s) in the following chart(s):\n{report}"
        ),
    ))
}

/// (chart name, chart path, schema text, values as JSON).
type ChartSchema<'a> = (String, String, &'a [u8], serde_json::Value);

fn collect<'a>(c: &'a Chart, values: &Value, out: &mut Vec<ChartSchema<'a>>) {
    if let Some(schema) = &c.schema {
        let instance = match values {
            Value::Nil => serde_json::Value::Object(Default::default()),
            v => to_json(v),
        };
        out.push((c.name.clone(), c.full_path.clone(), schema, instance));
    }
    for sub in &c.subcharts {
        let sv = values.map_get(&sub.name).unwrap_or(Value::Nil);
        collect(sub, &sv, out);
    }
}

/// JSON as helm hands values to the validator: whole float64 numbers are
/// integers, as in [`crate::values::to_yaml`].
pub fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(crate::values::to_yaml(v)).unwrap_or(serde_json::Value::Null)
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// How the validator quotes values in messages: strings in single quotes.
fn quoted(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

fn violations(
    path: &str,
    schema: &[u8],
    instance: &serde_json::Value,
) -> Result<Vec<String>, RenderError> {
    let schema: serde_json::Value = serde_json::from_slice(schema).map_err(|e| {
        RenderError::plain(
            path,
            format!("{path}/values.schema.json: invalid JSON schema: {e}"),
        )
    })?;
    // helm compiles `pattern`s with Go's RE2 regexp: the `regex` engine takes
    // the same patterns (no look-around or back-references, which RE2 rejects
    // too), and compiles them faster than the default `fancy-regex`.
    let validator = match jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&schema)
    {
        Ok(v) => v,
        Err(e) => {
            let against_meta = meta_schema_violations(&schema);
            if against_meta.is_empty() {
                return Err(RenderError::plain(
                    path,
                    format!("{path}/values.schema.json: invalid JSON schema: {e}"),
                ));
            }
            // helm's words for a schema its meta-schema rejects, then the
            // violations as the value check lists them.
            let mut lines = vec![format!(
                "\"file:///values.schema.json#\" is not valid against metaschema: jsonschema validation failed with '{}'",
                meta_schema_url(&schema)
            )];
            lines.extend(against_meta);
            return Ok(lines);
        }
    };
    let lines = validator
        .iter_errors(instance)
        .map(|e| message(&e))
        .collect();
    Ok(listed(lines))
}

/// The meta-schema a schema declares with `$schema`, as helm names it (with a
/// trailing `#`); 2020-12 when it declares none, as for helm.
fn meta_schema_url(schema: &serde_json::Value) -> String {
    let url = schema
        .get("$schema")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("https://json-schema.org/draft/2020-12/schema");
    if url.ends_with('#') {
        url.to_string()
    } else {
        format!("{url}#")
    }
}

/// Where a schema breaks its meta-schema, as `- at '...'` lines; empty when it does not.
fn meta_schema_violations(schema: &serde_json::Value) -> Vec<String> {
    let declared = schema
        .get("$schema")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let meta = if declared.contains("draft-04") {
        jsonschema::draft4::meta::validator()
    } else if declared.contains("draft-06") {
        jsonschema::draft6::meta::validator()
    } else if declared.contains("draft-07") {
        jsonschema::draft7::meta::validator()
    } else if declared.contains("2019-09") {
        jsonschema::draft201909::meta::validator()
    } else {
        jsonschema::draft202012::meta::validator()
    };
    let lines = meta.iter_errors(schema).map(|e| message(&e)).collect();
    listed(lines)
}

/// `- at '<pointer>': <reason>` lines, sorted and without repeats.
fn listed(mut lines: Vec<(String, String)>) -> Vec<String> {
    lines.sort();
    lines.dedup();
    lines
        .into_iter()
        .map(|(at, msg)| format!("- at '{at}': {msg}"))
        .collect()
}

/// One violation as helm words it: (instance pointer, reason).
fn message(e: &jsonschema::ValidationError<'_>) -> (String, String) {
    let at = e.instance_path().to_string();
    let inst = e.instance();
    let msg = match e.kind() {
        ValidationErrorKind::Type { kind } => {
            let want = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("got {}, want {want}", json_type(inst))
        }
        ValidationErrorKind::Enum { options } => match options.as_array() {
            Some(list) if list.len() == 1 => format!("value must be {}", quoted(&list[0])),
            Some(list) => format!(
                "value must be one of {}",
                list.iter().map(quoted).collect::<Vec<_>>().join(", ")
            ),
            None => e.to_string(),
        },
        ValidationErrorKind::Constant { expected_value } => {
            format!("value must be {}", quoted(expected_value))
        }
        ValidationErrorKind::Minimum { limit } => {
            format!("minimum: got {inst}, want {limit}")
        }
        ValidationErrorKind::Maximum { limit } => {
            format!("maximum: got {inst}, want {limit}")
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            format!("exclusiveMinimum: got {inst}, want {limit}")
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            format!("exclusiveMaximum: got {inst}, want {limit}")
        }
        ValidationErrorKind::MinLength { limit } => format!(
            "minLength: got {}, want {limit}",
            inst.as_str().map(|s| s.chars().count()).unwrap_or(0)
        ),
        ValidationErrorKind::MaxLength { limit } => format!(
            "maxLength: got {}, want {limit}",
            inst.as_str().map(|s| s.chars().count()).unwrap_or(0)
        ),
        ValidationErrorKind::MinItems { limit } => format!(
            "minItems: got {}, want {limit}",
            inst.as_array().map(Vec::len).unwrap_or(0)
        ),
        ValidationErrorKind::MaxItems { limit } => format!(
            "maxItems: got {}, want {limit}",
            inst.as_array().map(Vec::len).unwrap_or(0)
        ),
        ValidationErrorKind::Pattern { pattern } => {
            format!("{} does not match pattern '{pattern}'", quoted(inst))
        }
        ValidationErrorKind::Required { property } => {
            format!("missing property {}", quoted(property))
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => format!(
            "additional properties {} not allowed",
            unexpected
                .iter()
                .map(|p| format!("'{p}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ValidationErrorKind::AnyOf { .. } => "'anyOf' failed".to_string(),
        ValidationErrorKind::OneOfNotValid { .. } => "'oneOf' failed, none matched".to_string(),
        ValidationErrorKind::Not { .. } => "'not' failed".to_string(),
        ValidationErrorKind::Format { format } => {
            format!("{} is not valid '{format}'", quoted(inst))
        }
        _ => e.to_string(),
    };
    (at, msg)
}
