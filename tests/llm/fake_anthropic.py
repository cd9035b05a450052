"""A scripted stand-in for the Messages API: a threaded HTTP server on 127.0.0.1.

Each test queues replies (status, headers, body: a JSON object, HTML, truncated bytes, or a
delay that outlasts the client's timeout); every POST /v1/messages takes the next one and its
request body is recorded. The real ``anthropic`` client talks to it through ``base_url``, so the
SDK's own request building, error mapping and response parsing are what is tested.

When a scripted message leaves ``usage.input_tokens`` as ``AUTO``, the server fills in an
estimate from the size of the request body (``approx_tokens``), so tests can measure how large
the prompts are.
"""

import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

AUTO = "auto"
# Bytes per token assumed by the estimate: JSON-heavy prompts tokenise densely (about 3.5-4
# bytes per token on older tokenizers, ~30% more tokens on the Claude 4.7+ one); 3 is cautious.
BYTES_PER_TOKEN = 3.0


def approx_tokens(n_bytes: int) -> int:
    return math.ceil(n_bytes / BYTES_PER_TOKEN)


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0  # seconds to wait before answering (to force a client timeout)


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool_use(name: str, tool_input: Any, id: str | None = None) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": id or f"toolu_{name}_{time.monotonic_ns()}",
        "name": name,
        "input": tool_input,
    }


def message(
    *content: dict[str, Any],
    stop_reason: str | None = None,
    input_tokens: int | str = 100,
    output_tokens: int = 50,
    cache_creation: int = 0,
    cache_read: int = 0,
    model: str = "claude-haiku-5-5",
) -> Reply:
    """A Messages API response; ``stop_reason`` defaults to tool_use when a tool is called."""
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
    return Reply(
        body={
            "id": f"msg_{time.monotonic_ns()}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": list(content),
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": cache_creation,
                "cache_read_input_tokens": cache_read,
            },
        }
    )


def error(status: int, kind: str, msg: str, headers: dict[str, str] | None = None) -> Reply:
    """An API error body, as the real API sends it."""
    return Reply(
        status=status,
        body={"type": "error", "error": {"type": kind, "message": msg}},
        headers=headers or {},
    )


class FakeAnthropic:
    """The server; use as a context manager. ``requests`` holds the parsed request bodies."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                with fake._lock:
                    fake.raw.append(raw)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    try:
                        fake.requests.append(json.loads(raw))
                    except ValueError:
                        fake.requests.append({"_unparsed": raw.decode(errors="replace")})
                    reply = (
                        fake.replies.pop(0)
                        if fake.replies
                        else error(500, "api_error", "the fake server has no scripted reply left")
                    )
                if self.path.rstrip("/") != "/v1/messages":
                    reply = error(404, "not_found_error", f"no route {self.path}")
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                if isinstance(body, dict) and isinstance(body.get("usage"), dict):
                    if body["usage"].get("input_tokens") == AUTO:
                        body = {
                            **body,
                            "usage": {**body["usage"], "input_tokens": approx_tokens(len(raw))},
                        }
                if isinstance(body, dict | list):
                    data = json.dumps(body).encode()
                elif isinstance(body, str):
                    data = body.encode()
                else:
                    data = body or b""
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", reply.content_type)
                    self.send_header("content-length", str(len(data)))
                    self.send_header("request-id", f"req_fake_{len(fake.raw)}")
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def __enter__(self) -> "FakeAnthropic":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def tool_results(self, request_index: int) -> list[dict[str, Any]]:
        """The tool_result blocks of the last user message of a recorded request."""
        last = self.requests[request_index]["messages"][-1]
        assert last["role"] == "user"
        return [b for b in last["content"] if isinstance(b, dict) and b["type"] == "tool_result"]
