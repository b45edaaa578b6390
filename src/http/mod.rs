//! `homekey serve`: the Matrix Client-Server account endpoints and Synapse's Admin API for
//! users, over HTTP.
//!
//! - [`error`]: Matrix errors as responses; [`json`]: request bodies; [`auth`]: access tokens.
//! - [`client`]: the Client-Server routes, under `/_matrix/client/v3` and the legacy `/r0`.
//! - [`admin`]: Synapse's Admin API for users, under `/_synapse/admin`.
//! - [`access_log`]: one log line per request, tokens redacted.
//! - [`server_keys`]: the server name at `/_matrix/key/v2/server`, with no keys.
//! - [`to_completion`]: every request runs to its end, even when its client goes away.

mod access_log;
mod admin;
mod auth;
mod client;
pub(crate) mod client_address;
pub mod error;
mod interactive_auth;
mod json;
#[cfg(test)]
mod router_properties;
mod server_keys;
mod to_completion;
mod whole_body;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::cors::{Any, CorsLayer};

use crate::accounts::Accounts;
use crate::config::Config;
use crate::store::{OpenMode, Store, StoreError};
use error::MatrixError;

/// What every handler can reach. axum clones it for every request: one shared pointer.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let synapse = match &state.accounts.config.synapse {
        Some(synapse) => crate::synapse::routes(state.accounts.clone(), synapse),
        None => Router::new(),
    };
    Router::new()
        .route(
            "/_matrix/client/versions",
            axum::routing::get(client::versions),
        )
        .route(
            "/_matrix/key/v2/server",
            axum::routing::get(server_keys::server_keys),
        )
        .route(
            "/_matrix/key/v2/server/{key_id}",
            axum::routing::get(server_keys::server_keys),
        )
        .merge(client::routes("/_matrix/client/v3"))
        .merge(client::routes("/_matrix/client/r0"))
        .merge(client::v1_routes())
        .merge(admin::legacy_client_routes())
        .merge(admin::routes())
        .merge(synapse)
        .merge(crate::web::password_reset_routes(
            state.accounts.clone(),
            state.accounts.config.synapse.is_none(),
        ))
        .merge(crate::web::recovery_routes(state.accounts.clone()))
        .fallback(|uri: Uri| unrecognized(uri, StatusCode::NOT_FOUND))
        .method_not_allowed_fallback(|uri: Uri| unrecognized(uri, StatusCode::METHOD_NOT_ALLOWED))
        // One `layer` call with them all, outermost first: axum boxes each route anew at
        // every call, and each box is cloned at every request.
        .layer(
            ServiceBuilder::new()
                .layer(access_log::AccessLogLayer)
                .layer(cors())
                .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
                .layer(axum::middleware::from_fn(whole_body::read_whole_body))
                .layer(axum::middleware::from_fn(to_completion::run_to_completion)),
        )
        .with_state(state)
}

/// A path or method no route serves: Matrix's `M_UNRECOGNIZED`, and under homekey's pages
/// (`/_homekey/`) with the pages' security headers, as every answer there has them.
async fn unrecognized(uri: Uri, status: StatusCode) -> Response {
    let answer = MatrixError::unrecognized(status).into_response();
    if uri.path().starts_with(crate::web::session::COOKIE_PATH) {
        crate::web::render::security_headers(answer).await
    } else {
        answer
    }
}

