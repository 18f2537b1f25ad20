//! How every Taquilla client reaches a server: an `http://` address in the clear, or an
//! `https://` address over TLS (rustls), trusting the system's certificate authorities or the
//! one given (`--tls-ca`), optionally expecting another name in the server's certificate than
//! the address's host (`--tls-domain`).

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// Makes rustls use ring in this process. Needed before any TLS configuration is built: when
/// one build links both of rustls' crypto providers (the load generator's HTTP client brings
/// the other), rustls refuses to guess and panics. Calling it again does nothing.
pub fn use_ring_crypto() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client's TLS settings.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM of the certificate authority that signed the server's certificate. None: the
    /// system's trusted authorities.
    pub ca_pem: Option<Vec<u8>>,
    /// The name the server's certificate must carry, when it is not the address's host.
    pub domain: Option<String>,
}

impl ClientTls {
    /// Reads the CA file, if one is given.
    pub fn from_options(ca: Option<&Path>, domain: Option<&str>) -> Result<ClientTls, String> {
        let ca_pem = match ca {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read the TLS CA file {}: {e}", path.display()))?;
                if !pem.starts_with(b"-----BEGIN") {
                    return Err(format!(
                        "the TLS CA file {} is not PEM (it should start with -----BEGIN CERTIFICATE-----)",
                        path.display()
                    ));
                }
                Some(pem)
            }
            None => None,
        };
        Ok(ClientTls {
            ca_pem,
            domain: domain.map(str::to_string),
        })
    }
}

/// The endpoint for a server address, with TLS when it is `https://`.
pub fn endpoint(address: &str, tls: &ClientTls) -> Result<Endpoint, String> {
    let endpoint = Endpoint::from_shared(address.to_string()).map_err(|_| {
        format!(
            "{address:?} is not a server address like http://127.0.0.1:50051 or https://tickets.example.com"
        )
    })?;
    if !address.starts_with("https://") {
        if tls.ca_pem.is_some() || tls.domain.is_some() {
            return Err(format!(
                "TLS options were given but {address:?} is not an https:// address"
            ));
        }
        return Ok(endpoint);
    }
    use_ring_crypto();
    let mut config = match &tls.ca_pem {
        Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
        None => ClientTlsConfig::new().with_native_roots(),
    };
    if let Some(domain) = &tls.domain {
        config = config.domain_name(domain.clone());
    }
    endpoint
        .tls_config(config)
        .map_err(|e| format!("cannot set up TLS for {address}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_refuse_tls_options() {
        assert!(endpoint("http://127.0.0.1:50051", &ClientTls::default()).is_ok());
        let tls = ClientTls {
            domain: Some("tickets.example".into()),
            ..ClientTls::default()
        };
        let why = endpoint("http://127.0.0.1:50051", &tls).expect_err("not https");
        assert!(why.contains("not an https://"), "{why}");
        assert!(endpoint("not a url", &ClientTls::default()).is_err());
    }

    #[test]
    fn a_ca_file_must_be_pem() {
        let dir = std::env::temp_dir().join(format!("taquilla-ca-{}", std::process::id()));
        std::fs::write(&dir, b"not a certificate").expect("write");
        let why = ClientTls::from_options(Some(&dir), None).expect_err("not PEM");
        assert!(why.contains("not PEM"), "{why}");
        let _ = std::fs::remove_file(&dir);
        let why = ClientTls::from_options(Some(Path::new("/nonexistent/ca.pem")), None)
            .expect_err("missing");
        assert!(why.contains("cannot read"), "{why}");
    }
}
