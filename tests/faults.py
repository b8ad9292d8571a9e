"""Fault tools for the reliability tests: a loopback TCP proxy that can drop a Bolt
connection right after the client sends COMMIT."""

from __future__ import annotations

import socket
import threading
import time

# A Bolt COMMIT message: chunk size 2, struct with no fields (0xB0), signature 0x12, end marker.
BOLT_COMMIT = b"\x00\x02\xb0\x12\x00\x00"


class CommitDroppingProxy:
    """Forwards 127.0.0.1:port to a Bolt server. When armed, the next COMMIT is forwarded to
    the server and then both sides are cut before the server's answer reaches the client."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.armed = threading.Event()
        self.dropped = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            cut = threading.Event()
            threading.Thread(
                target=self._pipe, args=(client, server, True, cut), daemon=True
            ).start()
            threading.Thread(
                target=self._pipe, args=(server, client, False, cut), daemon=True
            ).start()

    def _pipe(
        self, src: socket.socket, dst: socket.socket, upstream: bool, cut: threading.Event
    ) -> None:
        try:
            while data := src.recv(65536):
                if cut.is_set():
                    continue  # the server's answer to COMMIT is swallowed
                if upstream and self.armed.is_set() and BOLT_COMMIT in data:
                    self.armed.clear()
                    cut.set()
                    self.dropped += 1
                    dst.sendall(data)
                    time.sleep(0.5)  # the server commits; its SUCCESS is never relayed
                    for s in (src, dst):
                        s.shutdown(socket.SHUT_RDWR)
                        s.close()
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
