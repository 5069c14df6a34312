//! Every long-lived peer a test starts (the IVR, Kamailio, redis-server, baresip, linphonec,
//! SIPp, dnsmasq, tcpdump) runs in a process group of its own, killed whole when its guard drops:
//! when the test passes, fails or panics. Kamailio's worker children and the child of a
//! `timeout` wrapper go with their group. Each carries `PEER_OF_IVR_TESTS=1` in its environment so
//! that the test command can find and name any that escaped anyway.

use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, Output};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

pub const MARK: (&str, &str) = ("PEER_OF_IVR_TESTS", "1");

pub struct Peer {
    child: Option<Child>,
    group: Pid,
}

impl Peer {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Peer> {
        use std::os::unix::process::CommandExt;
        let child = cmd.process_group(0).env(MARK.0, MARK.1).spawn()?;
        let group = Pid::from_raw(child.id() as i32);
        Ok(Peer {
            child: Some(child),
            group,
        })
    }

    /// Waits for the peer to exit, collecting what it printed; what it left running in its
    /// group is killed.
    pub fn wait_with_output(mut self) -> std::io::Result<Output> {
        let output = self.child.take().expect("a live peer").wait_with_output();
        let _ = killpg(self.group, Signal::SIGKILL);
        output
    }
}

impl Deref for Peer {
    type Target = Child;

    fn deref(&self) -> &Child {
        self.child.as_ref().expect("a live peer")
    }
}

impl DerefMut for Peer {
    fn deref_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("a live peer")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = killpg(self.group, Signal::SIGKILL);
        if let Some(child) = &mut self.child {
            let _ = child.wait();
        }
    }
}
