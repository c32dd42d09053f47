//! Header transforms: `DropHeaders`.

use ferry_connector_api::{ConfigError, SinkRecord};

use crate::keys::Keys;
use crate::{Result, Transform};

#[derive(Debug)]
pub(crate) struct DropHeaders {
    names: Vec<String>,
}

pub(crate) fn drop_headers(keys: &mut Keys<'_>) -> Result<Box<dyn Transform>, ConfigError> {
    Ok(Box::new(DropHeaders {
        names: keys.required_list("headers", "the header keys to remove")?,
    }))
}

impl Transform for DropHeaders {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        record.headers.retain(|h| !self.names.contains(&h.key));
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_connector_api::Header;

    use crate::Transform;
    use crate::testing::*;

    fn header(k: &str, v: &str) -> Header {
        Header {
            key: k.into(),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
        }
    }

    /// Kafka: DropHeadersTest.dropExistingHeader, dropExistingHeaderWithMultipleValues,
    /// dropNonExistingHeader
    #[test]
    fn drops_every_header_with_a_listed_key() {
        let t = chain("DropHeaders", &[("headers", "dropped, other")]);
        let mut r = record("t", None);
        r.headers = vec![
            header("keep", "a"),
            header("dropped", "b"),
            header("dropped", "c"),
            header("keep", "d"),
        ];
        let out = t.apply(r).unwrap().unwrap();
        assert_eq!(out.headers, vec![header("keep", "a"), header("keep", "d")]);
        assert_eq!(
            chain_err("DropHeaders", &[]),
            "missing required key `transforms.t.headers`: DropHeaders needs the header keys to remove; set `transforms.t.headers`"
        );
    }
}
