//! OpenMSIStream's wire format for one file chunk, decoded without copying the data.
//!
//! Facts from openmsi/openmsistream (1.8.x), checked in its source:
//!
//! * `kafka_wrapper/serialization.py`, `DataFileChunkSerializer`: the value is
//!   `msgpack.packb([...], use_bin_type=True)` of, in order: filename (str), SHA-512 of the
//!   whole file (raw 64-byte digest), SHA-512 of this chunk's data (raw digest), write
//!   offset in the rebuilt file, chunk index (1-based), chunk count, subdirectory relative
//!   to the upload root (POSIX `a/b`, `""` at the root), filename append (str), the data
//!   (bin), and the file's mtime (float seconds, `0.0` when unknown). The deserializer
//!   (`DataFileChunkDeserializer`, `raw=True`) accepts 9 or 10 elements, decodes the text
//!   fields as UTF-8, checks the chunk's SHA-512 against its data and treats an mtime of
//!   0 as absent.
//! * `data_file_io/entity/data_file_chunk.py` `msg_key` with `utilities.get_message_prepend`:
//!   the key is `"_".join(subdir.split("/")) + "_" + filename + "_chunk_" + i + "_of_" + n`
//!   (so a file at the root has a key starting with `_`). The key is informational: the
//!   downloader reads everything from the value, and so does ferry.
//! * `data_file_io/entity/download_data_file.py` `get_full_filepath`: the rebuilt file is
//!   `<dir>/<subdir>/<stem><append><suffix>` (pathlib's stem and suffix), not
//!   `<filename><append>`.
//! * `kafka_wrapper/openmsistream_consumer.py` `_message_passes_filepath_filter`:
//!   `--download_regex` is `re.match`ed (anchored at the start only) against
//!   `<subdir>/<filename>` (the path before the append).

use std::fmt;
use std::path::{Component, PathBuf};

use rmpv::ValueRef;
use sha2::{Digest, Sha512};

/// A SHA-512 digest.
pub type Sha512Digest = [u8; 64];

/// One decoded chunk; `data` borrows from the record's value.
#[derive(Clone, PartialEq)]
pub struct Chunk<'a> {
    pub filename: String,
    pub file_hash: Sha512Digest,
    pub chunk_hash: Sha512Digest,
    pub offset: u64,
    /// 1-based.
    pub index: u32,
    pub count: u32,
    /// POSIX, `""` at the root.
    pub subdir: String,
    pub append: String,
    pub data: &'a [u8],
    /// Seconds since the epoch; `None` when the uploader sent none (or 0.0).
    pub mtime: Option<f64>,
}

impl fmt::Debug for Chunk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("file", &self.relative_path())
            .field("index", &self.index)
            .field("count", &self.count)
            .field("offset", &self.offset)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Why a record is not a usable chunk. Displayed as the cause part of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    Malformed(String),
    ChunkHash { file: String, index: u32 },
    UnsafePath { file: String, reason: &'static str },
}

impl std::error::Error for ChunkError {}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::Malformed(why) => write!(
                f,
                "not an OpenMSIStream file chunk ({why}); only OpenMSIStream's uploaders (DataFileChunkSerializer) may write to this topic"
            ),
            ChunkError::ChunkHash { file, index } => write!(
                f,
                "chunk {index} of `{file}` does not match its SHA-512 (corrupted in transit or by its producer); upload the file again"
            ),
            ChunkError::UnsafePath { file, reason } => write!(
                f,
                "file path `{file}` {reason}, so it could be written outside the download directory; refused"
            ),
        }
    }
}

fn malformed(why: impl Into<String>) -> ChunkError {
    ChunkError::Malformed(why.into())
}

fn text(v: &ValueRef<'_>, field: &str) -> Result<String, ChunkError> {
    let bytes: &[u8] = match v {
        ValueRef::String(s) => match s.as_str() {
            Some(s) => return Ok(s.to_string()),
            None => return Err(malformed(format!("{field} is not UTF-8"))),
        },
        ValueRef::Binary(b) => b,
        _ => return Err(malformed(format!("{field} is not a string"))),
    };
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| malformed(format!("{field} is not UTF-8")))
}

fn digest(v: &ValueRef<'_>, field: &str) -> Result<Sha512Digest, ChunkError> {
    match v {
        ValueRef::Binary(b) => <Sha512Digest>::try_from(*b).map_err(|_| {
            malformed(format!(
                "{field} is {} bytes, not a 64-byte SHA-512 digest",
                b.len()
            ))
        }),
        _ => Err(malformed(format!("{field} is not binary"))),
    }
}

fn integer(v: &ValueRef<'_>, field: &str) -> Result<u64, ChunkError> {
    match v {
        ValueRef::Integer(i) => i
            .as_u64()
            .ok_or_else(|| malformed(format!("{field} is negative"))),
        _ => Err(malformed(format!("{field} is not an integer"))),
    }
}

