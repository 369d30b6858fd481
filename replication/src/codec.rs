//! postcard encoding with a version byte, for everything this crate stores or sends.
//!
//! postcard is not self-describing, so every encoded value starts with [`FORMAT_VERSION`]; a
//! reader that meets another version refuses it with a clear error instead of misreading it.
//! (bincode is not used: its last release is a tombstone and the crate is unmaintained.)

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The version of every encoding this crate writes.
pub const FORMAT_VERSION: u8 = 1;

/// Encodes `value` behind the version byte.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    postcard::to_io(value, &mut out).expect("postcard encodes into a Vec");
    out
}

/// Decodes what [`encode`] wrote; a wrong version or malformed bytes are an `InvalidData` error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => postcard::from_bytes(rest).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("malformed record: {e}"))
        }),
        Some((version, _)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("record format version {version}, this build reads {FORMAT_VERSION}"),
        )),
        None => Err(io::Error::new(io::ErrorKind::InvalidData, "empty record")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let bytes = encode(&("key", 7u64));
        assert_eq!(decode::<(String, u64)>(&bytes).expect("decodes"), ("key".to_string(), 7));
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(decode::<(String, u64)>(&other).is_err());
        assert!(decode::<(String, u64)>(&[]).is_err());
        assert!(decode::<(String, u64)>(&bytes[..2]).is_err());
    }
}
