"""Numeric command-line values, checked when they are parsed: finite and in range, or one line.

`number(...)` is an argparse `type=`: `--rpm 0` stops at parsing with `error: argument --rpm:
must be a number > 0, got '0'` (fracdata.cli prints argparse errors as one `error:` line, exit 2),
instead of a limiter that waits forever, a deadline of 0 s that ends in a traceback, or a NaN
budget that compares false with every spend and so caps nothing. NaN and infinity are refused
everywhere (`float('nan')` parses, and every comparison with it is False).

`check_number(value, where, ...)` is the same test for a number read from a file (a model
entry's `timeout_s`), with the file named in the message.
"""

from __future__ import annotations

import argparse
import math

from fracdata.errors import FracdataError


def _outside(value: float, lo: float | None, hi: float | None, lo_open: bool) -> bool:
    return (not math.isfinite(value) or (lo is not None and (value <= lo if lo_open else value < lo))
            or (hi is not None and value > hi))


def _range(lo: float | None, hi: float | None, lo_open: bool) -> str:
    parts = ([f"{'>' if lo_open else '>='} {lo:g}"] if lo is not None else []) + ([f"<= {hi:g}"] if hi is not None else [])
    return " and ".join(parts)


def number(kind: type = float, lo: float | None = None, hi: float | None = None, lo_open: bool = False):
    """An argparse type: `kind` (int or float) within [lo, hi] (lo excluded with `lo_open`), finite."""
    wanted = " ".join(["a whole number" if kind is int else "a finite number", _range(lo, hi, lo_open)]).strip()

    def parse(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            value = None
        if value is None or _outside(float(value), lo, hi, lo_open):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


# the ranges every command shares
positive = number(float, 0, lo_open=True)  # rates, timeouts, sizes in MB
non_negative = number(float, 0)  # budgets, waits, backoff
count = number(int, 1)  # concurrency, images in a sample, output tokens
retries = number(int, 0, 100)
pixels = number(int, 16, 100_000)  # a longest or shortest image side


def check_number(value, where: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False):
    """`value` from a file, finite and in range, else FracdataError naming `where` (file: field)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FracdataError(f"{where}: must be a number, got {value!r}")
    if _outside(float(value), lo, hi, lo_open):
        wanted = " ".join(["a finite number", _range(lo, hi, lo_open)]).strip()
        raise FracdataError(f"{where}: must be {wanted}, got {value!r}")
    return value
