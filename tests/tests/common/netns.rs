//! Separate "hosts" on one machine for the replica tests: network
//! namespaces joined to the root namespace by veth pairs (needs root and
//! `ip` from iproute2; `tests/run-all.sh` installs it when missing).
//!
//! Host `i` of a [`Lab`] is the namespace `fwr-<pid>-<i>` with address
//! `10.<net>.<i>.2/24` on its end of the pair and `10.<net>.<i>.1` on the
//! root end (its default gateway); `<net>` comes from the test's pid, so two
//! runs at once do not collide. Two more addresses on the root namespace's
//! `lo` (label `lo:fwr<pid>`) stand for services every host reaches through
//! its gateway: [`Lab::service_ip`] 0 and 1 (the database, a webhook
//! receiver). [`Lab::partition`] blackholes one of them on one host only.
//!
//! Everything is removed on drop (also when the test panics): the
//! processes left in the namespaces, the namespaces (which takes their veth
//! pairs along) and the `lo` addresses. Leftovers of an earlier run that was
//! killed (its pid gone) are removed by [`Lab::new`] first.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Output};

/// Names of everything a lab creates start with this.
const PREFIX: &str = "fwr";

/// Network namespaces and addresses of one test run.
pub struct Lab {
    pid: u32,
    net: u8,
    hosts: usize,
}

impl Lab {
    /// `hosts` namespaces, each with a veth pair to the root namespace,
    /// plus the two service addresses; panics (never skips) when they
    /// cannot be made.
    pub fn new(hosts: usize) -> Self {
        assert!(hosts <= 200, "at most 200 hosts");
        clean_stale();
        let pid = std::process::id();
        let lab = Lab {
            pid,
            net: 200 + u8::try_from(pid % 50).expect("below 50"),
            hosts: 0,
        };
        let mut lab = lab;
        for i in 0..hosts {
            lab.add_host(i);
            lab.hosts = i + 1;
        }
        for k in 0..2 {
            let ip = lab.service_ip(k);
            ip_ok(&[
                "addr",
                "add",
                &format!("{ip}/32"),
                "dev",
                "lo",
                "label",
                &lab.lo_label(),
            ]);
        }
        lab
    }

