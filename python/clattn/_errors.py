"""Exceptions carrying the library's own message (clattn_last_error)."""


class ClattnError(RuntimeError):
    """A clattn call failed; .status is the clattn_status name, the message
    is clattn_last_error's text."""

    def __init__(self, status, message):
        self.status = status
        super().__init__(f"{message} [{status}]" if message else status)


class InvalidArgument(ClattnError, ValueError):
    """The library refused an argument (CLATTN_ERR_INVALID_ARGUMENT)."""


class Unsupported(ClattnError):
    """The device cannot run this problem (CLATTN_ERR_UNSUPPORTED)."""


def raise_for(status_code, message):
    from ._native import STATUS_NAMES
    name = STATUS_NAMES.get(status_code, f"clattn status {status_code}")
    cls = {1: InvalidArgument, 2: Unsupported}.get(status_code, ClattnError)
    raise cls(name, message)
