//! Upstream host names → addresses, resolved off the hot path: once before the workers start
//! and then periodically by the coordinator, which sends a fresh [`AddrTable`] to every worker
//! when it changes. A worker only ever looks addresses up in its table.

use std::net::{IpAddr, SocketAddr};

use crate::config::Snapshot;

/// `(host, port)` → the address to connect to. A gateway talks to a handful of upstreams, so
/// a linear scan (no hashing, no key allocation per request) is the fastest lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrTable(Vec<(String, u16, SocketAddr)>);

impl AddrTable {
    pub fn get(&self, host: &str, port: u16) -> Option<SocketAddr> {
        self.0
            .iter()
            .find(|(h, p, _)| *p == port && h == host)
            .map(|(_, _, a)| *a)
    }

    fn insert(&mut self, host: &str, port: u16, addr: SocketAddr) {
        self.0.push((host.to_string(), port, addr));
    }
}

/// Resolves every endpoint of `snap`, keeping a previous address when a lookup fails (a DNS
/// hiccup must not take a provider away). Blocking: call it on the coordinator or at startup.
pub fn resolve(snap: &Snapshot, previous: &AddrTable) -> (AddrTable, Vec<String>) {
    let mut table = AddrTable::default();
    let mut errors = Vec::new();
    for e in snap.endpoints() {
        if table.get(&e.host, e.port).is_some() {
            continue;
        }
        match lookup(&e.host, e.port) {
            Ok(addr) => table.insert(&e.host, e.port, addr),
            Err(why) => {
                if let Some(old) = previous.get(&e.host, e.port) {
                    table.insert(&e.host, e.port, old);
                }
                errors.push(format!("resolving {}:{}: {why}", e.host, e.port));
            }
        }
    }
    (table, errors)
}

#[allow(
    clippy::disallowed_methods,
    reason = "blocking DNS is allowed here: this runs on the coordinator or before workers start"
)]
fn lookup(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| "no addresses".to_string())
}
