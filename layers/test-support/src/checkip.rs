//! Stand-ins for the public-IP service: [`CheckIp`] answers at once (or never),
//! [`GatedCheckIp`] holds requests until the test lets them through.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Semaphore;

use crate::http::{Request, Response, serve_http};

/// A stand-in for the public-IP service: answers every request with a status and the address
/// as text, and records the requests (for the propagated trace headers).
#[derive(Debug)]
pub struct CheckIp {
    /// Its URL, `http://127.0.0.1:<port>/`.
    pub url: String,
    /// Every request received so far.
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl CheckIp {
    /// A service answering every request with `status` ([`Response::public_ip`]).
    pub async fn start(status: u16) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let address = serve_http(move |request| {
            seen.lock().expect("lock").push(request);
            async move { Some(Response::public_ip(status)) }
        })
        .await;
        Self {
            url: format!("http://{address}/"),
            requests,
        }
    }

    /// A service that accepts connections and reads requests but never answers.
    pub async fn hanging() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let address = serve_http(move |request| {
            seen.lock().expect("lock").push(request);
            async move {
                // Holds the connection open without answering.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                None
            }
        })
        .await;
        Self {
            url: format!("http://{address}/"),
            requests,
        }
    }
}

/// A public-IP stand-in that holds every request until [`GatedCheckIp::release`]: invocations
/// stay in flight for as long as the test wants, whatever the machine's speed.
#[derive(Debug)]
pub struct GatedCheckIp {
    /// Its URL, `http://127.0.0.1:<port>/`.
    pub url: String,
    /// Requests held right now.
    pub waiting: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl GatedCheckIp {
    /// A stand-in holding every request.
    pub async fn start() -> Self {
        Self::holding(|_| true).await
    }

    /// A stand-in that holds only the requests `hold` picks, and answers the others at once.
    pub async fn holding(hold: impl Fn(&Request) -> bool + Clone + Send + Sync + 'static) -> Self {
        let gate = Arc::new(Semaphore::new(0));
        let waiting = Arc::new(AtomicUsize::new(0));
        let (g, w) = (gate.clone(), waiting.clone());
        let address = serve_http(move |request| {
            let (gate, waiting) = (g.clone(), w.clone());
            let held = hold(&request);
            async move {
                if held {
                    waiting.fetch_add(1, Ordering::SeqCst);
                    gate.acquire().await.ok()?.forget();
                    waiting.fetch_sub(1, Ordering::SeqCst);
                }
                Some(Response::public_ip(200))
            }
        })
        .await;
        Self {
            url: format!("http://{address}/"),
            waiting,
            gate,
        }
    }

    /// Lets `count` held (or future) requests through.
    pub fn release(&self, count: usize) {
        self.gate.add_permits(count);
    }

    /// Requests held right now.
    pub fn held(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}
