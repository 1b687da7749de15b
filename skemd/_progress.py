"""A one-line progress bar with rate and ETA, for the command line."""

import sys
import time
from datetime import timedelta


class ProgressBar:
    """Progress over ``total`` problems, redrawn at most every ``interval`` s.

    Parameters
    ----------
    total : int
        Problems to solve in all.
    done : int, default=0
        Problems already solved (by an earlier, interrupted run); the rate
        and ETA count only this run's work.
    stream : file-like, default=None
        Where to draw; None is ``sys.stderr``.
    interval : float, default=0.2
        Least seconds between redraws.

    Examples
    --------
    >>> import io
    >>> from skemd._progress import ProgressBar
    >>> stream = io.StringIO()
    >>> bar = ProgressBar(100, done=40, stream=stream, interval=0)
    >>> bar.advance(60)
    >>> bar.close()
    >>> stream.getvalue().split("\\r")[-1].split("|")[0]
    '100% 100/100 problems '
    """

    def __init__(self, total, *, done=0, stream=None, interval=0.2):
        self.total = total
        self.done = done
        self.stream = sys.stderr if stream is None else stream
        self.interval = interval
        self._resumed = self._shown = done
        self._started = self._drawn = time.perf_counter()

    def advance(self, n):
        """Count ``n`` more solved problems; redraw if it is time."""
        self.done += n
        now = time.perf_counter()
        if now - self._drawn >= self.interval or self.done == self.total:
            self._drawn = now
            self._draw(now)

    def close(self):
        """Draw the final state and end the line."""
        if self._shown != self.done:
            self._draw(time.perf_counter())
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, now):
        self._shown = self.done
        elapsed = now - self._started
        rate = (self.done - self._resumed) / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = str(timedelta(seconds=round(left / rate))) if rate > 0 else "?"
        percent = 100 * self.done // max(1, self.total)
        self.stream.write(
            f"\r{percent:3d}% {self.done:,}/{self.total:,} problems | "
            f"{rate:,.0f} problems/s | ETA {eta}   "
        )
        self.stream.flush()
