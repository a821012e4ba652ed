#!/usr/bin/env python3
"""Node A's side of the network-namespace end-to-end test (node B runs
deploy/compose/demo-app.py).

  netns_app.py call
      Node A's app: one line on stdin per request, "SOCKET MESSAGE".  It
      connects to the unix socket (peerproxy's outbound for a peer), sends
      MESSAGE, half-closes and reads the answer until EOF.  Prints
      "ok <answer>" or "fail <reason>" per line.

  netns_app.py dial HOST PORT
      Tries a direct TCP connection; prints "connected" or "refused <why>".

  netns_app.py peek HOST PORT CHAIN KEY CAFILE
      A TLS client with the given client chain and key that trusts CAFILE
      only (no hostname check, as for Swaptacular peers); prints the
      server leaf as PEM.
"""

import functools
import importlib.machinery
import importlib.util
import os
import socket
import ssl
import sys


@functools.lru_cache(maxsize=None)
def _demo_app():
    """deploy/compose/demo-app.py as a module: its client is the one the
    compose demo runs."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "deploy", "compose", "demo-app.py")
    loader = importlib.machinery.SourceFileLoader("demo_app", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def call_one(path, message):
    try:
        answer = _demo_app().request(path, message)
    except OSError as e:
        return "fail %s" % e
    if not answer:
        return "fail empty answer"
    return "ok " + answer.decode("utf-8", "replace")


def call():
    for line in sys.stdin:
        path, _, message = line.rstrip("\n").partition(" ")
        print(call_one(path, message), flush=True)


def dial(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("connected")
    except OSError as e:
        print("refused %s" % e)


def peek(host, port, chain, key, cafile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(cafile)
    ctx.load_cert_chain(chain, key)
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    print(ssl.DER_cert_to_PEM_cert(der), end="")


def main(argv):
    if argv[:1] == ["call"]:
        call()
    elif argv[:1] == ["dial"]:
        dial(argv[1], int(argv[2]))
    elif argv[:1] == ["peek"]:
        peek(argv[1], int(argv[2]), *argv[3:6])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
