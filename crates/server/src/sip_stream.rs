//! SIP over TCP and TLS: the connections. Outbound, one connection per
//! TCP/TLS trunk, made on the first message for it and made again after it
//! closes; inbound, carriers may connect to `sip.listen` over TCP, and to
//! `sip.tls_listen` over TLS when it is set. Every
//! message read goes to the switchboard as if it were a datagram from the
//! connection's peer; cutting the stream into messages is
//! `seatline_sip::stream`'s. The user agent is told which peers are behind
//! a connection, so that it names the transport and does not retransmit.

use crate::App;
use seatline_sip::stream::Framer;
use seatline_sip::Transport;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;

/// Messages queued for one connection; beyond, they are dropped (the
/// transaction layer times out, as on a lost datagram).
const QUEUE: usize = 256;
/// Inbound connections at once; more are closed at once.
const MAX_INBOUND: usize = 1024;
/// An inbound connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach a trunk over a connection.
#[derive(Clone)]
pub enum Dial {
    Tcp,
    Tls {
        config: Arc<rustls::ClientConfig>,
        name: rustls_pki_types::ServerName<'static>,
    },
}

#[derive(Default)]
pub struct Streams {
    conns: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
    /// Trunks reached over a connection, by address (changed when an
    /// admin changes trunks).
    dial: Mutex<HashMap<SocketAddr, Dial>>,
    inbound: std::sync::atomic::AtomicUsize,
}

impl Streams {
    /// From now on, these trunks are reached over a connection. A
    /// connection already open stays until it closes.
    pub fn set_dials(&self, dial: HashMap<SocketAddr, Dial>) {
        *self.dial.lock().unwrap_or_else(|p| p.into_inner()) = dial;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `bytes` to `to` over its connection (made now if `to` is a
    /// TCP/TLS trunk); gives them back when `to` is reached over UDP.
    pub fn send(
        self: &Arc<Self>,
        app: &App,
        to: SocketAddr,
        bytes: Vec<u8>,
    ) -> Result<(), Vec<u8>> {
        let mut conns = self.lock();
        if let Some(tx) = conns.get(&to) {
            if tx.try_send(bytes).is_err() {
                tracing::warn!(peer = %to, "SIP connection queue full or closed: message dropped");
            }
            return Ok(());
        }
        let dial = self
            .dial
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&to)
            .cloned();
        let Some(dial) = dial else {
            return Err(bytes);
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = tx.try_send(bytes);
        conns.insert(to, tx);
        drop(conns);
        let (me, app) = (self.clone(), app.clone());
        tokio::spawn(async move {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await;
            let tcp = match stream {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return me.failed(&app, to, &e.to_string()),
                Err(_) => return me.failed(&app, to, "timed out"),
            };
            let _ = tcp.set_nodelay(true);
            match dial {
                Dial::Tcp => me.run(app, to, tcp, rx, false).await,
                Dial::Tls { config, name } => {
                    let connector = tokio_rustls::TlsConnector::from(config);
                    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await
                    {
                        Ok(Ok(tls)) => me.run(app, to, tls, rx, false).await,
                        Ok(Err(e)) => me.failed(&app, to, &format!("TLS: {e}")),
                        Err(_) => me.failed(&app, to, "TLS handshake timed out"),
                    }
                }
            }
        });
        Ok(())
    }

    fn failed(&self, app: &App, to: SocketAddr, why: &str) {
        tracing::warn!(peer = %to, "cannot connect to the trunk: {why}");
        self.lock().remove(&to);
        app.hub.transport_failed(to, Instant::now());
    }

    /// Carries one connection until it closes: queued messages out, whole
    /// messages in.
    async fn run<S>(
        self: Arc<Self>,
        app: App,
        peer: SocketAddr,
        stream: S,
        mut rx: mpsc::Receiver<Vec<u8>>,
        inbound: bool,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut read, mut write) = tokio::io::split(stream);
        let writer = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if write.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        });
        let mut framer = Framer::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let read = if inbound {
                match tokio::time::timeout(IDLE, read.read(&mut buf)).await {
                    Ok(r) => r,
                    Err(_) => break,
                }
            } else {
                read.read(&mut buf).await
            };
            let n = match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            loop {
                match framer.next_message() {
                    Ok(Some(msg)) => app.hub.sip_datagram(&msg, peer, Instant::now()),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(%peer, "closing a SIP connection: {e}");
                        writer.abort();
                        return self.closed(&app, peer, inbound);
                    }
                }
            }
        }
        writer.abort();
        self.closed(&app, peer, inbound);
    }

    fn closed(&self, app: &App, peer: SocketAddr, inbound: bool) {
        self.lock().remove(&peer);
        // Whatever waited for an answer over it will not get one.
        app.hub.transport_failed(peer, Instant::now());
        if inbound {
            self.inbound
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            app.hub.set_transport(peer, Transport::Udp);
        }
    }

    /// Takes carriers' connections on `listener` for as long as the
    /// server runs: plain TCP, or TLS when `tls` is given. Only trusted
    /// sources get a connection (and a handshake); the handshake runs in
    /// the connection's own task, bounded in time.
    pub fn listen(
        self: Arc<Self>,
        app: App,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                if self.inbound.load(Relaxed) >= MAX_INBOUND || !app.hub.sip_trusted(peer) {
                    // Untrusted sources get no connection, as no answer over UDP.
                    continue;
                }
                self.inbound.fetch_add(1, Relaxed);
                let _ = tcp.set_nodelay(true);
                let (me, app) = (self.clone(), app.clone());
                let Some(acceptor) = tls.clone() else {
                    me.clone().accepted(app, peer, tcp, Transport::Tcp).await;
                    continue;
                };
                tokio::spawn(async move {
                    match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => me.accepted(app, peer, stream, Transport::Tls).await,
                        outcome => {
                            let why = match outcome {
                                Ok(Err(e)) => e.to_string(),
                                _ => "timed out".to_string(),
                            };
                            tracing::warn!(%peer, "inbound SIP over TLS: handshake failed: {why}");
                            me.inbound.fetch_sub(1, Relaxed);
                        }
                    }
                });
            }
        });
    }

    /// An inbound connection is ready: messages to `peer` go over it.
    async fn accepted<S>(self: Arc<Self>, app: App, peer: SocketAddr, stream: S, kind: Transport)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.lock().insert(peer, tx);
        app.hub.set_transport(peer, kind);
        tokio::spawn(self.run(app, peer, stream, rx, true));
    }
}

/// The TLS server side of `sip.tls_listen`: our certificate chain and key,
/// from PEM files.
pub fn tls_server(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("sip.tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("sip.tls_cert {}: no certificate in it", cert.display());
    }
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("sip.tls_key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("sip.tls_cert and sip.tls_key: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A TLS client configuration trusting `ca` (a PEM file of certificates),
/// or the Mozilla roots when none is given.
pub fn tls_client(ca: Option<&std::path::Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| anyhow::anyhow!("tls_ca {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| anyhow::anyhow!("tls_ca {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| anyhow::anyhow!("tls_ca {}: {e}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
