"""Loaded by subprocesses the tests start (PYTHONPATH): any network connection fails loudly."""

import socket


class NetworkBlocked(RuntimeError):
    pass


def _blocked(*args, **kwargs):
    raise NetworkBlocked(f"network access attempted in a test: {args!r}")


_original_connect = socket.socket.connect


def _connect(self, address):
    if self.family == getattr(socket, "AF_UNIX", None):
        return _original_connect(self, address)
    _blocked(address)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect
socket.create_connection = _blocked
socket.getaddrinfo = _blocked
