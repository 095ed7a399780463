//! Formats: how keys and values become bytes and back.
//!
//! A [`Codec<T>`] encodes and decodes values of type `T`. [`Json`] and
//! [`Bincode`] work for any serde type; [`Raw`] passes bytes (`Vec<u8>`) or
//! UTF-8 text (`String`) through unchanged. Record keys use [`KafkaKey`].
//!
//! ```
//! use rill_connectors::{Codec, Json, Raw};
//!
//! let mut buf = Vec::new();
//! Json.encode_into(&vec![1, 2, 3], &mut buf).unwrap();
//! assert_eq!(buf, b"[1,2,3]");
//! let back: Vec<i32> = Json.decode(&buf).unwrap();
//! assert_eq!(back, vec![1, 2, 3]);
//! assert!(Codec::<String>::decode(&Raw, &[0xff]).is_err(), "not UTF-8");
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::kafka::RawRecord;
use std::fmt;

/// A value that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

/// Encodes and decodes values of type `T`.
pub trait Codec<T>: Clone + Send + Sync + 'static {
    /// The format's name, for errors and logs.
    fn name(&self) -> &'static str;
    /// Appends the encoding of `value` to `buf`.
    fn encode_into(&self, value: &T, buf: &mut Vec<u8>) -> Result<(), FormatError>;
    /// Decodes one value from `bytes`.
    fn decode(&self, bytes: &[u8]) -> Result<T, FormatError>;
    /// Decodes the value of a Kafka record; by default its payload with
    /// [`Codec::decode`] ([`WithMeta`] also keeps where it came from).
    fn decode_record(&self, record: &RawRecord<'_>) -> Result<T, FormatError> {
        let payload = record
            .payload
            .ok_or_else(|| FormatError("the record has no value (a tombstone)".into()))?;
        self.decode(payload)
    }
}

/// A Kafka record's value with where it came from: what a source decoding
/// with [`WithMeta`] produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta<V> {
    /// The decoded value.
    pub value: V,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp in milliseconds, if it has one.
    pub timestamp: Option<i64>,
    /// The record's headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The codec `C` for a source's values, keeping each record's partition,
/// offset, timestamp and headers beside its value:
/// `flow.kafka_source::<String, Meta<Order>>("orders", WithMeta(Json))`.
/// Encoding (a sink of `Meta<V>`) writes the value only.
#[derive(Debug, Clone, Copy, Default)]
pub struct WithMeta<C>(pub C);

impl<V, C: Codec<V>> Codec<Meta<V>> for WithMeta<C> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn encode_into(&self, value: &Meta<V>, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        self.0.encode_into(&value.value, buf)
    }
    /// A value without a record around it: partition and offset -1.
    fn decode(&self, bytes: &[u8]) -> Result<Meta<V>, FormatError> {
        Ok(Meta {
            value: self.0.decode(bytes)?,
            partition: -1,
            offset: -1,
            timestamp: None,
            headers: Vec::new(),
        })
    }
    fn decode_record(&self, record: &RawRecord<'_>) -> Result<Meta<V>, FormatError> {
        Ok(Meta {
            value: self.0.decode_record(record)?,
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            headers: record.header_list(),
        })
    }
}

/// JSON (serde_json), for any serde type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn name(&self) -> &'static str {
        "json"
    }
    fn encode_into(&self, value: &T, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        serde_json::to_writer(buf, value).map_err(|e| FormatError(format!("json: {e}")))
    }
    fn decode(&self, bytes: &[u8]) -> Result<T, FormatError> {
        serde_json::from_slice(bytes).map_err(|e| FormatError(format!("json: {e}")))
    }
}

/// bincode 2 with its standard configuration, for any serde type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

impl<T: Serialize + DeserializeOwned> Codec<T> for Bincode {
    fn name(&self) -> &'static str {
        "bincode"
    }
    fn encode_into(&self, value: &T, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        bincode::serde::encode_into_std_write(value, buf, bincode::config::standard())
            .map(|_| ())
            .map_err(|e| FormatError(format!("bincode: {e}")))
    }
    fn decode(&self, bytes: &[u8]) -> Result<T, FormatError> {
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| FormatError(format!("bincode: {e}")))?;
        if read != bytes.len() {
            return Err(FormatError(format!(
                "bincode: {} trailing bytes after the value",
                bytes.len() - read
            )));
        }
        Ok(value)
    }
}

/// Raw bytes (`Vec<u8>`) or UTF-8 text (`String`), unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }
    fn encode_into(&self, value: &Vec<u8>, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        buf.extend_from_slice(value);
        Ok(())
    }
    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
        Ok(bytes.to_vec())
    }
}

