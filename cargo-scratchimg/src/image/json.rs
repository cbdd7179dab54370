//! Canonical JSON: compact, object keys sorted at every depth.
//!
//! oci-spec keeps labels, annotations and exposed ports in `HashMap`s, whose order changes from
//! run to run. Every JSON document we hash goes through here, so equal values give equal bytes
//! whatever map types or serde_json features the dependency graph brings.

use serde::Serialize;
use serde_json::Value;

/// Serializes `value` canonically.
pub(crate) fn to_vec<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(512);
    write(&value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write(value, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let inner: HashMap<&str, u32> = [("zeta", 1), ("alpha", 2), ("mid", 3)].into();
        let outer: HashMap<&str, serde_json::Value> = [
            ("b", serde_json::json!([inner.clone(), "x"])),
            ("a", serde_json::json!(inner)),
        ]
        .into();
        let bytes = super::to_vec(&outer).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"a":{"alpha":2,"mid":3,"zeta":1},"b":[{"alpha":2,"mid":3,"zeta":1},"x"]}"#
        );
    }

    #[test]
    fn equal_maps_give_equal_bytes_whatever_their_insertion_order() {
        let keys: Vec<String> = (0..64).map(|i| format!("k{i}")).collect();
        let forward: HashMap<_, _> = keys.iter().map(|k| (k.clone(), 1)).collect();
        let backward: HashMap<_, _> = keys.iter().rev().map(|k| (k.clone(), 1)).collect();
        assert_eq!(
            super::to_vec(&forward).unwrap(),
            super::to_vec(&backward).unwrap()
        );
    }

    #[test]
    fn strings_are_escaped() {
        let v = serde_json::json!({"k\"": "line\nbreak"});
        assert_eq!(super::to_vec(&v).unwrap(), br#"{"k\"":"line\nbreak"}"#);
    }
}
