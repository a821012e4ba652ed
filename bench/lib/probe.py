"""Probe an inbound listener with Python's ssl module (OpenSSL).

    probe.py PORT PEMDIR

PEMDIR holds the PEM files bench/lib/setup.sh makes.  Three attempts:

  full     node0's leaf + cross certificate: must be accepted, and the echo
           must come back; prints the TLS version and cipher suite;
  nocert   no client certificate: must be refused;
  nocross  node0's leaf without the cross certificate node1 issued: no path
           to node1's root, must be refused.

Each attempt prints one line, "ok ..." when it went as it must, "BAD ..."
when not.  Loopback only; every socket operation has a 5 s timeout.
"""

import socket
import ssl
import sys

TIMEOUT = 5


def attempt(port, pem, cert=None, key=None):
    """Return (answer bytes or None, tls version, cipher, error text)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=f"{pem}/client-ca.pem")
    if cert:
        ctx.load_cert_chain(certfile=cert, keyfile=key)
    version = cipher = None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
            with ctx.wrap_socket(raw) as s:
                version, cipher = s.version(), s.cipher()[0]
                s.sendall(b"Eping")
                data = b""
                while len(data) < 4:
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    data += chunk
                return data, version, cipher, None
    except (OSError, ssl.SSLError) as e:
        return None, version, cipher, f"{type(e).__name__}: {e}"


def main():
    port, pem = int(sys.argv[1]), sys.argv[2]
    data, version, cipher, err = attempt(
        port, pem, f"{pem}/client-chain.pem", f"{pem}/client-key.pem")
    if data == b"ping":
        print(f"ok full chain accepted: {version} {cipher} (as chosen for this "
              "probe client, which offers OpenSSL's default suite order), "
              "echo came back")
    else:
        print(f"BAD full chain: no echo ({err or data!r})")
    for name, cert in (("nocert", None), ("nocross", f"{pem}/client-leaf.pem")):
        data, _, _, err = attempt(port, pem, cert, f"{pem}/client-key.pem")
        if data == b"ping":
            print(f"BAD {name}: accepted (the echo came back)")
        else:
            why = (err or "closed without data").splitlines()[0][:160]
            print(f"ok {name} refused ({why})")


if __name__ == "__main__":
    main()
