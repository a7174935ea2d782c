"""What long work is doing, for the person waiting: phases, layer i/n, kernel compiles.

The library reports to a :class:`Progress` (the base class ignores everything, so library
calls stay silent); the CLI passes a :func:`reporter`: a Rich progress display on stderr when
stderr is a terminal, else plain timestamped lines on stderr, at most one every few seconds
and none at all for work that ends within ~2 s. stdout is never touched.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Receives progress from long library calls; this base class ignores it."""

    def phase(self, text: str, total: int = 0) -> None:
        """A new phase (``total`` items to go, 0 when not counted)."""

    def step(self, done: int, label: str) -> None:
        """``done`` items of the phase are finished; ``label`` names the one now running."""

    def compiling(self, kernel: str | None, cached: bool = True) -> None:
        """numba started compiling ``kernel`` (None: it finished); ``cached``: the result
        goes to the on-disk cache (so later runs skip it)."""

    def compiled_ahead(self, kernels: list[str]) -> None:
        """A helper process compiled ``kernels`` for this work (:mod:`cnncalc.ahead`)."""

    def close(self) -> None:
        """The work is over (also on errors)."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


SILENT = Progress()


def compile_note(kernel: str, cached: bool) -> str:
    when = "first use, cached afterwards" if cached else "kernel cache off: every run"
    return f"compiling {kernel} ({when})"


class _State(Progress):
    """The current phase, item and compile, shared by both displays."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phase_text, self.total, self.done, self.label = "", 0, 0, ""
        self.kernel: str | None = None
        self.cached = True
        self.kernel_since = 0.0
        self.version = 0  # bumped on every change

    def phase(self, text: str, total: int = 0) -> None:
        with self.lock:
            self.phase_text, self.total, self.done, self.label = text, total, 0, ""
            self.version += 1
        self.changed()

    def step(self, done: int, label: str) -> None:
        with self.lock:
            self.done, self.label = done, label
            self.version += 1
        self.changed()

    def compiling(self, kernel: str | None, cached: bool = True) -> None:
        with self.lock:
            self.kernel, self.cached = kernel, cached
            self.kernel_since = time.monotonic()
            self.version += 1
        self.changed()

    def changed(self) -> None:
        pass

    def describe(self) -> str:
        """``phase: item i/n label — compiling …`` (without the phase when ``with_phase``)."""
        parts = [self.phase_text]
        if self.total:
            parts.append(f"{min(self.done + 1, self.total)}/{self.total}")
        if self.label:
            parts.append(self.label)
        text = " ".join(p for p in parts if p)
        if self.kernel is not None:
            text += f" — {compile_note(self.kernel, self.cached)}"
        return text


class LogProgress(_State):
    """Plain timestamped lines: the first after ``delay`` seconds, then at most one every
    ``interval`` seconds, and only when something changed (or every ``heartbeat`` seconds
    while nothing does, e.g. during a long compile)."""

    def __init__(
        self,
        stream: TextIO,
        delay: float = 2.0,
        interval: float = 5.0,
        heartbeat: float = 30.0,
        clock=time.monotonic,
    ) -> None:
        super().__init__()
        self.stream, self.delay, self.interval, self.heartbeat = stream, delay, interval, heartbeat
        self.clock = clock
        self.start = clock()
        self.last_line = -1e9
        self.written = -1  # state version of the last line
        self.lines = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._tick, name="cnncalc-progress", daemon=True)
        self.thread.start()

    def _tick(self) -> None:
        while not self.stop.wait(0.5):
            self.poll()

    def poll(self) -> None:
        """Write a line if one is due (called by the ticker thread; public for tests)."""
        now = self.clock()
        with self.lock:
            if now - self.start < self.delay or now - self.last_line < self.interval:
                return
            if self.version == self.written and now - self.last_line < self.heartbeat:
                return
            text = self.describe()
            if self.kernel is not None:
                text += f", {now - self.kernel_since:.0f} s"
            self.written, self.last_line = self.version, now
        self.write(text)

    def write(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        try:
            self.stream.write(f"cnncalc: {stamp} {text}\n")
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed: progress is not worth failing for
            pass
        self.lines += 1

    def close(self) -> None:
        self.stop.set()
        if self.thread is not threading.current_thread():
            self.thread.join()
        if self.lines:
            self.write(f"done in {self.clock() - self.start:.1f} s")


class RichProgress(_State):
    """A transient Rich display on a terminal's stderr: spinner, phase, bar, i/n, elapsed."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.display = Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[phase]}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=True,
            refresh_per_second=4,
        )
        self.task = self.display.add_task("", total=None, phase="")
        self.display.start()

    def changed(self) -> None:
        with self.lock:
            label = self.label
            if self.kernel is not None:
                note = compile_note(self.kernel, self.cached)
                label = f"{label} — {note}" if label else note
            self.display.update(
                self.task,
                phase=self.phase_text,
                description=label,
                total=self.total or None,
                completed=self.done,
            )

    def close(self) -> None:
        self.display.stop()


def reporter(quiet: bool = False, stream: TextIO | None = None) -> Progress:
    """The CLI's display: none with ``quiet``; Rich on a terminal; log lines otherwise."""
    if quiet:
        return SILENT
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return RichProgress(stream)
    return LogProgress(stream)