    fn add_host(&self, i: usize) {
        let ns = self.ns(i);
        let (outer, inner) = (self.veth(i, 'h'), self.veth(i, 'n'));
        ip_ok(&["netns", "add", &ns]);
        ip_ok(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns,
        ]);
        ip_ok(&[
            "addr",
            "add",
            &format!("{}/24", self.gateway(i)),
            "dev",
            &outer,
        ]);
        ip_ok(&["link", "set", &outer, "up"]);
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns, "ip"];
            all.extend_from_slice(args);
            ip_ok(&all);
        };
        in_ns(&["link", "set", "lo", "up"]);
        in_ns(&[
            "addr",
            "add",
            &format!("{}/24", self.host_ip(i)),
            "dev",
            &inner,
        ]);
        in_ns(&["link", "set", &inner, "up"]);
        in_ns(&[
            "route",
            "add",
            "default",
            "via",
            &self.gateway(i).to_string(),
        ]);
    }

    /// The namespace name of host `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("{PREFIX}-{}-{i}", self.pid)
    }

    fn veth(&self, i: usize, side: char) -> String {
        format!("{PREFIX}{}{side}{i}", self.pid)
    }

    fn lo_label(&self) -> String {
        format!("lo:{PREFIX}{}", self.pid)
    }

    /// Host `i`'s own address (inside its namespace).
    pub fn host_ip(&self, i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, self.net, u8::try_from(i).expect("i"), 2))
    }

    /// The root namespace's end of host `i`'s link.
    pub fn gateway(&self, i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, self.net, u8::try_from(i).expect("i"), 1))
    }

    /// Service address `k` (0 or 1) in the root namespace, reachable from
    /// every host.
    pub fn service_ip(&self, k: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, self.net, 255, 1 + k))
    }

    /// Every address of the lab, as one CIDR (for a server's allow list).
    pub fn cidr(&self) -> String {
        format!("10.{}.0.0/16", self.net)
    }

    /// A command run inside host `i`'s namespace (`ip netns exec`, which
    /// execs it: the child's pid is the program's own).
    pub fn command(&self, i: usize, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(i)]).arg(program);
        c
    }

    /// Host `i` can no longer reach `ip` (a blackhole route): packets
    /// both ways are lost, the link stays up, every other peer still works.
    pub fn partition(&self, i: usize, ip: IpAddr) {
        ip_ok(&[
            "netns",
            "exec",
            &self.ns(i),
            "ip",
            "route",
            "add",
            "blackhole",
            &format!("{ip}/32"),
        ]);
    }

    /// Ends [`Lab::partition`].
    pub fn heal(&self, i: usize, ip: IpAddr) {
        ip_ok(&[
            "netns",
            "exec",
            &self.ns(i),
            "ip",
            "route",
            "del",
            "blackhole",
            &format!("{ip}/32"),
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        remove(self.pid);
    }
}

/// Removes whatever run `pid` made: processes in its namespaces, the
/// namespaces, veth ends left in the root namespace, `lo` addresses.
fn remove(pid: u32) {
    let tag = format!("{PREFIX}-{pid}-");
    for ns in list(&["netns", "list"]) {
        let name = ns.split_whitespace().next().unwrap_or_default().to_string();
        if !name.starts_with(&tag) {
            continue;
        }
        let pids = ip(&["netns", "pids", &name]);
        for p in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", p]).status();
        }
        let _ = ip(&["netns", "del", &name]);
    }
    let veth = format!("{PREFIX}{pid}");
    for line in list(&["-o", "link", "show"]) {
        // "7: fwr123h0@if6: <…"
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or_default();
        if name.strip_prefix(&veth).is_some_and(|rest| {
            rest.starts_with(['h', 'n']) && rest[1..].chars().all(|c| c.is_ascii_digit())
        }) {
            let _ = ip(&["link", "del", name]);
        }
    }
    let label = format!("lo:{PREFIX}{pid}");
    for line in list(&["-o", "-4", "addr", "show", "dev", "lo"]) {
        // "1: lo    inet 10.203.255.1/32 scope global lo:fwr123\       valid_lft …"
        // `-o` ends the label with a `\` that stands for the line break.
        let words: Vec<&str> = line
            .split_whitespace()
            .map(|w| w.trim_end_matches('\\'))
            .collect();
        if words.iter().any(|w| *w == label)
            && let Some(addr) = words.iter().skip_while(|w| **w != "inet").nth(1)
        {
            let _ = ip(&["addr", "del", addr, "dev", "lo"]);
        }
    }
}

/// Removes the leftovers of earlier runs whose process is gone (killed
/// before their drop ran).
fn clean_stale() {
    let mut pids: Vec<u32> = Vec::new();
    for line in list(&["netns", "list"]) {
        let name = line.split_whitespace().next().unwrap_or_default();
        if let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse().ok())
        {
            pids.push(pid);
        }
    }
    for line in list(&["-o", "-4", "addr", "show", "dev", "lo"]) {
        if let Some(pid) = line
            .split_whitespace()
            .find_map(|w| w.trim_end_matches('\\').strip_prefix("lo:fwr"))
            .and_then(|p| p.parse().ok())
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing the network lab of an earlier run (pid {pid})");
            remove(pid);
        }
    }
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `ip` ({e}): the replica tests need iproute2 and root \
             (tests/run-all.sh installs iproute2)"
        )
    })
}

/// Runs `ip ARGS`; panics with its stderr unless it succeeds.
fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {}: {} (the replica tests need root and network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn list(args: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(&ip(args).stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