/// The CORS headers the Client-Server spec asks for, so browser clients work.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::HeaderName::from_static("x-requested-with"),
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
        ])
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("the config has no http listener")]
    NoListener,
    #[error(transparent)]
    Hash(#[from] crate::password::PasswordError),
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
    /// A template of the mail (or of the reset's pages) does not render.
    #[error("{0}")]
    Mail(#[from] crate::mail::MailError),
}

/// Runs the server until SIGTERM or SIGINT: requests in flight finish, then the database is
/// closed cleanly.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    // Installed before anything is announced: a SIGTERM sent as soon as "listening" shows
    // must stop the server gracefully, not kill it.
    let shutdown = ShutdownSignal::install()?;
    // An operator's broken mail template is found now, not when a user asks for a reset.
    crate::mail::templates::check(&config)?;
    let store = Store::open(&config.database, OpenMode::CreateIfMissing).await?;
    tracing::info!(database = %config.database, "database open");
    let mut accounts = Accounts::new(store, Arc::new(config.clone()));
    accounts.prepare_logins().await?;

    // Each bound socket, and whether it is behind a reverse proxy (`x_forwarded`).
    let mut listeners = Vec::new();
    for listener in config.listeners.iter().filter(|l| l.kind == "http") {
        for address in &listener.bind_addresses {
            let ip: std::net::IpAddr = address.parse().map_err(|_| ServeError::Bind {
                address: address.clone(),
                source: std::io::Error::other("not an IP address"),
            })?;
            let socket = SocketAddr::new(ip, listener.port);
            let bound = tokio::net::TcpListener::bind(socket)
                .await
                .map_err(|source| ServeError::Bind {
                    address: socket.to_string(),
                    source,
                })?;
            tracing::info!("listening on http://{}", bound.local_addr()?);
            listeners.push((bound, listener.x_forwarded));
        }
    }
    if listeners.is_empty() {
        return Err(ServeError::NoListener);
    }
    // The admin console's own listener (`admin_console:`): its own address, never the
    // homeserver's origin, and not one Synapse is told of.
    let console = if config.admin_console.enabled {
        let address = config.admin_console.listen;
        let bound = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| ServeError::Bind {
                address: address.to_string(),
                source,
            })?;
        tracing::info!("admin console listening on http://{}", bound.local_addr()?);
        Some(bound)
    } else {
        None
    };
    // Beside Synapse: this process becomes the instance listening there (freeing the delivery
    // leases of a previous process of the same instance), and what is owed to Synapse is
    // delivered as it comes due, left over from a change that could not reach Synapse at once
    // (or from before a restart).
    if accounts.beside_synapse() {
        let addresses = listeners
            .iter()
            .map(|(bound, _)| bound.local_addr())
            .collect::<Result<Vec<_>, _>>()?;
        accounts.serve_as_instance(&addresses).await?;
        let delivering = accounts.clone();
        tokio::spawn(async move { delivering.run_synapse_delivery().await });
    }
    let app = router(AppState {
        accounts: Arc::new(accounts.clone()),
    });

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let housekeeping = tokio::spawn(delete_expired_sessions(accounts.clone(), stopped.clone()));
    let (writing, writing_stopped) = (accounts.clone(), stopped.clone());
    let device_activity =
        tokio::spawn(async move { writing.run_device_activity_writes(writing_stopped).await });
    // The queued mail (a reset link) goes out from here, whichever instance queued it.
    let (mailing, mailing_stopped) = (accounts.clone(), stopped.clone());
    let mail_delivery =
        tokio::spawn(async move { mailing.run_mail_delivery(mailing_stopped).await });
    let mut servers = tokio::task::JoinSet::new();
    for (listener, x_forwarded) in listeners {
        let mut stopped = stopped.clone();
        let stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let app = app.clone();
        // The type of the connection info tells `ClientAddress` whether to read
        // X-Forwarded-For: nothing is added to each request for it.
        if x_forwarded {
            let app = app.into_make_service_with_connect_info::<client_address::BehindProxy>();
            servers.spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            });
        } else {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            servers.spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            });
        }
    }
    if let Some(listener) = console {
        let mut stopped = stopped.clone();
        let stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let app = crate::web::admin::routes(Arc::new(accounts.clone())).layer(
            ServiceBuilder::new()
                .layer(access_log::AccessLogLayer)
                .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES)),
        );
        if config.admin_console.x_forwarded {
            let app = app.into_make_service_with_connect_info::<client_address::BehindProxy>();
            servers.spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            });
        } else {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            servers.spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            });
        }
    }
    shutdown.received().await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop.send(true);
    while let Some(result) = servers.join_next().await {
        result.map_err(std::io::Error::other)??;
    }
    let _ = housekeeping.await;
    // A delivery under way ends on its own or is cut short: its mail is leased, and taken
    // again (by this instance after a restart, or another) once the lease runs out.
    if tokio::time::timeout(std::time::Duration::from_secs(5), mail_delivery)
        .await
        .is_err()
    {
        tracing::warn!("a mail delivery was cut short by the shutdown; it will be retried");
    }
    // The devices' last contacts noted since the last write are written before closing.
    let _ = device_activity.await;
    accounts.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Deletes expired user-interactive auth sessions every few minutes, and expired password
/// reset links every 30 minutes (as Synapse does both), until the server stops.
async fn delete_expired_sessions(
    accounts: Accounts,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);
    const SHORTEST: std::time::Duration = std::time::Duration::from_millis(500);
    const RESET_LINKS_EVERY: std::time::Duration = std::time::Duration::from_secs(30 * 60);
    // Often enough that an unfinished sign-up gives its token's use back about on time.
    let sign_up_lifetime =
        std::time::Duration::from_millis(accounts.config.registration.session_lifetime_ms as u64);
    let mut ticks = tokio::time::interval(EVERY.min(sign_up_lifetime / 2).max(SHORTEST));
    let mut reset_link_ticks = tokio::time::interval(RESET_LINKS_EVERY);
    loop {
        let reset_links = tokio::select! {
            _ = ticks.tick() => false,
            _ = reset_link_ticks.tick() => true,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        if reset_links {
            if accounts.email_reset_enabled() {
                match accounts.cull_reset_links().await {
                    Ok(deleted) => tracing::debug!(deleted, "expired password reset links deleted"),
                    Err(err) => {
                        tracing::warn!(error = %err, "deleting expired password reset links failed")
                    }
                }
            }
            continue;
        }
        match accounts.delete_expired_ui_auth_sessions().await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::debug!(deleted, "expired user-interactive auth sessions deleted")
            }
            Err(err) => {
                tracing::warn!(error = %err, "deleting expired user-interactive auth sessions failed")
            }
        }
    }
}

/// SIGTERM or SIGINT, listened for from the moment it is installed.
struct ShutdownSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> std::io::Result<ShutdownSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignal {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    async fn received(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
