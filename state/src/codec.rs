//! Encoding of state keys and values: bincode 2 (standard configuration)
//! over serde, the same on every platform.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::StoreError;

/// Encodes `value` with bincode.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| StoreError::Codec(format!("encode: {e}")))
}

/// Appends the bincode encoding of `value` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), StoreError> {
    bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
        .map(|_| ())
        .map_err(|e| StoreError::Codec(format!("encode: {e}")))
}

/// Decodes a whole `bytes` as a `T`; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| StoreError::Codec(format!("decode: {e}")))?;
    if used != bytes.len() {
        return Err(StoreError::Codec(format!(
            "decode: {} trailing bytes",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// A key, debug-printed and cut to a readable length (for errors).
pub fn describe_key<K: std::fmt::Debug + ?Sized>(key: &K) -> String {
    let mut s = format!("{key:?}");
    if s.len() > 120 {
        let mut cut = 117;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}
