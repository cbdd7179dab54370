//! A small web service with the dependencies of a real one: it fetches a JSON document on
//! request and serves it, logging as JSON. bench/scale times a no-op rerun of its image.

use axum::{Json, Router, extract::State, routing::get};
use serde::{Deserialize, Serialize};

#[derive(Clone)]
struct App {
    client: reqwest::Client,
    upstream: String,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    upstream: serde_json::Value,
}

async fn answer(State(app): State<App>) -> Json<Answer> {
    let upstream = match app.client.get(&app.upstream).send().await {
        Ok(response) => response.json().await.unwrap_or(serde_json::Value::Null),
        Err(error) => serde_json::json!({ "error": error.to_string() }),
    };
    Json(Answer {
        id: uuid::Uuid::new_v4(),
        at: chrono::Utc::now(),
        upstream,
    })
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let app = App {
        client: reqwest::Client::new(),
        upstream: std::env::var("UPSTREAM").unwrap_or_else(|_| "http://127.0.0.1:9/".into()),
    };
    let router = Router::new()
        .route("/", get(answer))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await.unwrap();
    tracing::info!("listening on 8080");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .unwrap();
}
