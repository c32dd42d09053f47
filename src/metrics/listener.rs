//! `ferry.metrics.listener`: an HTTP listener of its own serving `GET /metrics`, for
//! scraping the metrics somewhere else than on the REST listener (another port or
//! interface, or with the REST API off).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use ferry_connector_api::text::shown;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::CONTENT_TYPE;

/// A parsed `ferry.metrics.listener`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsListener {
    pub addr: SocketAddr,
    /// As written.
    pub url: String,
    /// Where it was written (`file:line`).
    pub location: String,
}

/// The listener could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "{location}: ferry.metrics.listener={url}: cannot listen on {addr}: {source}; choose a free port, or stop what listens there"
)]
pub struct ListenerError {
    pub location: String,
    pub url: String,
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Parses `http://HOST:PORT` (Kafka Connect's `listeners` syntax; the scheme may be left
/// out). HOST is an IP address (`[…]` for IPv6), `localhost`, or empty for every
/// interface, as in Connect. Pure: a host name is not resolved, so it is refused.
pub fn parse(value: &str) -> Result<SocketAddr, String> {
    let v = value.trim();
    let rest = match v.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "`{}://` is not supported: the metrics listener speaks plain http (write http://127.0.0.1:9464, or serve /metrics on the REST listener)",
                shown(scheme)
            ));
        }
        None => v,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let example = "write it as http://127.0.0.1:9464";
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("`{}` has no port; {example}", shown(v)))?;
    let port: u16 = port.parse().map_err(|_| {
        format!(
            "`{}` is not a port number (0-65535); {example}",
            shown(port)
        )
    })?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
            .parse()
            .map_err(|_| {
                format!(
                    "`{}` is not an IP address (host names are not resolved here); {example}, or http://0.0.0.0:9464 for every interface",
                    shown(h)
                )
            })?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// The routes: `GET /metrics` only.
pub fn router() -> Router {
    Router::new().route("/metrics", get(metrics_page))
}

/// The handler of `GET /metrics`, for any router.
pub async fn metrics_page() -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], super::render())
}

/// Binds the listener now (so that a port in use stops the start), then serves until
/// `cancel`.
pub async fn serve(
    listener: &MetricsListener,
    cancel: CancellationToken,
) -> Result<JoinHandle<()>, ListenerError> {
    let bound = tokio::net::TcpListener::bind(listener.addr)
        .await
        .map_err(|source| ListenerError {
            location: listener.location.clone(),
            url: listener.url.clone(),
            addr: listener.addr,
            source,
        })?;
    let local = bound.local_addr().unwrap_or(listener.addr);
    tracing::info!(url = %listener.url, address = %local, "Serving metrics at /metrics.");
    Ok(tokio::spawn(async move {
        let served = axum::serve(bound, router())
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "The metrics listener stopped; /metrics is no longer served.");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn listener_urls_parse_as_connect_writes_them() {
        assert_eq!(
            parse("http://127.0.0.1:9464").unwrap().to_string(),
            "127.0.0.1:9464"
        );
        assert_eq!(
            parse(" http://localhost:9464/ ").unwrap().to_string(),
            "127.0.0.1:9464"
        );
        assert_eq!(parse("http://:9464").unwrap().to_string(), "0.0.0.0:9464");
        assert_eq!(
            parse("http://[::1]:9464").unwrap().to_string(),
            "[::1]:9464"
        );
        assert_eq!(parse("10.0.0.5:80").unwrap().to_string(), "10.0.0.5:80");
    }

    #[test]
    fn bad_listener_urls_say_what_to_write() {
        let https = parse("https://127.0.0.1:9464").unwrap_err();
        assert!(https.contains("`https://` is not supported"), "{https}");
        let no_port = parse("http://127.0.0.1").unwrap_err();
        assert!(no_port.contains("has no port"), "{no_port}");
        let bad_port = parse("http://127.0.0.1:99999").unwrap_err();
        assert!(bad_port.contains("not a port number"), "{bad_port}");
        let name = parse("http://metrics.example:9464").unwrap_err();
        assert!(name.contains("not an IP address"), "{name}");
        let huge = parse(&format!("http://{}:1", "a".repeat(1 << 20))).unwrap_err();
        assert!(huge.len() < 400 && huge.contains("bytes)"), "{huge}");
    }
}
