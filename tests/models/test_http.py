"""The shared HTTP layer: retry timing, SSE decoding, and how its errors meet the rest of Tether."""

from __future__ import annotations

import email.utils
import random
import subprocess
import sys
import time

import httpx
import pytest

from tether.graph._retry import default_retry_on
from tether.models import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ChatModelError,
    ServerError,
)
from tether.models._http import BACKOFF_MAX_S, HTTPTransport, iter_sse_data, retry_delay


def test_retry_after_seconds_and_ms_are_honoured() -> None:
    assert retry_delay(1, {"retry-after": "0"}) == 0
    assert retry_delay(3, {"retry-after": "2.5"}) == 2.5
    assert retry_delay(1, {"retry-after-ms": "150", "retry-after": "9"}) == 0.15


def test_retry_after_as_a_date() -> None:
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= retry_delay(1, {"retry-after": when}) <= 10


def test_unusable_retry_after_falls_back_to_backoff() -> None:
    for headers in ({"retry-after": "soon"}, {"retry-after": "3600"}, {"retry-after": "-1"}):
        assert 0.375 <= retry_delay(1, headers) <= 0.625


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    delays = [retry_delay(attempt, rng=rng) for attempt in range(1, 8)]
    for attempt, delay in enumerate(delays[:5], start=1):
        nominal = 0.5 * 2 ** (attempt - 1)
        assert 0.75 * nominal <= delay <= 1.25 * nominal
    assert max(delays) <= 1.25 * BACKOFF_MAX_S
    assert len({round(d / (0.5 * 2**i), 6) for i, d in enumerate(delays[:5])}) > 1  # jittered, not fixed


def test_sse_decoding() -> None:
    lines = [": comment", "event: message", "data: {", 'data: "a": 1}', "", "", "data:[DONE]", "data: tail"]
    assert list(iter_sse_data(lines)) == ['{\n"a": 1}', "[DONE]\ntail"]
    assert list(iter_sse_data(["data: one", "", "data: two"])) == ["one", "two"]


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        HTTPTransport(base_url="http://x", model="m", provider="p", max_retries=-1)


def test_errors_fit_graph_retry_policies() -> None:
    """A node calling a model is retried after a lost connection or a 5xx, not after a bad key."""
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    server = ServerError("boom", status_code=503, response=httpx.Response(503, request=request))
    auth = AuthenticationError("no", status_code=401, response=httpx.Response(401, request=request))
    assert default_retry_on(server)
    assert default_retry_on(APIConnectionError("gone"))
    assert default_retry_on(APITimeoutError("slow"))
    assert not default_retry_on(auth)
    assert all(isinstance(e, ChatModelError) for e in (server, auth, APIConnectionError("x")))


def test_unsupported_url_is_not_retried() -> None:
    with HTTPTransport(base_url="ftp://example", model="m", provider="p", max_retries=3) as transport:
        started = time.monotonic()
        with pytest.raises(APIConnectionError, match="not an http"):
            transport.post("/x", {})
    assert time.monotonic() - started < 0.3


def test_importing_models_does_not_load_httpx() -> None:
    code = "import sys, tether.models; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_docs_examples_compile() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "models.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3
    for block in blocks:
        compile(block, "docs/models.md", "exec")
