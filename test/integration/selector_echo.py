"""A single-threaded selector echo server, run as its own process by the
soak test so that thousands of connections cost neither a thread each nor
descriptors of the test process.  Prints its port, then serves until
stdin closes."""

import selectors
import socket
import sys


def main():
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "listen")
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    print(listener.getsockname()[1], flush=True)
    while True:
        for key, _ in sel.select():
            if key.data == "stdin":
                return
            if key.data == "listen":
                while True:
                    try:
                        c, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, "conn")
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                c.close()
                continue
            c.setblocking(True)  # small replies: a blocking send is fine
            c.sendall(data)
            c.setblocking(False)


if __name__ == "__main__":
    main()