impl<'a> Chunk<'a> {
    /// Decodes a record value and checks the chunk's own SHA-512, as
    /// `DataFileChunkDeserializer` does.
    pub fn decode(value: &'a [u8]) -> Result<Self, ChunkError> {
        let mut rd = value;
        let top = rmpv::decode::read_value_ref(&mut rd)
            .map_err(|e| malformed(format!("msgpack: {e}")))?;
        let ValueRef::Array(items) = top else {
            return Err(malformed("the msgpack value is not an array"));
        };
        if !(9..=10).contains(&items.len()) {
            return Err(malformed(format!(
                "{} msgpack elements, expected 9 or 10",
                items.len()
            )));
        }
        if !rd.is_empty() {
            return Err(malformed(format!(
                "{} bytes after the msgpack array",
                rd.len()
            )));
        }
        let index = u32::try_from(integer(&items[4], "the chunk index")?)
            .map_err(|_| malformed("the chunk index is too large"))?;
        let count = u32::try_from(integer(&items[5], "the chunk count")?)
            .map_err(|_| malformed("the chunk count is too large"))?;
        if index == 0 || index > count {
            return Err(malformed(format!("chunk index {index} of {count}")));
        }
        let ValueRef::Binary(data) = items[8] else {
            return Err(malformed("the chunk data is not binary"));
        };
        let mtime = match items.get(9) {
            None | Some(ValueRef::Nil) => None,
            Some(ValueRef::F64(f)) => Some(*f),
            Some(ValueRef::F32(f)) => Some(f64::from(*f)),
            Some(ValueRef::Integer(i)) => i.as_f64(),
            Some(_) => return Err(malformed("the mtime is not a number")),
        }
        .filter(|t| t.is_finite() && *t > 0.0);
        let chunk = Chunk {
            filename: text(&items[0], "the filename")?,
            file_hash: digest(&items[1], "the file hash")?,
            chunk_hash: digest(&items[2], "the chunk hash")?,
            offset: integer(&items[3], "the write offset")?,
            index,
            count,
            subdir: text(&items[6], "the subdirectory")?,
            append: text(&items[7], "the filename append")?,
            data,
            mtime,
        };
        if chunk.offset.checked_add(data.len() as u64).is_none() {
            return Err(malformed("the write offset overflows"));
        }
        if Sha512::digest(data).as_slice() != chunk.chunk_hash {
            return Err(ChunkError::ChunkHash {
                file: chunk.relative_path(),
                index,
            });
        }
        Ok(chunk)
    }

    /// `<subdir>/<filename>` as OpenMSIStream names the file (before the append); what
    /// `download.regex` is matched against.
    pub fn relative_path(&self) -> String {
        if self.subdir.is_empty() {
            self.filename.clone()
        } else {
            format!("{}/{}", self.subdir, self.filename)
        }
    }

    /// The rebuilt file's path relative to the download directory:
    /// `<subdir>/<stem><append><suffix>`. Refuses anything that could leave the directory
    /// (absolute paths, `..`) or is not a plain file name.
    pub fn target(&self) -> Result<PathBuf, ChunkError> {
        let unsafe_path = |reason| ChunkError::UnsafePath {
            file: self.relative_path(),
            reason,
        };
        if self.subdir.starts_with('/') {
            return Err(unsafe_path("is absolute"));
        }
        let mut path = PathBuf::new();
        // PurePosixPath(subdir).parts: empty and `.` parts collapse.
        for part in self.subdir.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(unsafe_path("climbs out with `..`")),
                p if p.contains('\0') => return Err(unsafe_path("contains a NUL byte")),
                p => path.push(p),
            }
        }
        let name = full_name(&self.filename, &self.append);
        if self.filename.is_empty()
            || matches!(self.filename.as_str(), "." | "..")
            || name.contains(['/', '\0'])
        {
            return Err(unsafe_path("does not end in a plain file name"));
        }
        path.push(&name);
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(unsafe_path("is not a plain relative path"));
        }
        Ok(path)
    }
}

/// `pathlib`'s `stem + append + suffix`: the suffix is from the last `.`, unless that dot
/// starts the name or ends it.
fn full_name(filename: &str, append: &str) -> String {
    if append.is_empty() {
        return filename.to_string();
    }
    match filename.rfind('.') {
        Some(i) if i > 0 && i + 1 < filename.len() => {
            format!("{}{append}{}", &filename[..i], &filename[i..])
        }
        _ => format!("{filename}{append}"),
    }
}

