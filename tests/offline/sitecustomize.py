"""Loaded by subprocesses the tests start (PYTHONPATH): any network connection fails loudly,
except to 127.0.0.1, where the model servers the tests start themselves listen."""

import socket

LOOPBACK = "127.0.0.1"


class NetworkBlocked(RuntimeError):
    pass


def _blocked(*args, **kwargs):
    raise NetworkBlocked(f"network access attempted in a test: {args!r}")


_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_create_connection = socket.create_connection
_original_getaddrinfo = socket.getaddrinfo


def _loopback(sock, address):
    return sock.family == socket.AF_INET and isinstance(address, tuple) and address[0] == LOOPBACK


def _connect(self, address):
    if self.family == getattr(socket, "AF_UNIX", None) or _loopback(self, address):
        return _original_connect(self, address)
    _blocked(address)


def _connect_ex(self, address):
    if self.family == getattr(socket, "AF_UNIX", None) or _loopback(self, address):
        return _original_connect_ex(self, address)
    _blocked(address)


def _create_connection(address, *args, **kwargs):
    if isinstance(address, tuple) and address[0] == LOOPBACK:
        return _original_create_connection(address, *args, **kwargs)
    _blocked(address)


def _getaddrinfo(host, *args, **kwargs):
    if host == LOOPBACK:
        return _original_getaddrinfo(host, *args, **kwargs)
    _blocked(host)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.create_connection = _create_connection
socket.getaddrinfo = _getaddrinfo
