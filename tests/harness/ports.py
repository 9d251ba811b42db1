"""Free ports on 127.0.0.1 for the processes and servers the harness starts."""
import socket


def free_port(kind=socket.SOCK_STREAM):
    """A port the kernel says is free on 127.0.0.1 now (TCP, or UDP with socket.SOCK_DGRAM).
    Free when asked, not reserved: bind it soon."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
