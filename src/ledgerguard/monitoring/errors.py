"""Errors of the local monitoring stack: each message names the fix."""

from ledgerguard.errors import LedgerGuardError


class MonitoringError(LedgerGuardError):
    """Base class of everything that can go wrong rendering, starting or probing monitoring."""


class BinaryNotFound(MonitoringError):
    """Prometheus, promtool or mysqld-exporter is not installed."""


class PortInUse(MonitoringError):
    """Another process answers on a port one of our monitoring processes needs."""


class ProcessStartError(MonitoringError):
    """A process died or did not answer in time; the message carries the tail of its log."""


class ConfigError(MonitoringError):
    """A rendered configuration is invalid (promtool refused it) or cannot be written."""
