#!/usr/bin/env python3
"""Benchmark (figures, not a test): the server's resident memory after a
storm of hostile SIP datagrams from the trusted trunk's own address.

Starts `seatline demo` with its trunk set to this script's UDP socket (so
every datagram passes the source check and reaches the transaction layer and
the dialogs), places one real call through the HTTP API so a dialog exists,
then sends N datagrams: INVITEs with that call's Call-ID and new branches
(the old leak), in-dialog BYEs and re-INVITEs with wrong tags, CSeq at the
u32 limit, responses to nothing, and garbage. Prints VmRSS before, right
after, and after the transaction timers ran out, and the datagram rate.

Usage: scripts/bench-sip-hostile.py [N] [BINARY]   (default 200000, target/release/seatline or target/debug/seatline)
"""
import json, os, random, socket, subprocess, sys, tempfile, time, urllib.request

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
binary = sys.argv[2] if len(sys.argv) > 2 else ("target/release/seatline" if os.path.exists("target/release/seatline") else "target/debug/seatline")


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def post(url, body, token=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


trunk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
trunk.bind(("127.0.0.1", 0))
trunk.setblocking(False)
tport = trunk.getsockname()[1]
http, sip = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
d = tempfile.mkdtemp()
cfg = os.path.join(d, "seatline.toml")
with open(cfg, "w") as f:
    f.write(f'[sip]\nlisten = "127.0.0.1:{sip}"\ntrunk = "127.0.0.1:{tport}"\n')
proc = subprocess.Popen([binary, "demo", "--listen", f"127.0.0.1:{http}", "--data-dir", os.path.join(d, "data"), "--config", cfg],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    time.sleep(1.0)
    start_kib = rss_kib(proc.pid)
    dest = ("127.0.0.1", sip)
    rnd = random.Random(7)

    def msg(method, call_id, branch, from_tag, to_tag=None, cseq=1):
        to = f"<sip:12025550170@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
        return (f"{method} sip:12025550170@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{tport};branch=z9hG4bK{branch}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:666@127.0.0.1>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
                f"CSeq: {cseq} {method}\r\nContact: <sip:evil@10.9.9.9:5060>\r\nContent-Length: 0\r\n\r\n").encode()

    # One call that exists: an INVITE to a DID, which rings an agent nobody
    # answers; its Call-ID is the one the storm reuses.
    call_id = "storm-call@bench"
    trunk.sendto(msg("INVITE", call_id, "first", "t1"), dest)
    time.sleep(0.5)
    kinds = [
        lambda i: msg("INVITE", call_id, f"b{i}", "t1"),                          # same Call-ID, new branch
        lambda i: msg("BYE", call_id, f"y{i}", "wrong", "alsowrong"),             # wrong tags
        lambda i: msg("INVITE", call_id, f"r{i}", "wrong", "wrong", cseq=4294967295),
        lambda i: msg("OPTIONS", f"c{i}@x", f"o{i}", f"f{i}"),
        lambda i: f"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:{sip};branch=z9hG4bK{i}\r\nCall-ID: s{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:x@10.0.0.{i % 250}>\r\n\r\n".encode(),
        lambda i: bytes(rnd.getrandbits(8) for _ in range(64)),
    ]
    t0 = time.time()
    for i in range(N):
        data = kinds[i % len(kinds)](i)
        while True:
            try:
                trunk.sendto(data, dest)
                break
            except BlockingIOError:
                time.sleep(0.0005)
        if i % 64 == 0:
            try:
                while True:
                    trunk.recv(65535)
            except BlockingIOError:
                pass
            time.sleep(0.0002)
    sent_secs = time.time() - t0
    time.sleep(2.0)
    after_kib = rss_kib(proc.pid)
    # Server transactions end after 64*T1 (32 s): wait them out.
    time.sleep(35.0)
    settled_kib = rss_kib(proc.pid)
    print(f"binary: {binary}")
    print(f"datagrams: {N} in {sent_secs:.1f} s ({N / sent_secs:,.0f}/s)")
    print(f"server RSS: start {start_kib / 1024:.1f} MiB, right after {after_kib / 1024:.1f} MiB, after 37 s {settled_kib / 1024:.1f} MiB")
    print(f"growth: right after {(after_kib - start_kib) / 1024:+.1f} MiB, settled {(settled_kib - start_kib) / 1024:+.1f} MiB")
    print(f"server alive: {proc.poll() is None}")
finally:
    proc.terminate()
    proc.wait(timeout=10)
