//! A small web server for a scratch image: a greeting from the environment, static files
//! copied in by `files`, and a listing of those files with their modes and owners.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tower_http::services::ServeDir;

#[derive(Clone)]
struct App {
    greeting: String,
    static_dir: PathBuf,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let app = App {
        greeting: std::env::var("GREETING").unwrap_or_else(|_| "hello".into()),
        static_dir: std::env::var("STATIC_DIR").unwrap_or_else(|_| "static".into()).into(),
    };
    let router = Router::new()
        .route("/", get(greet))
        .route("/files", get(files))
        .nest_service("/static", ServeDir::new(&app.static_dir))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(format!("0.0.0.0:{port}")).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

async fn greet(State(app): State<App>) -> String {
    format!("{}\n", app.greeting)
}

/// `mode uid gid path` for every file under the static directory and /etc/web.
async fn files(State(app): State<App>) -> String {
    let mut lines = Vec::new();
    for root in [app.static_dir.as_path(), Path::new("/etc/web")] {
        list(root, &mut lines);
    }
    lines.sort();
    lines.join("\n") + "\n"
}

fn list(path: &Path, lines: &mut Vec<String>) {
    let Ok(meta) = std::fs::metadata(path) else { return };
    lines.push(format!("{:o} {} {} {}", meta.mode() & 0o7777, meta.uid(), meta.gid(), path.display()));
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            list(&entry.path(), lines);
        }
    }
}
