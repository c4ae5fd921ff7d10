"""Keras 3's progress bar.

    Epoch 1/2
    469/469 ━━━━━━━━━━━━━━━━━━━━ 5s 9ms/step - accuracy: 0.9713 - loss: 0.0951

verbose=1 redraws one line in place (``\\r``) when the output is interactive (a terminal, Jupyter,
PyCharm) -- at most every 0.05 s in a terminal and every 0.5 s in a notebook so a long epoch never
floods the browser; when the output is a file or a pipe only the finished line of each epoch is
written. verbose=2 writes one line per epoch: ``469/469 - 5s - 9ms/step - accuracy: ... - loss: ...``.
Values print as ``%.4f`` when |v| > 1e-3, else ``%.4e``; the ETA replaces the elapsed time while the
epoch runs.
"""
import math
import os
import sys
import time

__all__ = ["Progbar"]

_BAR = "\u2501"  # ━


def _interactive(stream):
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return _in_notebook() or "PYCHARM_HOSTED" in os.environ


def _in_notebook():
    """True inside a Jupyter/Colab kernel (not merely when ipykernel was imported, as
    nbclient or a test runner may do)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:   # an IPython too broken to ask is no notebook
        return False
    return getattr(shell, "kernel", None) is not None


def format_value(value):
    """Keras's metric formatting: 4 decimals, scientific below 1e-3 in magnitude."""
    value = float(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def format_time_per_step(seconds, unit_name="step"):
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def format_eta(seconds):
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


class Progbar:
    """Progress bar for ``target`` steps (None if unknown).

    ``update(current, values)`` takes the step count and ``[(name, value)]`` pairs that are shown
    as given (the training loop passes running averages). ``stream`` defaults to sys.stdout at the
    time of each write (so pytest's capsys and redirect_stdout see it)."""

    def __init__(self, target, width=20, verbose=1, interval=None, unit_name="step", stream=None,
                 color=None):
        if target is not None and (not isinstance(target, int) or target < 0):
            raise ValueError(f"Progbar: target must be a non-negative int or None; got {target!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"Progbar: verbose must be 0, 1 or 2; got {verbose!r}")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.unit_name = unit_name
        self._stream = stream
        out = self.stream
        self._dynamic = _interactive(out)
        self._color = self._dynamic if color is None else bool(color)
        if interval is None:
            interval = 0.5 if _in_notebook() else 0.05
        self.interval = interval
        self._values = {}
        self._start = time.perf_counter()
        self._last_update = 0.0
        self._prev_width = 0
        self._current = 0

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stdout

    def _time_per_step(self, current, now):
        return (now - self._start) / current if current else 0.0

    def update(self, current, values=None, finalize=None):
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or ():
            self._values[name] = value
        self._current = current
        if self.verbose == 0:
            return
        now = time.perf_counter()
        if self.verbose == 2 or not self._dynamic:
            if finalize:
                self._write(self._line(current, now, finalize, semi=(self.verbose == 2)) + "\n")
            return
        if not finalize and now - self._last_update < self.interval:
            return
        line = self._line(current, now, finalize, semi=False)
        visible = len(_strip_ansi(line))
        pad = " " * max(self._prev_width - visible, 0)
        self._write("\r" + line + pad + ("\n" if finalize else ""))
        self._prev_width = visible
        self._last_update = now

    def add(self, n, values=None):
        self.update(self._current + n, values)

    def _write(self, text):
        out = self.stream
        out.write(text)
        out.flush()

    def _counter(self, current):
        if self.target is None or self.target <= 0:
            return "%7d/Unknown" % current
        digits = int(math.log10(self.target)) + 1
        return f"%{digits}d/%d" % (current, self.target)

    def _line(self, current, now, finalize, semi):
        elapsed = now - self._start
        per_step = self._time_per_step(current, now)
        metrics = "".join(f" - {k}: {format_value(v)}" for k, v in self._values.items())
        counter = self._counter(current)
        if semi:
            return f"{counter} - {elapsed:.0f}s - {format_time_per_step(per_step, self.unit_name)}{metrics}"
        bar = counter
        if self.target:
            done = int(self.width * min(current / self.target, 1.0))
            if self._color:
                bar = (f"\x1b[1m{counter}\x1b[0m " + (f"\x1b[32m{_BAR * done}\x1b[0m" if done else "")
                       + f"\x1b[37m{_BAR * (self.width - done)}\x1b[0m")
            else:
                # plain text (log files): the remaining part is blank instead of grey
                bar = f"{counter} {_BAR * done}{' ' * (self.width - done)}"
        if self.target and not finalize:
            clock = format_eta(per_step * (self.target - current))
        else:
            clock = f"{elapsed:.0f}s"
        if self._color:
            clock = f"\x1b[1m{clock}\x1b[0m"
        return f"{bar} {clock} {format_time_per_step(per_step, self.unit_name)}{metrics}"


def _strip_ansi(text):
    out, i = [], 0
    while i < len(text):
        if text[i] == "\x1b":
            j = text.find("m", i)
            i = j + 1 if j >= 0 else len(text)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
