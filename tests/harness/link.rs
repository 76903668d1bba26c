//! A TCP relay between a client under test and a real server, which a test
//! can cut: a network partition as the client sees it. While cut, open
//! connections are shut and new ones are accepted and never answered.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

/// Relays `127.0.0.1:port()` to the upstream address until dropped.
pub struct FaultyLink {
    port: u16,
    cut: Arc<AtomicBool>,
    /// Bytes from the server the link still carries before it cuts itself
    /// (`u64::MAX`: no such limit).
    budget: Arc<AtomicU64>,
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
        let budget = Arc::new(AtomicU64::new(u64::MAX));
        let stopping = Arc::new(AtomicBool::new(false));
        let sockets: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let acceptor = {
            let (cut, stopping, sockets) = (cut.clone(), stopping.clone(), sockets.clone());
            let budget = budget.clone();
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
                    relay(&client, &server, None);
                    let cut_off = CutOff {
                        budget: budget.clone(),
                        cut: cut.clone(),
                        sockets: sockets.clone(),
                    };
                    relay(&server, &client, Some(cut_off));
                }
            })
        };
        Ok(FaultyLink {
            port,
            cut,
            budget,
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
        self.budget.store(u64::MAX, Ordering::SeqCst);
        self.cut.store(false, Ordering::SeqCst);
        self.shut_all();
    }

    /// Cuts the link (as [`FaultyLink::cut`]) once `bytes` more have come
    /// from the server: the server gone in the middle of an answer.
    pub fn cut_after(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::SeqCst);
    }

    fn shut_all(&self) {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        for socket in sockets.drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// What a relay from the server needs to cut the link when its byte
/// budget runs out.
struct CutOff {
    budget: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
}

/// Copies `from` to `to` on a thread until either side closes; with
/// `cut_off`, counts the bytes against its budget and cuts the link when
/// they run out.
fn relay(from: &TcpStream, to: &TcpStream, cut_off: Option<CutOff>) {
    use std::io::{Read, Write};
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(read) = from.read(&mut buffer) {
            if read == 0 {
                break;
            }
            let mut sending = &buffer[..read];
            if let Some(cut_off) = &cut_off {
                let left = cut_off.budget.load(Ordering::SeqCst);
                if left != u64::MAX {
                    let allowed = left.min(read as u64);
                    cut_off.budget.store(left - allowed, Ordering::SeqCst);
                    sending = &buffer[..allowed as usize];
                    if allowed < read as u64 {
                        let _ = to.write_all(sending);
                        cut_off.cut.store(true, Ordering::SeqCst);
                        let mut sockets = cut_off.sockets.lock().unwrap_or_else(|p| p.into_inner());
                        for socket in sockets.drain(..) {
                            let _ = socket.shutdown(Shutdown::Both);
                        }
                        return;
                    }
                }
            }
            if to.write_all(sending).is_err() {
                break;
            }
        }
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
