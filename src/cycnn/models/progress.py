"""Console progress of ``fit``: a live bar on a terminal, one line per epoch otherwise."""
import sys
import time

__all__ = ["Progress", "fmt_time"]


class Progress:
    """Per-epoch console output of ``fit``.

    verbose=1 on a terminal: a live single-line bar rewritten with '\\r', then the epoch summary.
    verbose=1 when stdout is not a terminal, or verbose=2: the epoch summary only.
    """

    def __init__(self, verbose, epochs, n_batches):
        self.stream = sys.stdout  # looked up now, so redirections (and pytest's capsys) apply
        isatty = getattr(self.stream, "isatty", None)
        self.live = verbose == 1 and bool(isatty and isatty())
        self.quiet = verbose == 0
        self.epochs = epochs
        self.n_batches = n_batches
        self._last = 0.0

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def start(self, epoch):
        self.epoch = epoch
        self.t0 = time.perf_counter()
        self._last = 0.0

    def update(self, done, seen, loss, acc):
        if not self.live:
            return
        now = time.perf_counter()
        if done < self.n_batches and now - self._last < 0.1:
            return
        self._last = now
        elapsed = now - self.t0
        width = 25
        filled = width * done // self.n_batches
        bar = "=" * filled + (">" if filled < width else "") + "." * (width - filled - 1)
        eta = elapsed / done * (self.n_batches - done) if done else 0.0
        text = (f"\rEpoch {self.epoch + 1}/{self.epochs} {done:>{len(str(self.n_batches))}}/"
                f"{self.n_batches} [{bar}] ETA {fmt_time(eta)} - loss {loss:.4f}")
        if acc is not None:
            text += f" - accuracy {acc:.4f}"
        text += f" - {seen / max(elapsed, 1e-9):,.0f} img/s"
        self._write(text + "\033[K")

    def end(self, logs):
        if self.quiet:
            return
        parts = [f"Epoch {self.epoch + 1}/{self.epochs}"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                parts.append(f"{key} {logs[key]:.4f}")
        parts.append(f"{logs['time']:.1f}s")
        parts.append(f"{logs['images_per_sec']:,.0f} img/s")
        line = " - ".join(parts)
        self._write(f"\r{line}\033[K\n" if self.live else line + "\n")


def fmt_time(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"
