//! A SASL/GSSAPI front for one mock broker, for the Kerberos tests.
//!
//! librdkafka's mock cluster speaks no SASL and no broker here speaks GSSAPI, so each mock
//! broker gets one of these in front of it. Per client connection the front:
//!
//! - forwards `ApiVersions` to the broker and adds `SaslHandshake` (17) and
//!   `SaslAuthenticate` (36) to its answer, so clients see a SASL listener;
//! - answers `SaslHandshake` itself (mechanism `GSSAPI` only) and runs RFC 4752 over
//!   `SaslAuthenticate`: a GSSAPI acceptor context from the service keytab (`KRB5_KTNAME`),
//!   then the security-layer exchange offering only "no security layer", as Kafka does;
//! - closes the connection on any other request before authentication;
//! - once authenticated, pipes bytes both ways to the broker.
//!
//! Each outcome is reported as an [`Event`], so tests can assert which principal
//! authenticated on which connection and why one was refused.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::Sender;
use std::thread;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use libgssapi::context::{SecurityContext, ServerCtx};

/// What happened on one client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The client authenticated as this principal (e.g. `reader@FERRY.TEST`).
    Authenticated { peer: SocketAddr, principal: String },
    /// The connection was refused before authentication, with the reason.
    Rejected { peer: SocketAddr, reason: String },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Authenticated { peer, principal } => write!(f, "auth {peer} {principal}"),
            Event::Rejected { peer, reason } => write!(f, "reject {peer} {reason}"),
        }
    }
}

/// Kafka's SASL_AUTHENTICATION_FAILED and UNSUPPORTED_SASL_MECHANISM error codes.
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// Frames larger than this are not Kafka requests a client sends before authenticating.
const MAX_FRAME: usize = 16 << 20;

/// Accepts connections on `listener` forever, one thread each, forwarding authenticated
/// ones to `upstream`. If `max_connection_age` is set, authenticated connections are
/// closed after that long, so clients must log in again (as brokers with
/// `connections.max.reauth.ms` make them).
pub fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    max_connection_age: Option<Duration>,
    events: Sender<Event>,
) {
    for conn in listener.incoming() {
        let Ok(client) = conn else { continue };
        let events = events.clone();
        thread::spawn(move || {
            let Ok(peer) = client.peer_addr() else { return };
            match authenticate(&client, upstream) {
                Ok((principal, server)) => {
                    let _ = events.send(Event::Authenticated { peer, principal });
                    pipe(client, server, max_connection_age);
                }
                Err(reason) => {
                    let _ = events.send(Event::Rejected { peer, reason });
                    let _ = client.shutdown(Shutdown::Both);
                }
            }
        });
    }
}

/// Runs the pre-authentication part of the protocol; returns the authenticated principal
/// and the connection to the broker.
fn authenticate(
    mut client: &TcpStream,
    upstream: SocketAddr,
) -> Result<(String, TcpStream), String> {
    let mut server: Option<TcpStream> = None;
    let mut gss = Gssapi::new();
    let mut handshake_done = false;
    loop {
        let frame = match read_frame(&mut client) {
            Ok(Some(f)) => f,
            Ok(None) => return Err("client closed the connection before authenticating".into()),
            Err(e) => return Err(format!("reading a request: {e}")),
        };
        let mut body = frame.clone();
        let (key, version) = peek_key_version(&frame)?;
        let api = ApiKey::try_from(key).map_err(|()| format!("unknown API key {key}"))?;
        let header = RequestHeader::decode(&mut body, api.request_header_version(version))
            .map_err(|e| format!("bad request header: {e}"))?;
        match api {
            ApiKey::ApiVersions => {
                let up = match &mut server {
                    Some(s) => s,
                    None => server.insert(
                        TcpStream::connect(upstream)
                            .map_err(|e| format!("connect to broker {upstream}: {e}"))?,
                    ),
                };
                write_frame(&mut &*up, &frame).map_err(|e| format!("to broker: {e}"))?;
                let answer = read_frame(&mut &*up)
                    .map_err(|e| format!("from broker: {e}"))?
                    .ok_or("the broker closed the connection")?;
                write_frame(&mut client, &with_sasl_apis(answer, version))
                    .map_err(|e| format!("to client: {e}"))?;
            }
            ApiKey::SaslHandshake => {
                let req = SaslHandshakeRequest::decode(&mut body, version)
                    .map_err(|e| format!("bad SaslHandshake: {e}"))?;
                let ok = req.mechanism.as_str() == "GSSAPI";
                let resp = SaslHandshakeResponse::default()
                    .with_error_code(if ok { 0 } else { UNSUPPORTED_SASL_MECHANISM })
                    .with_mechanisms(vec![StrBytes::from_static_str("GSSAPI")]);
                respond(&mut client, api, version, header.correlation_id, &resp)?;
                if !ok {
                    return Err(format!(
                        "mechanism {} is not offered",
                        req.mechanism.as_str()
                    ));
                }
                handshake_done = true;
            }
            ApiKey::SaslAuthenticate if handshake_done => {
                let req = SaslAuthenticateRequest::decode(&mut body, version)
                    .map_err(|e| format!("bad SaslAuthenticate: {e}"))?;
                match gss.step(&req.auth_bytes) {
                    Ok((token, principal)) => {
                        let resp = SaslAuthenticateResponse::default().with_auth_bytes(token);
                        respond(&mut client, api, version, header.correlation_id, &resp)?;
                        if let Some(principal) = principal {
                            let server = match server {
                                Some(s) => s,
                                None => TcpStream::connect(upstream)
                                    .map_err(|e| format!("connect to broker {upstream}: {e}"))?,
                            };
                            return Ok((principal, server));
                        }
                    }
                    Err(reason) => {
                        let resp = SaslAuthenticateResponse::default()
                            .with_error_code(SASL_AUTHENTICATION_FAILED)
                            .with_error_message(Some(StrBytes::from_string(reason.clone())));
                        let _ = respond(&mut client, api, version, header.correlation_id, &resp);
                        return Err(format!("authentication failed: {reason}"));
                    }
                }
            }
            other => return Err(format!("{other:?} request before authentication")),
        }
    }
}

