"""The revision window: how far back the streaming scorer revises verdicts, and so how far
back it keeps each user's rows and the terminal history.

`revision_us` is the window itself (why the stream revises at all is in `state`'s docstring);
`kept_us` and `revision_days` follow from it. Its own module because both halves of the
state are sized by it: the user windows (`state.OnlineState`) and the terminal counts
(`terminal_counts.TerminalCounts`), neither of which should import the other for it.
"""

from __future__ import annotations

from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, US_PER_SECOND
from ledgerguard.settings.fraud import FraudParameters

_US_PER_DAY = SECONDS_PER_DAY * US_PER_SECOND


def revision_us(params: FraudParameters) -> int:
    """How far back from a user's newest row the stream revises verdicts: the longer of the
    velocity and structuring windows (a burst or group that grows changes its earlier members)."""
    return int(
        max(params.velocity_window_minutes * 60, params.structuring_window_hours * 3600)
        * US_PER_SECOND
    )


def kept_us(params: FraudParameters) -> int:
    """How far back from a user's newest row its rows are kept: the lookback of every row the
    stream may revise (plus a second: windows are cut at whole seconds), so the windows of
    those rows are the nightly run's, complete."""
    return int(params.lookback_days * _US_PER_DAY) + revision_us(params) + US_PER_SECOND


def revision_days(params: FraudParameters) -> int:
    """Whole days of `revision_us`, plus one: the terminal history kept for revised rows."""
    return -(-revision_us(params) // _US_PER_DAY) + 1
