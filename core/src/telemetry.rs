//! Process plumbing shared by both binaries: structured logging through `tracing`, and
//! the shutdown signal.

use crate::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: text or JSON lines, filtered by `LEASEHOLD_LOG_LEVEL`.
pub fn init(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
}

/// Binds the listener of setting `key` (`LEASEHOLD_LISTEN`, `LEASEHOLD_WORKER_LISTEN`); a
/// failure names the address and the setting: `cannot listen on 127.0.0.1:8080
/// (LEASEHOLD_LISTEN): address already in use — …`.
pub async fn bind(addr: std::net::SocketAddr, key: &str) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "address already in use — another process is listening there; stop it or set {key} to another address"
            ),
            std::io::ErrorKind::PermissionDenied => {
                format!("permission denied — ports below 1024 need privileges; set {key} to a higher port")
            }
            std::io::ErrorKind::AddrNotAvailable => {
                format!("address not available — no interface of this machine has that address; fix {key}")
            }
            _ => e.to_string(),
        };
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({key}): {reason}"))
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn an_address_in_use_names_the_address_and_the_setting() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = super::bind(addr, "LEASEHOLD_LISTEN").await.expect_err("in use");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot listen on {addr} (LEASEHOLD_LISTEN): address already in use")),
            "{text}"
        );
    }
}
