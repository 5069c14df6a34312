"""What a stranger can make the IVR hold: its RSS before and after two floods (issue 29), sent
over loopback only and bounded in count: 5,000 out-of-dialog OPTIONS, each with a unique
10 KB branch; then one answered call re-INVITEd 2,000 times with 30 KB branches, each 200
ACKed as a caller would. Prints figures, no pass or fail.
usage: python3 bench/strangers_rss.py IVR_BINARY   (from the repository root it was built from)"""
import os, random, socket, subprocess, sys, tempfile, time

binary = sys.argv[1]
def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])  # KiB

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

port = free_port()
tmp = tempfile.mkdtemp()
users = os.path.join(tmp, "users.toml")
src = "sip-config/users.example.toml" if os.path.exists("sip-config/users.example.toml") else "sip-config/users.toml"
open(users, "w").write(open(src).read())
env = dict(os.environ, IVR_SIP__LISTEN=f"127.0.0.1:{port}", IVR_RTP__PORTS="40000-40099",
           IVR_DIRECTORY__USERS=users, IVR_DIRECTORY__PIN_KEY_FILE=os.path.join(tmp, "pin.key"), RUST_LOG="warn")
ivr = subprocess.Popen([binary], env=env, stderr=open(os.path.join(tmp, "log"), "w"))
time.sleep(1.5)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sock.bind(("127.0.0.1", 0)); sock.settimeout(0.5)
me = "127.0.0.1:%d" % sock.getsockname()[1]
target = ("127.0.0.1", port)
def msg(method, branch, callid, totag="", cseq=1, body=""):
    ct = "Content-Type: application/sdp\r\n" if body else ""
    return (f"{method} sip:ivr@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n"
            f"From: <sip:flood@127.0.0.1>;tag=f\r\nTo: <sip:ivr@127.0.0.1>{totag}\r\nCall-ID: {callid}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:flood@{me}>\r\nMax-Forwards: 70\r\n{ct}Content-Length: {len(body)}\r\n\r\n{body}").encode()
sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n"
def drain():
    try:
        while True: sock.recvfrom(65536)
    except socket.timeout: pass
base = rss(ivr.pid)
# Flood 1: 5,000 out-of-dialog OPTIONS, each with a unique 10 KB branch.
for i in range(5000):
    sock.sendto(msg("OPTIONS", "%d-" % i + "o" * 10000, "opt-%d" % i), target)
    if i % 200 == 0: drain()
drain(); time.sleep(1)
after_options = rss(ivr.pid)
# Flood 2: one answered call, then 2,000 re-INVITEs with 30 KB branches (sent over UDP they
# must fit a datagram: 30 KB does).
sock.sendto(msg("INVITE", "call1", "call-1", body=sdp), target)
to = None
deadline = time.time() + 5
while time.time() < deadline and to is None:
    try:
        data, _ = sock.recvfrom(65536)
    except socket.timeout:
        continue
    text = data.decode(errors="replace")
    if text.startswith("SIP/2.0 200"):
        to = [l for l in text.split("\r\n") if l.lower().startswith("to:")][0][3:].strip()
assert to, "the call was not answered"
ack = msg("ACK", "ack1", "call-1", cseq=1).replace(b"To: <sip:ivr@127.0.0.1>", b"To: " + to.encode())
sock.sendto(ack, target)
time.sleep(0.5)
answered = 0
for i in range(2000):
    cseq = 2 + i
    m = msg("INVITE", "%d-" % i + "r" * 30000, "call-1", cseq=cseq, body=sdp).replace(b"To: <sip:ivr@127.0.0.1>", b"To: " + to.encode())
    sock.sendto(m, target)
    # Wait for its final answer and ACK a 200, as a caller that re-INVITEs would.
    deadline = time.time() + 2
    while time.time() < deadline:
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            break
        head = data[:200].decode(errors="replace")
        if head.startswith("SIP/2.0 1"):
            continue
        if head.startswith("SIP/2.0 200"):
            answered += 1
            a = msg("ACK", "ack%d" % cseq, "call-1", cseq=cseq).replace(b"To: <sip:ivr@127.0.0.1>", b"To: " + to.encode())
            sock.sendto(a, target)
        break
drain(); time.sleep(1)
after_reinvites = rss(ivr.pid)
ivr.kill(); ivr.wait(10)
print(f"{binary}: RSS at start {base/1024:.1f} MiB; +{(after_options-base)/1024:.1f} MiB after 5,000 OPTIONS with 10 KB branches; +{(after_reinvites-after_options)/1024:.1f} MiB more after 2,000 re-INVITEs with 30 KB branches ({answered} answered 200)")
