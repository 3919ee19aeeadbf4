//! A TCP proxy that can make a server unreachable without giving up its
//! address: while down, new connections are closed at once and open ones are
//! cut. A test never has to free a port and bind it again (another process
//! could take it in between). It can also stall the connections open at a
//! moment: they stay open but carry nothing more, as behind a network that
//! drops packets, while later connections work.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards TCP to a target; `set_down(true)` cuts every open connection and
/// refuses new ones until `set_down(false)`.
pub struct TcpProxy {
    pub addr: SocketAddr,
    down: Arc<watch::Sender<bool>>,
    /// Bumped by `stall_open`: a connection accepted before the bump stalls.
    stalls: Arc<watch::Sender<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (down, _) = watch::channel(false);
        let down = Arc::new(down);
        let accept_down = Arc::clone(&down);
        let stalls = Arc::new(watch::channel(0u64).0);
        let accept_stalls = Arc::clone(&stalls);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if *accept_down.borrow() {
                    drop(client); // refused
                    continue;
                }
                let mut cut = accept_down.subscribe();
                let mut stall = accept_stalls.subscribe();
                let born = *stall.borrow();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut client = client;
                    // Biased, the cut and the stall first: once `set_down`
                    // has returned, no byte sent after it is forwarded (an
                    // unbiased select could still copy a request the test
                    // sent after cutting, and PostgreSQL commit it).
                    let stalled = tokio::select! {
                        biased;
                        _ = cut.wait_for(|down| *down) => false,
                        _ = stall.wait_for(|stalls| *stalls > born) => true,
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                    };
                    if stalled {
                        // Both sockets stay open, carrying nothing, until
                        // the proxy goes down or is dropped (which closes
                        // `cut`'s sender).
                        let _ = cut.wait_for(|down| *down).await;
                    }
                    drop((client, server));
                });
            }
        });
        TcpProxy {
            addr,
            down,
            stalls,
            task,
        }
    }

    /// Every connection open now stops carrying data in either direction
    /// but stays open; connections made later work.
    pub fn stall_open(&self) {
        self.stalls.send_modify(|stalls| *stalls += 1);
    }

    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