impl Codec<String> for Raw {
    fn name(&self) -> &'static str {
        "utf-8"
    }
    fn encode_into(&self, value: &String, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        buf.extend_from_slice(value.as_bytes());
        Ok(())
    }
    fn decode(&self, bytes: &[u8]) -> Result<String, FormatError> {
        String::from_utf8(bytes.to_vec()).map_err(|e| FormatError(format!("utf-8: {e}")))
    }
}

/// A type that can be a Kafka record key.
///
/// `String` keys are UTF-8 text and `Vec<u8>` keys raw bytes, as most Kafka
/// tooling writes them; integer keys are big-endian bytes of their width
/// (`usize` as 8), as Kafka's integer serializers write them. All refuse a
/// record without a key (use the `Option` forms for topics with null
/// keys). `()` ignores the key and writes none.
pub trait KafkaKey: Sized + 'static {
    /// Decodes a record's key (`None` when the record has no key).
    fn decode_key(bytes: Option<&[u8]>) -> Result<Self, FormatError>;
    /// Appends the key's bytes to `buf`; returns `false` when there is no key.
    fn encode_key(&self, buf: &mut Vec<u8>) -> bool;
}

fn missing_key() -> FormatError {
    FormatError("the record has no key (use an Option key type or () for unkeyed topics)".into())
}

impl KafkaKey for String {
    fn decode_key(bytes: Option<&[u8]>) -> Result<Self, FormatError> {
        let bytes = bytes.ok_or_else(missing_key)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| FormatError(format!("key is not UTF-8: {e}")))
    }
    fn encode_key(&self, buf: &mut Vec<u8>) -> bool {
        buf.extend_from_slice(self.as_bytes());
        true
    }
}

impl KafkaKey for Vec<u8> {
    fn decode_key(bytes: Option<&[u8]>) -> Result<Self, FormatError> {
        bytes.map(<[u8]>::to_vec).ok_or_else(missing_key)
    }
    fn encode_key(&self, buf: &mut Vec<u8>) -> bool {
        buf.extend_from_slice(self);
        true
    }
}

macro_rules! integer_key {
    ($($t:ty => $wire:ty),*) => {$(
        impl KafkaKey for $t {
            fn decode_key(bytes: Option<&[u8]>) -> Result<Self, FormatError> {
                let bytes = bytes.ok_or_else(missing_key)?;
                let raw = <[u8; std::mem::size_of::<$wire>()]>::try_from(bytes).map_err(|_| {
                    FormatError(format!(
                        "key of {} bytes, not the {} of a {}",
                        bytes.len(),
                        std::mem::size_of::<$wire>(),
                        stringify!($t)
                    ))
                })?;
                <$t>::try_from(<$wire>::from_be_bytes(raw))
                    .map_err(|e| FormatError(format!("key out of range: {e}")))
            }
            fn encode_key(&self, buf: &mut Vec<u8>) -> bool {
                buf.extend_from_slice(&(*self as $wire).to_be_bytes());
                true
            }
        }
    )*};
}

integer_key!(u32 => u32, i32 => i32, u64 => u64, i64 => i64, usize => u64);

impl KafkaKey for () {
    fn decode_key(_: Option<&[u8]>) -> Result<Self, FormatError> {
        Ok(())
    }
    fn encode_key(&self, _: &mut Vec<u8>) -> bool {
        false
    }
}

impl<K: KafkaKey> KafkaKey for Option<K> {
    fn decode_key(bytes: Option<&[u8]>) -> Result<Self, FormatError> {
        match bytes {
            None => Ok(None),
            Some(b) => K::decode_key(Some(b)).map(Some),
        }
    }
    fn encode_key(&self, buf: &mut Vec<u8>) -> bool {
        match self {
            None => false,
            Some(k) => k.encode_key(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Event {
        user: String,
        price: f64,
    }

    fn round_trip<C: Codec<Event>>(codec: C) {
        let e = Event {
            user: "ann".into(),
            price: 4.5,
        };
        let mut buf = Vec::new();
        codec.encode_into(&e, &mut buf).unwrap();
        assert_eq!(codec.decode(&buf).unwrap(), e);
        assert!(
            codec.decode(&buf[..buf.len() - 1]).is_err(),
            "{} accepts a truncated value",
            codec.name()
        );
    }

    #[test]
    fn json_and_bincode_round_trip_and_reject_truncation() {
        round_trip(Json);
        round_trip(Bincode);
    }

    #[test]
    fn keys() {
        assert_eq!(String::decode_key(Some(b"k1")).unwrap(), "k1");
        assert!(String::decode_key(None).is_err());
        assert_eq!(Option::<String>::decode_key(None).unwrap(), None);
        let mut buf = Vec::new();
        assert!(!().encode_key(&mut buf));
        assert!("abc".to_string().encode_key(&mut buf));
        assert_eq!(buf, b"abc");
    }
}
