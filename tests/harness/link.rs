//! A TCP relay between a client under test and a real server, which a test
//! can cut: a network partition as the client sees it. While cut, open
//! connections are shut and new ones are accepted and never answered.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

/// Relays `127.0.0.1:port()` to the upstream address until dropped.
pub struct FaultyLink {
    port: u16,
    cut: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    /// Every socket of the relay (both ends), to shut on a cut or a drop.
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultyLink {
    pub fn start(upstream: SocketAddr) -> Result<FaultyLink> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the relay")?;
        let port = listener.local_addr()?.port();
        let cut = Arc::new(AtomicBool::new(false));
        let stopping = Arc::new(AtomicBool::new(false));
        let sockets: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let acceptor = {
            let (cut, stopping, sockets) = (cut.clone(), stopping.clone(), sockets.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let mut kept = sockets.lock().unwrap_or_else(|p| p.into_inner());
                    if let Ok(copy) = client.try_clone() {
                        kept.push(copy);
                    }
                    if cut.load(Ordering::SeqCst) {
                        // Accepted, never answered.
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(upstream) else {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    };
                    if let Ok(copy) = server.try_clone() {
                        kept.push(copy);
                    }
                    relay(&client, &server);
                    relay(&server, &client);
                }
            })
        };
        Ok(FaultyLink {
            port,
            cut,
            stopping,
            sockets,
            acceptor: Some(acceptor),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Shuts every open connection; new ones hang until [`FaultyLink::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.shut_all();
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.shut_all();
    }

    fn shut_all(&self) {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        for socket in sockets.drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn relay(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl Drop for FaultyLink {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shut_all();
    }
}
