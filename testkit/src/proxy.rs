//! A TCP proxy that can stop forwarding: a server that hangs (a partition, a frozen process)
//! or refuses (down), for one client only, without touching the server others share.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::TestkitError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    /// Connections stay open and nothing answers: a network partition, a frozen server.
    Hang,
    /// Connections are closed at once: the server is down.
    Refuse,
}

pub struct TcpProxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl TcpProxy {
    /// Listens on a loopback port of its own and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self, TestkitError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(TestkitError::io("bind the proxy"))?;
        let addr = listener
            .local_addr()
            .map_err(TestkitError::io("the proxy's address"))?;
        let (mode, watching) = watch::channel(Mode::Forward);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream, watching.clone()));
            }
        });
        Ok(Self { addr, mode })
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let current = *mode.borrow_and_update();
    match current {
        Mode::Refuse => return,
        Mode::Hang => {
            let _ = mode.wait_for(|m| *m != Mode::Hang).await;
            return;
        }
        Mode::Forward => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let outage = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
        changed = mode.wait_for(|m| *m != Mode::Forward) => changed.ok().map(|m| *m),
    };
    // Hanging: hold both ends open, silent, until the outage ends; then the connection is
    // gone, as after a real one.
    if outage == Some(Mode::Hang) {
        let _ = mode.wait_for(|m| *m != Mode::Hang).await;
    }
}
