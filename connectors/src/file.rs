//! A JSON-lines file reader, for demos and tests.

use serde::de::DeserializeOwned;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::marker::PhantomData;
use std::path::Path;

use crate::{ConnectorError, Result};

/// Reads one JSON value per line; blank lines are skipped.
pub struct JsonLinesReader<T> {
    path: String,
    lines: std::io::Lines<BufReader<File>>,
    line: u64,
    done: bool,
    _marker: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonLinesReader<T> {
    /// Opens `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let shown = path.as_ref().display().to_string();
        let file = File::open(path.as_ref()).map_err(|source| ConnectorError::Io {
            path: shown.clone(),
            source,
        })?;
        Ok(JsonLinesReader {
            path: shown,
            lines: BufReader::new(file).lines(),
            line: 0,
            done: false,
            _marker: PhantomData,
        })
    }

    /// True once the whole file was read.
    pub fn is_finished(&self) -> bool {
        self.done
    }

    /// Reads up to `max` values; an undecodable line is an error naming it.
    pub fn read_batch(&mut self, max: usize, out: &mut Vec<T>) -> Result<()> {
        while out.len() < max && !self.done {
            match self.lines.next() {
                None => self.done = true,
                Some(Err(source)) => {
                    return Err(ConnectorError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
                Some(Ok(text)) => {
                    self.line += 1;
                    if text.trim().is_empty() {
                        continue;
                    }
                    let value =
                        serde_json::from_str(&text).map_err(|e| ConnectorError::FileDecode {
                            path: self.path.clone(),
                            line: self.line,
                            reason: e.to_string(),
                        })?;
                    out.push(value);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_and_names_the_bad_line() {
        let dir = std::env::temp_dir().join(format!("rill-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.jsonl");
        std::fs::write(&path, "1\n\n2\nnot json\n3\n").unwrap();
        let mut reader = JsonLinesReader::<i32>::open(&path).unwrap();
        let mut out = Vec::new();
        let err = reader.read_batch(10, &mut out).unwrap_err();
        assert_eq!(out, vec![1, 2]);
        assert!(err.to_string().contains("line 4"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
