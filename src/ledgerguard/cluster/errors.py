"""Errors of the local cluster: each message names the fix."""

from ledgerguard.errors import LedgerGuardError


class ClusterError(LedgerGuardError):
    """Base class of everything that can go wrong starting, stopping or wiring the servers."""


class BinaryNotFound(ClusterError):
    """A server binary is not installed."""


class PortInUse(ClusterError):
    """Another process answers on a port one of our servers needs."""


class ServerStartError(ClusterError):
    """A server process died or did not answer in time; the message carries its error log tail."""


class DatadirMismatch(ClusterError):
    """The data directory was made by another server version (or is not a MariaDB datadir)."""


class AccessDenied(ClusterError):
    """The configured credentials do not open the server."""


class ReplicationError(ClusterError):
    """The replica cannot follow the primary."""


class HeartbeatError(ClusterError):
    """The heartbeat cannot be written (event scheduler disabled at server start)."""
