#!/usr/bin/env python3
"""The compose demo's app: plain TCP, no TLS, no certificates.

  demo-app.py --name NAME [--bind ADDR] [--port 8080] [--node nodeN --every SECONDS]

Serves on 0.0.0.0:PORT: reads a request until the caller half-closes and
answers "NAME got <request>".  With --node, it also calls every other node
of /pki/nodes/nodes.json every SECONDS through peerproxy's socket for that
peer (/run/peerproxy/peers/<peer-id>.sock) and prints what came back.
It never learns that the bytes crossed mutual TLS on the way.
"""

import argparse
import json
import os
import socket
import sys
import threading
import time


def serve(name, bind, port):
    srv = socket.create_server((bind, port))
    print("%s: ready on port %d" % (name, port), flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=answer, args=(conn, name), daemon=True).start()


def answer(conn, name):
    with conn:
        conn.settimeout(10)
        data = b""
        try:
            while chunk := conn.recv(4096):
                data += chunk
            conn.sendall(b"%s got %s" % (name.encode(), data))
        except OSError:
            pass


def request(socket_path, message):
    """Send MESSAGE over the unix socket, half-close, return the whole
    answer (bytes); OSError when the connection fails or is reset."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    try:
        s.connect(socket_path)
        s.sendall(message.encode())
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
        return reply
    finally:
        s.close()


def call(socket_path, message):
    try:
        return request(socket_path, message).decode("utf-8", "replace") or "(no answer)"
    except OSError as e:
        return "(failed: %s)" % e


def call_peers(name, node, nodes_json, socket_dir, every):
    while True:
        try:
            with open(nodes_json) as f:
                nodes = json.load(f)
        except OSError as e:
            print("%s: cannot read %s: %s" % (name, nodes_json, e), flush=True)
            nodes = []
        for peer in nodes:
            if peer["name"] == node:
                continue
            path = os.path.join(socket_dir, peer["id"] + ".sock")
            reply = call(path, "hello from %s" % name)
            print("%s -> %s (%s): %s" % (name, peer["name"], peer["id"], reply), flush=True)
        time.sleep(every)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--bind", default="0.0.0.0", help="address to serve on")
    p.add_argument("--node", help="this node's name in nodes.json (enables calling)")
    p.add_argument("--every", type=float, default=5.0)
    p.add_argument("--nodes-json", default="/pki/nodes/nodes.json")
    p.add_argument("--socket-dir", default="/run/peerproxy/peers")
    args = p.parse_args(argv)
    if args.node:
        threading.Thread(target=call_peers, daemon=True,
                         args=(args.name, args.node, args.nodes_json, args.socket_dir,
                               args.every)).start()
    serve(args.name, args.bind, args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
