//! The four facts an agent knows about its cluster.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which cluster this agent runs in: selects overrides and is injected into
/// every chart as `global.cloud`, `global.env`, `global.region`, `global.clusterName`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterContext {
    pub cloud: String,
    pub env: String,
    pub region: String,
    pub cluster: String,
}

/// The context keys, in the order overrides are applied (most specific last).
pub const CONTEXT_KEYS: [&str; 4] = ["env", "cloud", "region", "cluster"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    #[error("unknown context key {key:?} (expected cloud, env, region, cluster)")]
    UnknownKey { key: String },
    #[error("context entry {entry:?} is not KEY=VALUE")]
    NotKeyValue { entry: String },
    #[error("context key {key:?} is given twice")]
    Duplicate { key: String },
    #[error("context is missing {}", missing.join(", "))]
    Missing { missing: Vec<&'static str> },
    #[error(
        "context {key} {value:?} is not a valid name (lower-case letters, digits, '-', '.', '_'; 1 to 63 characters)"
    )]
    InvalidValue { key: &'static str, value: String },
}

impl ClusterContext {
    /// The value of a context key ("env", "cloud", "region", "cluster").
    pub fn get(&self, key: &str) -> Option<&str> {
        match key {
            "cloud" => Some(&self.cloud),
            "env" => Some(&self.env),
            "region" => Some(&self.region),
            "cluster" => Some(&self.cluster),
            _ => None,
        }
    }

    /// Checks every value is a name that can appear in labels and paths.
    pub fn validate(&self) -> Result<(), ContextError> {
        for (key, value) in [
            ("cloud", &self.cloud),
            ("env", &self.env),
            ("region", &self.region),
            ("cluster", &self.cluster),
        ] {
            let valid = !value.is_empty()
                && value.len() <= 63
                && value.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_')
                });
            if !valid {
                return Err(ContextError::InvalidValue {
                    key,
                    value: value.clone(),
                });
            }
        }
        Ok(())
    }
}

impl FromStr for ClusterContext {
    type Err = ContextError;

    /// Parses `cloud=gcp,env=prod,region=europe-west1,cluster=gke-1`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (mut cloud, mut env, mut region, mut cluster) = (None, None, None, None);
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| ContextError::NotKeyValue {
                    entry: entry.to_string(),
                })?;
            let slot = match key.trim() {
                "cloud" => &mut cloud,
                "env" => &mut env,
                "region" => &mut region,
                "cluster" | "clusterName" => &mut cluster,
                other => {
                    return Err(ContextError::UnknownKey {
                        key: other.to_string(),
                    });
                }
            };
            if slot.replace(value.trim().to_string()).is_some() {
                return Err(ContextError::Duplicate {
                    key: key.trim().to_string(),
                });
            }
        }
        let mut missing = Vec::new();
        for (name, slot) in [
            ("cloud", &cloud),
            ("env", &env),
            ("region", &region),
            ("cluster", &cluster),
        ] {
            if slot.is_none() {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            return Err(ContextError::Missing { missing });
        }
        let context = ClusterContext {
            cloud: cloud.unwrap_or_default(),
            env: env.unwrap_or_default(),
            region: region.unwrap_or_default(),
            cluster: cluster.unwrap_or_default(),
        };
        context.validate()?;
        Ok(context)
    }
}

impl fmt::Display for ClusterContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cloud={},env={},region={},cluster={}",
            self.cloud, self.env, self.region, self.cluster
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_a_context() {
        let context: ClusterContext = "env=prod, cloud=gcp,region=europe-west1,cluster=gke-1"
            .parse()
            .unwrap();
        assert_eq!(context.env, "prod");
        assert_eq!(context.cluster, "gke-1");
        assert_eq!(
            context.to_string(),
            "cloud=gcp,env=prod,region=europe-west1,cluster=gke-1"
        );
    }

    #[test]
    fn rejects_unknown_missing_and_duplicate_keys() {
        assert_eq!(
            "cloud=a,env=b,region=c,cluster=d,zone=e".parse::<ClusterContext>(),
            Err(ContextError::UnknownKey { key: "zone".into() })
        );
        assert_eq!(
            "cloud=a,env=b".parse::<ClusterContext>(),
            Err(ContextError::Missing {
                missing: vec!["region", "cluster"]
            })
        );
        assert!(matches!(
            "cloud=a,cloud=b,env=b,region=c,cluster=d".parse::<ClusterContext>(),
            Err(ContextError::Duplicate { .. })
        ));
        assert!(matches!(
            "cloud=A B,env=b,region=c,cluster=d".parse::<ClusterContext>(),
            Err(ContextError::InvalidValue { key: "cloud", .. })
        ));
    }
}
