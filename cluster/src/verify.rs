//! `rill verify`: compares an output topic with what it should hold.
//!
//! The expected records are JSON lines (`{"key": "k", "value": ...}`, the
//! key a string or null, the value any JSON) or the records of a second
//! topic. A record is its key (UTF-8 text) and its value: compared as
//! JSON when it parses as JSON, else as text. The report lists records
//! missing, duplicated (more copies than expected) and unexpected (not
//! expected at all), and keys whose records came in another order than
//! expected (each key's records are in one partition, so in offset order).

use anyhow::{Context, Result};
use rill::connectors::kafka::TopicRecord;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A record as compared: key, value (canonical JSON or text).
pub type Item = (Option<String>, String);

/// The value of `bytes` as compared: canonical JSON if it is JSON.
fn canonical(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => v.to_string(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The records of a topic, in partition order then offset order.
pub fn from_topic(records: &[TopicRecord]) -> Vec<Item> {
    records
        .iter()
        .map(|r| {
            let key = r
                .key
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned());
            (key, canonical(r.value.as_deref().unwrap_or_default()))
        })
        .collect()
}

/// The records of a JSON-lines file, in file order.
pub fn from_json_lines(text: &str) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).with_context(|| format!("line {}: not JSON", n + 1))?;
        let key = match v.get("key") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let value = v
            .get("value")
            .with_context(|| format!("line {}: no \"value\"", n + 1))?;
        out.push((key, value.to_string()));
    }
    Ok(out)
}

/// What a comparison found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Records expected and not found, with how many copies are missing.
    pub missing: Vec<(Item, usize)>,
    /// Records found more often than expected, with how many extra copies.
    pub duplicated: Vec<(Item, usize)>,
    /// Records found that were not expected at all, with their count.
    pub unexpected: Vec<(Item, usize)>,
    /// Keys whose records are all there but in another order, with the
    /// first position where they differ.
    pub out_of_order: Vec<(Option<String>, usize)>,
    /// Records read and expected.
    pub counts: (usize, usize),
}

impl Report {
    /// True when the output is exactly what was expected.
    pub fn ok(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.unexpected.is_empty()
            && self.out_of_order.is_empty()
    }

    /// The report as text, listing at most `most` examples of each kind.
    pub fn render(&self, most: usize) -> String {
        let mut s = String::new();
        let (got, expected) = self.counts;
        let _ = writeln!(s, "read {got} records, expected {expected}");
        let total = |v: &[(Item, usize)]| v.iter().map(|(_, n)| n).sum::<usize>();
        for (name, list) in [
            ("missing", &self.missing),
            ("duplicated", &self.duplicated),
            ("unexpected", &self.unexpected),
        ] {
            let _ = writeln!(s, "{name}: {}", total(list));
            for ((key, value), n) in list.iter().take(most) {
                let _ = writeln!(s, "  {n} x key {key:?} value {value}");
            }
        }
        let _ = writeln!(s, "keys out of order: {}", self.out_of_order.len());
        for (key, at) in self.out_of_order.iter().take(most) {
            let _ = writeln!(s, "  key {key:?}: differs at its record {at}");
        }
        let _ = writeln!(s, "{}", if self.ok() { "OK" } else { "FAILED" });
        s
    }
}

fn count(items: &[Item]) -> BTreeMap<&Item, usize> {
    let mut m: BTreeMap<&Item, usize> = BTreeMap::new();
    for i in items {
        *m.entry(i).or_default() += 1;
    }
    m
}

fn by_key(items: &[Item]) -> BTreeMap<Option<String>, Vec<&str>> {
    let mut m: BTreeMap<Option<String>, Vec<&str>> = BTreeMap::new();
    for (k, v) in items {
        m.entry(k.clone()).or_default().push(v.as_str());
    }
    m
}

/// Compares `got` with `expected`, as multisets and per key in order.
pub fn compare(got: &[Item], expected: &[Item]) -> Report {
    let (have, want) = (count(got), count(expected));
    let mut report = Report {
        counts: (got.len(), expected.len()),
        ..Report::default()
    };
    for (item, &n) in &want {
        let h = have.get(item).copied().unwrap_or(0);
        if h < n {
            report.missing.push(((*item).clone(), n - h));
        } else if h > n {
            report.duplicated.push(((*item).clone(), h - n));
        }
    }
    for (item, &h) in &have {
        if !want.contains_key(item) {
            report.unexpected.push(((*item).clone(), h));
        }
    }
    let (got_keys, want_keys) = (by_key(got), by_key(expected));
    for (key, want_seq) in &want_keys {
        let Some(got_seq) = got_keys.get(key) else {
            continue;
        };
        let mut sorted = (got_seq.clone(), want_seq.clone());
        sorted.0.sort_unstable();
        sorted.1.sort_unstable();
        if sorted.0 != sorted.1 {
            continue; // already reported as missing or extra
        }
        if let Some(at) = got_seq.iter().zip(want_seq).position(|(a, b)| a != b) {
            report.out_of_order.push((key.clone(), at));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(k: &str, v: &str) -> Item {
        (Some(k.to_owned()), v.to_owned())
    }

    #[test]
    fn the_same_records_in_the_same_order_per_key_are_ok() {
        let expected = vec![item("a", "1"), item("b", "1"), item("a", "2")];
        // Keys interleave differently: only the order within a key counts.
        let got = vec![item("b", "1"), item("a", "1"), item("a", "2")];
        let r = compare(&got, &expected);
        assert!(r.ok(), "{}", r.render(5));
    }

    #[test]
    fn missing_duplicated_unexpected_and_reordered_records_are_reported() {
        let expected = vec![
            item("a", "1"),
            item("a", "2"),
            item("b", "1"),
            item("c", "1"),
        ];
        let got = vec![
            item("a", "2"),
            item("a", "1"),
            item("b", "1"),
            item("b", "1"),
            item("d", "9"),
        ];
        let r = compare(&got, &expected);
        assert_eq!(r.missing, vec![(item("c", "1"), 1)]);
        assert_eq!(r.duplicated, vec![(item("b", "1"), 1)]);
        assert_eq!(r.unexpected, vec![(item("d", "9"), 1)]);
        assert_eq!(r.out_of_order, vec![(Some("a".into()), 0)]);
        assert!(!r.ok());
        let text = r.render(5);
        assert!(
            text.contains("missing: 1") && text.contains("FAILED"),
            "{text}"
        );
    }

    #[test]
    fn json_lines_values_compare_as_json() {
        let lines = "{\"key\": \"a\", \"value\": {\"n\": 1,  \"m\": [1, 2]}}\n\n{\"key\": null, \"value\": 3}\n";
        let items = from_json_lines(lines).unwrap();
        assert_eq!(items[0], item("a", &canonical(br#"{"m":[1,2],"n":1}"#)));
        assert_eq!(items[1], (None, "3".to_owned()));
        assert!(from_json_lines("{\"key\": \"a\"}").is_err(), "no value");
        assert!(from_json_lines("nope").is_err());
    }
}
