//! The one place the collector's own small local records are encoded
//! (bincode 2, standard config, with a size limit on decode). Wire data is
//! prost and never passes through here.

use serde::{de::DeserializeOwned, Serialize};

/// Largest record decoded; anything bigger is corrupt.
const LIMIT: usize = 1024 * 1024;

/// A record that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<LIMIT>()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, config())?)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Ok(bincode::serde::decode_from_slice(bytes, config())?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let v = (7u64, "x".to_string(), Some(1.5f64));
        let bytes = encode(&v).unwrap();
        assert_eq!(decode::<(u64, String, Option<f64>)>(&bytes).unwrap(), v);
        assert!(decode::<(u64, String, Option<f64>)>(&[0xff; 3]).is_err());
    }
}
