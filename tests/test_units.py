"""Kubernetes quantities and durations, exactly as Kubernetes and Prometheus define them."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.units import (
    format_cpu,
    format_duration,
    format_memory,
    parse_cpu,
    parse_duration,
    parse_memory,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100m", Decimal("0.1")),
        ("1.5", Decimal("1.5")),
        ("512Mi", Decimal(512 * 2**20)),
        ("1G", Decimal(10**9)),
        ("2e3", Decimal(2000)),
        ("1Ki", Decimal(1024)),
        ("500n", Decimal("5e-7")),
        ("0.5Gi", Decimal(2**29)),
        ("+3", Decimal(3)),
        (".5", Decimal("0.5")),
        ("1E2", Decimal(100)),
        ("10u", Decimal("1e-5")),
    ],
)
def test_parse_quantity(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "5 Mi", "1mi", "Mi", "1e", "inf"])
def test_parse_quantity_rejects(text):
    with pytest.raises(InputError, match="not a Kubernetes quantity"):
        parse_quantity(text)


def test_cpu_and_memory():
    assert parse_cpu("250m") == 0.25
    assert parse_cpu("0.0001") == 0.001  # Kubernetes keeps millicores, rounding up
    assert parse_memory("1.5Gi") == 1610612736
    assert parse_memory("1.1") == 2  # rounds up to a whole byte
    assert format_cpu(0.25) == "250m"
    assert format_cpu(2.0) == "2"
    assert format_memory(512 * 2**20) == "512Mi"
    assert format_memory(3 * 2**30) == "3Gi"
    assert format_memory(512 * 2**20 + 1) == "513Mi"  # never asks for less than the number


@given(st.integers(min_value=1, max_value=2**45))
def test_format_memory_never_below_value(n):
    assert parse_memory(format_memory(n)) >= n


@given(st.integers(min_value=1, max_value=10**6))
def test_format_cpu_round_trips_millicores(millis):
    assert parse_cpu(format_cpu(millis / 1000)) == pytest.approx(millis / 1000)


def test_durations():
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    assert parse_duration("14d") == 14 * 86400
    assert parse_duration("60") == 60
    assert format_duration(300) == "5m"
    assert format_duration(14 * 86400) == "2w"
    for bad in ["", "5x", "m5", "-5m", "0m"]:
        with pytest.raises(InputError, match="not a duration"):
            parse_duration(bad)
