"""The progress line written to stderr once a second: rewritten in place on a terminal, one
plain line per second otherwise (logs, pipes, CI)."""

import sys


class LiveLine:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.in_place = self.stream.isatty()
        self._shown = False

    def show(self, text: str) -> None:
        if self.in_place:
            self.stream.write("\r" + text + "\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """Ends the line rewritten in place, so what follows starts on its own line."""
        if self.in_place and self._shown:
            self.stream.write("\n")
            self.stream.flush()
        self._shown = False
