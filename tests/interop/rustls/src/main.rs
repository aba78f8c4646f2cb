//! certmint's rustls interop peer: an mTLS client.
//!
//! `certmint-rustls-peer CERT KEY CA PORT` connects to 127.0.0.1:PORT, verifies the
//! server's chain against CA (and its IP SAN 127.0.0.1), presents CERT/KEY, sends one
//! line and prints one JSON line: the negotiated version and the server's reply line,
//! or `{"error": ...}` with exit status 1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => println!("{line}"),
        Err(err) => {
            println!("{{\"error\": {:?}}}", err.to_string());
            std::process::exit(1);
        }
    }
}

fn run(args: &[String]) -> Result<String, Box<dyn std::error::Error>> {
    let [cert, key, ca, port] = args else {
        return Err("usage: certmint-rustls-peer CERT KEY CA PORT".into());
    };
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let mut roots = rustls::RootCertStore::empty();
    for anchor in CertificateDer::pem_file_iter(ca)? {
        roots.add(anchor?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    let server_name = ServerName::try_from("127.0.0.1")?;
    let mut session = rustls::ClientConnection::new(Arc::new(config), server_name)?;
    let mut socket = TcpStream::connect(("127.0.0.1", port.parse::<u16>()?))?;
    socket.set_read_timeout(Some(Duration::from_secs(20)))?;
    socket.set_write_timeout(Some(Duration::from_secs(20)))?;
    let mut stream = rustls::Stream::new(&mut session, &mut socket);
    stream.write_all(b"hello\n")?;
    let mut reply = String::new();
    BufReader::new(&mut stream).read_line(&mut reply)?;
    if reply.is_empty() {
        return Err("the server closed the connection without a reply".into());
    }
    let version = match session.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "unknown",
    };
    Ok(format!("{{\"tls_version\": \"{version}\", \"reply\": {}}}", reply.trim_end()))
}
