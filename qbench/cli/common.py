"""What the commands share: the parser that fails in one line, argument types, shared flags, results loading."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (what was wrong, what is accepted) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def whole(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


def thread_list(text: str) -> str:
    """An argparse type: thread counts ``N[,N...]``, each a whole number >= 1, as asv's environment wants them."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"expected thread counts like 1,4,16 (whole numbers >= 1), got {text!r}")
    return ",".join(str(n) for n in sorted({int(p) for p in parts}))


def time_factor(text: str) -> float:
    """An argparse type: a time ratio above 1 (``--factor``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time ratio above 1 such as 1.10, got {text!r}") from None
    if not value > 1.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a time ratio above 1 such as 1.10, got {text}")
    return value


def comma_list(text: str) -> list[str]:
    """An argparse type: ``a,b,c`` -> ``["a", "b", "c"]``, blanks dropped."""
    return [p.strip() for p in text.split(",") if p.strip()]


def add_selection(parser: argparse.ArgumentParser) -> None:
    """``-b/--bench`` and ``--quick``: which benchmarks a sweep runs."""
    parser.add_argument("-b", "--bench", metavar="REGEX", help="only benchmarks whose name matches REGEX")
    parser.add_argument("--quick", action="store_true", help="the reduced grid and few repeats (a few minutes)")


def add_machine(parser: argparse.ArgumentParser) -> None:
    """``--machine``: the asv machine a sweep files its results under, or reads them from."""
    parser.add_argument(
        "--machine", help="asv machine name (default: this host's name; when reading results, the only one there)"
    )


def add_out(parser: argparse.ArgumentParser, default: str | None, what: str = "report folder") -> None:
    """``--out``: the folder a command writes its page to."""
    text = f"{what} (default: %(default)s)" if default else what
    parser.add_argument("--out", default=default, help=text)


def fail(message: str, code: int = 1) -> int:
    """Print ``qbench: error: message`` on stderr; return the exit status."""
    print(f"qbench: error: {message}", file=sys.stderr)
    return code


def load(results_dir: Path, machine: str | None, several: bool = False):
    """(results of one machine, its name); files skipped while reading are named on stderr.

    Raises ResultsError when there are none, or several machines, none was chosen and ``several`` is False.
    """
    from qbench.analysis.results import ResultsError, load_results

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load_results(results_dir, machine=machine)
    for w in caught:
        print(f"qbench: warning: {w.message}", file=sys.stderr)
    machines = sorted(frame["machine"].unique())
    if machine is None and len(machines) > 1 and not several:
        raise ResultsError(f"results hold several machines ({', '.join(machines)}); pick one with --machine")
    return frame, machine or machines[0]


def models_beside(out: Path, machine: str) -> tuple[dict, ...]:
    """``model.json`` of every ``qbench model`` run on ``machine`` whose folder sits beside ``out``
    (``reports/model-NAME`` beside ``reports/latest``): the main page leads with their verdicts."""
    import json

    found = []
    for path in sorted(Path(out).resolve().parent.glob("model-*/model.json")):
        try:
            doc = json.loads(path.read_text())
            if doc.get("machine_name") == machine and doc["variants"] and doc["verdict"]:
                found.append(doc)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            print(f"qbench: warning: skipping {path}: not a model.json of qbench model", file=sys.stderr)
    return tuple(found)


def write_report(frame, info: dict, out: Path, commit: str | None) -> int:
    """Build one machine's report into ``out``; the exit status."""
    from qbench.report import build_report

    models = models_beside(out, str(frame["machine"].iloc[0]))
    try:
        index = build_report(frame, info, out, commit=commit, models=models)
    except ValueError as exc:
        return fail(str(exc))
    print(f"wrote {index}")
    return 0


def under_root(root: Path, path: str) -> Path:
    """``path`` as given when absolute, else relative to the checkout ``root``."""
    return Path(path) if Path(path).is_absolute() else root / path