/// OpenMSIStream's message key for a chunk (`DataFileChunk.msg_key`).
pub fn message_key(subdir: &str, filename: &str, index: u32, count: u32) -> String {
    format!(
        "{}_{filename}_chunk_{index}_of_{count}",
        subdir.split('/').collect::<Vec<_>>().join("_")
    )
}

/// Lower-case hex of the first `n` bytes of a digest, for file names and log lines.
pub fn short_hex(digest: &[u8], n: usize) -> String {
    digest.iter().take(n).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rmpv::Value;

    /// Encodes a chunk exactly as `DataFileChunkSerializer` does (for unit tests; the
    /// integration tests use OpenMSIStream itself).
    pub(crate) fn encode(
        subdir: &str,
        filename: &str,
        append: &str,
        file: &[u8],
        size: usize,
        index: usize,
    ) -> Vec<u8> {
        encode_at(subdir, filename, append, file, size, index, 1_700_000_000.5)
    }

    pub(crate) fn encode_at(
        subdir: &str,
        filename: &str,
        append: &str,
        file: &[u8],
        size: usize,
        index: usize,
        mtime: f64,
    ) -> Vec<u8> {
        let chunks: Vec<&[u8]> = file.chunks(size).collect();
        let data = chunks[index - 1];
        let value = Value::Array(vec![
            Value::from(filename),
            Value::from(Sha512::digest(file).to_vec()),
            Value::from(Sha512::digest(data).to_vec()),
            Value::from((index - 1) * size),
            Value::from(index),
            Value::from(chunks.len()),
            Value::from(subdir),
            Value::from(append),
            Value::from(data.to_vec()),
            Value::F64(mtime),
        ]);
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &value).unwrap();
        out
    }

    #[test]
    fn decodes_what_openmsistream_encodes() {
        let file = b"hello openmsistream".repeat(10);
        let bytes = encode("a/b", "x.dat", "_v2", &file, 64, 2);
        let c = Chunk::decode(&bytes).unwrap();
        assert_eq!(c.filename, "x.dat");
        assert_eq!(c.index, 2);
        assert_eq!(c.count, 3);
        assert_eq!(c.offset, 64);
        assert_eq!(c.data, &file[64..128]);
        assert_eq!(c.mtime, Some(1_700_000_000.5));
        assert_eq!(c.relative_path(), "a/b/x.dat");
        assert_eq!(c.target().unwrap(), PathBuf::from("a/b/x_v2.dat"));
        assert_eq!(message_key("a/b", "x.dat", 2, 3), "a_b_x.dat_chunk_2_of_3");
        assert_eq!(message_key("", "x.dat", 1, 1), "_x.dat_chunk_1_of_1");
    }

    #[test]
    fn the_append_goes_before_the_suffix_as_in_pathlib() {
        assert_eq!(full_name("a.tar.gz", "_1"), "a.tar_1.gz");
        assert_eq!(full_name(".hidden", "_1"), ".hidden_1");
        assert_eq!(full_name("noext", "_1"), "noext_1");
        assert_eq!(full_name("trailing.", "_1"), "trailing._1");
        assert_eq!(full_name("x.dat", ""), "x.dat");
    }

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        let file = b"data".to_vec();
        for (subdir, name) in [
            ("..", "x"),
            ("a/../..", "x"),
            ("/etc", "x"),
            ("", ".."),
            ("", ""),
        ] {
            let bytes = encode(subdir, name, "", &file, 4, 1);
            let c = Chunk::decode(&bytes).unwrap();
            let err = c.target().unwrap_err();
            assert!(
                matches!(err, ChunkError::UnsafePath { .. }),
                "{subdir} {name}"
            );
        }
        let bytes = encode("a/./b//c", "x", "", &file, 4, 1);
        assert_eq!(
            Chunk::decode(&bytes).unwrap().target().unwrap(),
            PathBuf::from("a/b/c/x")
        );
        let bytes = encode("", "x", "/../../y", &file, 4, 1);
        assert!(Chunk::decode(&bytes).unwrap().target().is_err());
    }

    #[test]
    fn a_corrupted_chunk_or_a_stranger_is_refused() {
        let file = b"0123456789".to_vec();
        let mut bytes = encode("", "x", "", &file, 10, 1);
        let n = bytes.len();
        bytes[n - 12] ^= 1; // inside the data
        let err = Chunk::decode(&bytes).unwrap_err();
        assert!(
            matches!(err, ChunkError::ChunkHash { index: 1, .. }),
            "{err}"
        );
        let err = Chunk::decode(b"{\"json\": true}").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("not an OpenMSIStream file chunk")
        );
        let mut short = Vec::new();
        rmpv::encode::write_value(&mut short, &Value::Array(vec![Value::from(1); 8])).unwrap();
        assert!(
            Chunk::decode(&short)
                .unwrap_err()
                .to_string()
                .contains("8 msgpack elements")
        );
    }
}
