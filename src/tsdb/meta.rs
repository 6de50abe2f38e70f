//! A block's `meta.json`: the fields promsnap records and checks.
//!
//! Unknown fields are kept out of our types on purpose: the manifest stores
//! the block's own `meta.json` byte for byte inside the archive, so we only
//! model what we display, check or use for restore decisions.

use anyhow::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: Compaction,
    pub version: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    #[serde(default)]
    pub num_samples: u64,
    #[serde(default)]
    pub num_series: u64,
    #[serde(default)]
    pub num_chunks: u64,
    #[serde(default)]
    pub num_tombstones: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    #[serde(default)]
    pub level: u32,
}

impl BlockMeta {
    pub fn parse(bytes: &[u8]) -> Result<BlockMeta> {
        let meta: BlockMeta = serde_json::from_slice(bytes)?;
        if meta.min_time >= meta.max_time {
            anyhow::bail!(
                "minTime {} is not before maxTime {}",
                meta.min_time,
                meta.max_time
            );
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_prometheus_meta_json() {
        let raw = br#"{"ulid":"01HQ3K6W2Z0000000000000000","minTime":1,"maxTime":7200001,
            "stats":{"numSamples":10,"numSeries":2,"numChunks":3},
            "compaction":{"level":1,"sources":["01HQ3K6W2Z0000000000000000"]},"version":1}"#;
        let m = BlockMeta::parse(raw).unwrap();
        assert_eq!(m.stats.num_series, 2);
        assert_eq!(m.compaction.level, 1);
        assert!(BlockMeta::parse(br#"{"ulid":"x","minTime":5,"maxTime":5,"version":1}"#).is_err());
        assert!(BlockMeta::parse(b"not json").is_err());
    }
}
