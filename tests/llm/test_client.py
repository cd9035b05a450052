"""The retry wait: what retry-after asks, capped."""

import email.utils
import time

import pytest

from research_assets.llm.client import ClaudeClient, retry_after_seconds, retry_wait
from tests.llm.conftest import KEY


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after": "3600"}, 3600.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-5"}, 0.0),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_seconds(headers, expected):
    assert retry_after_seconds(headers) == expected


def test_retry_after_http_date():
    now = time.time()
    date = email.utils.formatdate(now + 120, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=now) == pytest.approx(120, abs=1.5)


@pytest.mark.parametrize("headers", [{"retry-after": "3600"}, {"retry-after-ms": "9e9"}, {}])
def test_retry_wait_is_capped(headers):
    for retry in range(12):
        assert 0 <= retry_wait(headers, retry, cap=3.0) <= 3.0


def test_backoff_without_retry_after_grows():
    assert retry_wait({}, 0, cap=100) <= 0.5
    assert 3.0 <= retry_wait({}, 3, cap=100) <= 4.0


def test_client_repr_hides_the_key(settings):
    client = ClaudeClient(settings)
    assert KEY not in repr(client) and KEY not in str(client)
    assert settings.model in repr(client)
    client.close()
