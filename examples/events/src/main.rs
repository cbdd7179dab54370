//! Prints one event with the local time in the zone `TZ` names, as JSON with the `json` feature
//! and as Rust debug output without it.

use serde::Serialize;

#[derive(Debug, Serialize)]
struct Event {
    message: &'static str,
    at: jiff::ZonedDateTime,
}

fn main() {
    let event = Event {
        message: "hello from a scratch image",
        at: jiff::ZonedDateTime::now(),
    };
    #[cfg(feature = "json")]
    println!("{}", serde_json::to_string(&event).expect("an event serializes"));
    #[cfg(not(feature = "json"))]
    println!("{event:?}");
}
