//! Several IVR nodes behind Kamailio's dispatcher (`sip-config/kamailio/kamailio.cfg`, run as
//! shipped but for ports and paths), sharing one lockout in Redis: a guesser whose calls are
//! spread over both nodes is locked after five wrong PINs in all; a node that drains answers
//! its probes with 503, is taken out, and finishes its calls while new ones go to the other;
//! a node that dies loses no new call.

use crate::support;

use std::time::Duration;

use support::kamailio::Kamailio;
use support::keys::{is_root, pcap_scenario_from};
use support::redis::Redis;
use support::{free_port, project_dir, sipp_to, Ivr, TempDir};

struct Cluster {
    kamailio: Kamailio,
    port: u16,
    nodes: Vec<Ivr>,
    /// Each node's operations endpoint (metrics).
    http: Vec<u16>,
    redis: Redis,
    _dir: TempDir,
}

impl Cluster {
    fn start(tag: &str) -> Cluster {
        assert!(
            is_root(),
            "pcap replay needs a raw socket: run the tests as root (see README)"
        );
        let redis = Redis::start(&format!("{tag}-redis"));
        let url = redis.url();
        let env = [
            ("IVR_LOCKOUT__REDIS_URL", url.as_str()),
            ("IVR_LOCKOUT__KEY", "the key every node of the test shares"),
            ("IVR_SHUTDOWN__GRACE_S", "20"),
        ];
        let http = vec![free_port(), free_port()];
        let nodes: Vec<Ivr> = ["a", "b"]
            .iter()
            .zip(&http)
            .map(|(n, port)| {
                let listen = format!("127.0.0.1:{port}");
                let mut env = env.to_vec();
                env.push(("IVR_HTTP__LISTEN", &listen));
                Ivr::start(&format!("{tag}-node-{n}"), &env)
            })
            .collect();
        let dir = TempDir::new(tag);
        let list = dir.0.join("dispatcher.list");
        let lines: String = nodes
            .iter()
            .map(|n| format!("1 sip:{} 0 0\n", n.addr()))
            .collect();
        std::fs::write(&list, lines).unwrap();
        let port = free_port();
        let cfg = std::fs::read_to_string(project_dir().join("sip-config/kamailio/kamailio.cfg"))
            .unwrap()
            .replace("udp:0.0.0.0:5060", &format!("udp:127.0.0.1:{port}"))
            .replace("listen=tcp:0.0.0.0:5060\n", "")
            .replace("/usr/lib/x86_64-linux-gnu/kamailio/modules/", "@MODULES@")
            .replace("/run/kamailio", "@RUNDIR@")
            .replace("/etc/kamailio/dispatcher.list", list.to_str().unwrap());
        let kamailio = Kamailio::start(&dir, &cfg);
        // The first probes take both nodes in.
        std::thread::sleep(Duration::from_secs(3));
        Cluster {
            kamailio,
            port,
            nodes,
            http,
            redis,
            _dir: dir,
        }
    }

    /// `calls` calls at once through the dispatcher, each pressing `keys`.
    fn calls(&self, tag: &str, keys: &str, calls: usize) -> bool {
        let dir = TempDir::new(tag);
        self.run(
            &pcap_scenario_from(&dir, "dtmf_keys_proxied.xml", keys),
            calls,
        )
    }

    /// `calls` short calls at once through the dispatcher: answered, two seconds, hung up.
    fn short_calls(&self, calls: usize) -> bool {
        self.run(&support::scenario("call_hangup_proxied.xml"), calls)
    }

    /// Whether every one of `calls` SIPp calls of `scenario` through Kamailio went as written.
    fn run(&self, scenario: &std::path::Path, calls: usize) -> bool {
        let calls = calls.to_string();
        let target = format!("127.0.0.1:{}", self.port);
        let limits = ["-m", &calls, "-r", "20", "-l", &calls];
        sipp_to(&target, scenario, &limits).status.success()
    }

    fn count(&self, node: usize, needle: &str) -> usize {
        self.nodes[node].count(needle)
    }

    /// A node's `ivr_lockout_degraded`.
    fn degraded(&self, node: usize) -> f64 {
        let (_, page) = support::http::get(self.http[node], "/metrics");
        support::http::sample(&page, "ivr_lockout_degraded").unwrap_or(f64::NAN)
    }
}

const WRONG: &str = "wrong account number or PIN";
const LOCKED: &str = "account locked";

#[test]
fn a_guesser_spread_over_two_nodes_is_locked_after_five_wrong_pins_in_all() {
    let cluster = Cluster::start("cluster-lockout");
    assert!(
        cluster.calls("guesses", "12345#1111#", 5),
        "five wrong PINs"
    );
    let wrong = (cluster.count(0, WRONG), cluster.count(1, WRONG));
    assert_eq!(wrong.0 + wrong.1, 5, "{wrong:?}");
    assert!(
        wrong.0 >= 2 && wrong.1 >= 2,
        "both nodes took guesses: {wrong:?}"
    );
    // The right PIN, on either node, now hears the locked prompt.
    assert!(cluster.calls("right-pin", "12345#2468#", 2));
    let locked = (cluster.count(0, LOCKED), cluster.count(1, LOCKED));
    assert_eq!(locked, (1, 1), "each node refused one: {locked:?}");
    assert_eq!(
        cluster.count(0, "caller verified") + cluster.count(1, "caller verified"),
        0
    );
}