/// RFC 4752 on the acceptor side.
struct Gssapi {
    ctx: ServerCtx,
    stage: Stage,
}

enum Stage {
    /// Exchanging context tokens.
    Accepting,
    /// The context is complete and its last token sent; the client answers with nothing.
    AwaitEmpty,
    /// The security-layer offer is sent; the client answers with its choice.
    AwaitLayer,
}

/// "No security layer" (bit 0), and a maximum message size of 0, as Kafka offers.
const NO_SECURITY_LAYER: [u8; 4] = [1, 0, 0, 0];

impl Gssapi {
    fn new() -> Self {
        // No explicit credential: the acceptor takes any service key in KRB5_KTNAME.
        Self {
            ctx: ServerCtx::new(None),
            stage: Stage::Accepting,
        }
    }

    /// One client token in; the answer token out, and the principal once authenticated.
    fn step(&mut self, token: &[u8]) -> Result<(Bytes, Option<String>), String> {
        match self.stage {
            Stage::Accepting => {
                let out = self.ctx.step(token, None).map_err(|e| e.to_string())?;
                let out = out.map(|b| Bytes::copy_from_slice(&b)).unwrap_or_default();
                if !self.ctx.is_complete() {
                    return Ok((out, None));
                }
                if out.is_empty() {
                    self.stage = Stage::AwaitLayer;
                    return Ok((self.layer_offer()?, None));
                }
                self.stage = Stage::AwaitEmpty;
                Ok((out, None))
            }
            Stage::AwaitEmpty => {
                self.stage = Stage::AwaitLayer;
                Ok((self.layer_offer()?, None))
            }
            Stage::AwaitLayer => {
                let choice = self.ctx.unwrap(token).map_err(|e| e.to_string())?;
                if choice.first().is_none_or(|b| b & 1 == 0) {
                    return Err("the client did not choose \"no security layer\"".into());
                }
                let principal = self.ctx.source_name().map_err(|e| e.to_string())?;
                Ok((Bytes::new(), Some(principal.to_string())))
            }
        }
    }

    fn layer_offer(&mut self) -> Result<Bytes, String> {
        let wrapped = self
            .ctx
            .wrap(false, &NO_SECURITY_LAYER)
            .map_err(|e| e.to_string())?;
        Ok(Bytes::copy_from_slice(&wrapped))
    }
}

/// The broker's ApiVersions answer with the two SASL APIs added (header v0 always).
fn with_sasl_apis(answer: BytesMut, version: i16) -> BytesMut {
    let mut buf = answer.clone().freeze();
    if buf.remaining() < 4 {
        return answer;
    }
    let correlation_id = buf.get_i32();
    let Ok(mut resp) = ApiVersionsResponse::decode(&mut buf, version) else {
        return answer;
    };
    if resp.error_code != 0 {
        // UNSUPPORTED_VERSION comes in an older version's layout: pass it on, the client
        // asks again in a version the broker has.
        return answer;
    }
    for (key, max) in [(ApiKey::SaslHandshake, 1), (ApiKey::SaslAuthenticate, 2)] {
        if !resp.api_keys.iter().any(|a| a.api_key == key as i16) {
            resp.api_keys.push(
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(0)
                    .with_max_version(max),
            );
        }
    }
    let mut out = BytesMut::new();
    out.extend_from_slice(&correlation_id.to_be_bytes());
    if resp.encode(&mut out, version).is_err() {
        return answer;
    }
    out
}

fn respond<M: Encodable>(
    client: &mut &TcpStream,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &M,
) -> Result<(), String> {
    let mut out = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, api.response_header_version(version))
        .and_then(|()| body.encode(&mut out, version))
        .map_err(|e| format!("encoding a {api:?} response: {e}"))?;
    write_frame(client, &out).map_err(|e| format!("to client: {e}"))
}

fn peek_key_version(frame: &[u8]) -> Result<(i16, i16), String> {
    match frame {
        [k0, k1, v0, v1, ..] => Ok((
            i16::from_be_bytes([*k0, *k1]),
            i16::from_be_bytes([*v0, *v1]),
        )),
        _ => Err("a request shorter than its header".into()),
    }
}

/// One size-prefixed frame, or None at a clean end of stream.
fn read_frame(r: &mut impl Read) -> io::Result<Option<BytesMut>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(i32::from_be_bytes(len))
        .ok()
        .filter(|&l| l <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad frame length"))?;
    let mut buf = BytesMut::zeroed(len);
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = i32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Copies bytes both ways until either side closes (or the connection reaches its age).
fn pipe(client: TcpStream, server: TcpStream, max_age: Option<Duration>) {
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    if let Some(age) = max_age {
        let (c3, s3) = (client.try_clone(), server.try_clone());
        thread::spawn(move || {
            thread::sleep(age);
            for s in [c3, s3].into_iter().flatten() {
                let _ = s.shutdown(Shutdown::Both);
            }
        });
    }
    let upstream = thread::spawn(move || copy_then_close(c2, s2));
    copy_then_close(server, client);
    let _ = upstream.join();
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
