//! `ws-floor`: the least a server can do for `map-load --scenario idle`, to
//! put the relay's and the JS server's idle CPU next to a floor measured in
//! the same run (docs/performance.md, "Idle CPU: the floor").
//!
//! It accepts TCP connections with tokio, does the WebSocket handshake with
//! tungstenite, answers each `join` with a `peer` message and then only
//! holds the connection. No HTTP router, no authentication, no database, no
//! logging, no pings: what is left is the kernel's TCP work, the handshake
//! and one task per connection. It is not a relay: every other message is
//! ignored.
//!
//!   ws-floor            # prints `ws-floor listening on ws://127.0.0.1:PORT`
//!   map-load --url ws://127.0.0.1:PORT --relay-pid PID --scenario idle

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use map_sync::message::{Message, PROTOCOL_VERSION};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

fn main() -> Result<()> {
    // Enough descriptors for map-load's 1,000 connections.
    let _ = rlimit::increase_nofile_limit(8192);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        println!("ws-floor listening on ws://{addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = serve(stream).await;
            });
        }
    })
}

async fn serve(stream: tokio::net::TcpStream) -> Result<()> {
    // The relay's read buffer size, so that both hold the same per socket.
    let config = WebSocketConfig::default().read_buffer_size(512);
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(config))
        .await
        .context("handshake")?;
    while let Some(frame) = ws.next().await {
        let WsMessage::Binary(bytes) = frame? else {
            continue;
        };
        if let Ok(Message::Join { sender_id, .. }) = Message::decode(&bytes) {
            let peer = Message::Peer {
                sender_id: "ws-floor".into(),
                peer_metadata: None,
                selected_protocol_version: PROTOCOL_VERSION.into(),
                target_id: sender_id,
            };
            ws.send(WsMessage::Binary(peer.encode().into())).await?;
        }
    }
    Ok(())
}