#[test]
fn a_draining_node_is_taken_out_and_finishes_its_calls_while_the_other_takes_new_ones() {
    let mut cluster = Cluster::start("cluster-drain");
    // A call on each node, ending with the IVR's own BYE some 15 s later (a wrong PIN).
    let held = std::thread::scope(|scope| {
        let long = scope.spawn(|| cluster.calls("held", "24680#0000#", 2));
        std::thread::sleep(Duration::from_secs(3));
        cluster.nodes[0].signal("TERM");
        cluster.nodes[0].wait_for_log("draining", Duration::from_secs(2));
        // Probes every 2 s: within two intervals the dispatcher has taken node a out.
        std::thread::sleep(Duration::from_secs(5));
        let before = cluster.count(0, "call offered");
        assert!(cluster.short_calls(4), "new calls all answered");
        assert_eq!(
            cluster.count(0, "call offered"),
            before,
            "none reached node a"
        );
        long.join().unwrap()
    });
    assert!(held, "the calls in progress finished, node a's too");
    let ended = cluster.nodes[0]
        .log_text()
        .lines()
        .filter(|l| l.contains("call ended") && l.contains("reason=\"server-bye\""))
        .count();
    assert_eq!(ended, 1, "node a ended its call with a BYE");
    let log = cluster.kamailio.log_text();
    assert!(log.contains("call "), "{log}");
    assert!(
        cluster.nodes[0]
            .wait_exit(Duration::from_secs(30))
            .is_some(),
        "node a stopped once its calls were done"
    );
}

#[test]
fn a_node_that_dies_is_routed_around_and_new_calls_land_on_the_survivor() {
    let mut cluster = Cluster::start("cluster-kill");
    assert!(cluster.short_calls(4), "both nodes answer at first");
    assert!(cluster.count(0, "call offered") >= 1 && cluster.count(1, "call offered") >= 1);
    cluster.nodes[0].signal("KILL");
    assert!(cluster.nodes[0].wait_exit(Duration::from_secs(5)).is_some());
    // At once: an INVITE sent to the dead node before its probe fails is failed over after
    // fr_timer (2 s); every call is answered by the survivor.
    let before = cluster.count(1, "call offered");
    assert!(cluster.short_calls(6), "no call lost to the dead node");
    assert_eq!(cluster.count(1, "call offered"), before + 6);
}

#[test]
fn logins_go_on_while_redis_is_down_the_outage_shows_and_counting_resumes_after() {
    let mut cluster = Cluster::start("cluster-redis");
    cluster.redis.stop();
    // The right PIN on each node: verified, though the lockout cannot reach Redis.
    assert!(
        cluster.calls("outage", "12345#2468#9", 2),
        "logins during the outage"
    );
    let verified = cluster.count(0, "caller verified") + cluster.count(1, "caller verified");
    assert_eq!(verified, 2);
    assert_eq!(
        cluster.count(0, WRONG) + cluster.count(1, WRONG),
        0,
        "no wrong PIN for an outage"
    );
    for node in 0..2 {
        assert_eq!(
            cluster.degraded(node),
            2.0,
            "node {node}: both counters count alone"
        );
        cluster.nodes[node].wait_for_log("shared lockout unreachable", Duration::from_secs(1));
    }
    cluster.redis.restart();
    // Past the 2 s back-off, a wrong PIN on each node is counted in Redis again.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(cluster.calls("after", "24680#0000#", 2));
    let keys = cluster.redis.cli(&["KEYS", "ivr:lockout:account:fail:*"]);
    assert_eq!(
        keys.lines().count(),
        1,
        "one account's failures, in Redis: {keys}"
    );
    let count = cluster
        .redis
        .cli(&["GET", keys.lines().next().unwrap().trim()]);
    assert_eq!(count.trim(), "2", "both nodes counted into it");
    for node in 0..2 {
        assert_eq!(cluster.degraded(node), 0.0, "node {node} is back on Redis");
    }
}

#[test]
fn a_crafted_route_set_does_not_make_the_dispatcher_relay_to_a_third_party() {
    let cluster = Cluster::start("cluster-relay");
    let victim = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let victim_port = victim.local_addr().unwrap().port();
    victim
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let attacker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let me = attacker.local_addr().unwrap();
    let kam = format!("127.0.0.1:{}", cluster.port);
    // In-dialog (a To tag), with the dispatcher's own record-route first, its parameter and
    // all, as any caller sees it, then the third party.
    let bye = format!(
        "BYE sip:x@127.0.0.1:{victim_port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrelay1;rport\r\nRoute: <sip:{kam};lr;ivr=node>, <sip:127.0.0.1:{victim_port};lr>\r\nFrom: <sip:a@{me}>;tag=a\r\nTo: <sip:b@127.0.0.1>;tag=b\r\nCall-ID: relay-1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    attacker.send_to(bye.as_bytes(), &kam).unwrap();
    let mut buf = [0u8; 4096];
    let start = std::time::Instant::now();
    let mut relayed = 0;
    while start.elapsed() < Duration::from_secs(2) {
        if victim.recv_from(&mut buf).is_ok() {
            relayed += 1;
        }
    }
    assert_eq!(
        relayed, 0,
        "the dispatcher relayed a stranger's BYE to a third party"
    );
    let (n, _) = attacker.recv_from(&mut buf).expect("an answer");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 403"), "{answer}");
}
