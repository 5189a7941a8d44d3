"""A local stand-in for the part of the OpenAI API fracdata uses, for tests and benchmarks.

A real HTTP server on 127.0.0.1 (random port) in a background thread, driven by the real
`openai` SDK as client (nothing patched). Stable API:

    from tests.support.openai_server import OpenAIStub, Fault

    with OpenAIStub(responder=None, latency=0.0) as stub:
        client = openai.OpenAI(base_url=stub.base_url, api_key="sk-test")   # base_url ends in /v1
        ...
        stub.requests      # [(path, json body or None, headers dict)] in arrival order
        stub.completions   # successful completions answered (direct calls and batch lines)
        stub.counts        # Counter: "responses", "chat", "batch_line", "abandoned", "fault:<kind>", ...

Endpoints: POST /v1/responses, POST /v1/chat/completions (no streaming), GET /v1/models,
POST /v1/files (multipart upload), GET /v1/files/{id}, GET /v1/files/{id}/content,
POST /v1/batches, GET /v1/batches/{id}. A batch is processed with the same responder and
faults when it is retrieved for the `batch_polls`-th time (earlier retrieves say
"in_progress"); 2xx lines go to the output file, others to the error file.

Answers: `responder(kind, body) -> dict | str | bytes` with kind "responses" or "chat" and body the
request JSON; a dict is sent as JSON answer text, a str as is; bytes are the whole HTTP body
instead (status 200: a body of any shape, for hostile-server tests). The default responder answers a
minimal instance of the request's JSON schema (text.format / response_format), else
"Features: none". `text_of(body)` gives all request text (instructions, messages, no images),
handy for finding markers.

Faults, for completion requests (direct or batch line), applied before the responder:
  stub.faults.append(Fault("429", retry_after=0.5))           # next request, once
  stub.faults.append(Fault("refusal", match="[[img-3]]"))     # marker anywhere in the body
  stub.faults.append(Fault("500", match=4, times=None))       # 4th completion request, forever
  a request body containing "[[stub:<kind>]]" gets that fault every time (no setup needed).
`match`: None (any request), an int (1-based completion request number, `stub.n`), a str
(substring of the raw JSON body) or a callable(body) -> bool. `times`: how often (None = always).
Kinds: "429" (Retry-After: retry_after s), "500", "400_logprobs" (HTTP 400 "'logprobs' is not
supported with this model", as OpenAI's reasoning models answer; match it with
`lambda body: body.get("logprobs")`), "slow" (waits `delay` s, longer than the
client's timeout, then answers), "trickle" (sends the headers, then the body one byte every
`delay` s: every read is quick, the whole answer is not; counts "abandoned" when the client leaves), "bad_body" (HTTP 200 whose body is not JSON),
"malformed_json" (answer text is not JSON), "schema_invalid" (valid JSON that breaks the
schema), "refusal", "incomplete" (Responses status incomplete / max_output_tokens; chat
finish_reason length), "length" (same as incomplete), "content_filter".
Faulted requests never count in `completions`.

Usage: every answer carries a usage block (fixed DEFAULT_USAGE: 1000 input of which 200 cached,
300 output of which 200 reasoning; `usage=` overrides keys, or is a callable(kind, body) -> dict
of keys to override per request, e.g. input tokens counted from the request's text) and an `x-request-id` header
"req_<n>". A response's `model` is the requested name + `model_suffix`. `/stub/...` control
requests are not recorded in `requests`.
A handler waiting (latency, slow fault, hold) notices when its client goes away (e.g. SIGKILL)
and then counts "abandoned" instead of a completion: an in-flight request is not paid.
`stub.hold()` parks every finished answer before it is sent (`stub.parked` counts them) until
`stub.release()`; with `stub.wait_until(lambda: stub.parked == 3)` a test knows the client has
nothing received-but-unsaved before it kills it.

From another process: `python -m tests.support.openai_server --port 0 [--latency S]` prints
its base URL on the first line and serves until SIGINT/SIGTERM; GET /stub/stats returns
{"completions", "counts", "requests" (API requests so far), "parked"}; POST /stub/hold, /stub/release, and
POST /stub/faults with {"kind", "match", "times", "retry_after", "delay"} add a fault.

Modules: openai_server (this: the stub object, batches, CLI), openai_http (HTTP handler),
openai_payloads (faults, default answers, response bodies).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import ThreadingHTTPServer
from collections import Counter
from typing import Any, Callable

from tests.support.openai_http import Handler
from tests.support.openai_payloads import (  # noqa: F401  (re-exported: the stable API lives here)
    DEFAULT_USAGE, FAULT_KINDS, Fault, chat_body, default_responder, error_body, minimal_instance,
    request_schema, response_body, text_of,
)

class OpenAIStub:
    def __init__(self, responder: Callable[[str, dict], dict | str] | None = None, latency: float = 0.0,
                 port: int = 0, api_key: str | None = None, usage: dict | None = None,
                 model_suffix: str = "-stub", batch_polls: int = 1):
        self.responder = responder or default_responder
        self.latency = latency
        self.api_key = api_key  # when set, requests without "Bearer <api_key>" get 401
        self.usage = usage if callable(usage) else {**DEFAULT_USAGE, **(usage or {})}
        self.model_suffix = model_suffix
        self.batch_polls = batch_polls
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, Any, dict]] = []
        self.counts: Counter = Counter()
        self.completions = 0
        self.n = 0  # completion requests seen (direct + batch lines)
        self.parked = 0
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._hold = threading.Event()
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "OpenAIStub":
        handler = type("Handler", (Handler,), {"stub": self})
        # The default listen backlog of 5 drops connects when 16 clients open at once, and a
        # dropped SYN is retried only after 1 s: a benchmark would measure that, not the client.
        server_cls = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 256})
        self._server = server_cls(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # never wait for a parked or slow handler on stop
        threading.Thread(target=self._server.serve_forever, name="openai-stub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._hold.clear()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def hold(self) -> None:
        self._hold.set()

    def release(self) -> None:
        self._hold.clear()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError(f"stub: condition not met in {timeout} s (counts={dict(self.counts)})")
            time.sleep(0.01)

    def stats(self) -> dict:
        with self._lock:
            return {"completions": self.completions, "counts": dict(self.counts),
                    "requests": len(self.requests), "parked": self.parked}

    # -- completions -----------------------------------------------------------------------
    def _pick_fault(self, raw: str, body: dict) -> tuple[int, Fault | None]:
        with self._lock:
            self.n += 1
            n = self.n
            for fault in self.faults:
                if fault.matches(n, raw, body):
                    if fault.times is not None:
                        fault.times -= 1
                    return n, fault
        for kind in FAULT_KINDS:
            if f"[[stub:{kind}]]" in raw:
                return n, Fault(kind, times=None)
        return n, None

    def complete(self, kind: str, body: dict, raw: str, wait: Callable[[float], None]) -> tuple[int, dict, Any]:
        """(status, headers, JSON object or raw bytes) for one completion request."""
        n, fault = self._pick_fault(raw, body)
        rid = f"req_{n:06d}"
        headers = {"x-request-id": rid}
        fk = fault.kind if fault else None
        if fk:
            self._count(f"fault:{fk}")
        wait(self.latency + (fault.delay if fk == "slow" else 0.0))
        if fk == "429":
            headers["retry-after"] = f"{fault.retry_after:g}"
            return 429, headers, error_body("Rate limit reached (stub)", "rate_limit_exceeded")
        if fk == "500":
            return 500, headers, error_body("The server had an error (stub)", "server_error")
        if fk == "400_logprobs":
            return 400, headers, error_body("Unsupported parameter: 'logprobs' is not supported with this model. (stub)",
                                            "unsupported_parameter")
        if fk == "bad_body":
            return 200, headers, b'{"id": "resp_truncated", "output": [{"type": "mess'
        if fk == "malformed_json":
            text = '{"features": [ "cleavage_facet", '
        elif fk == "schema_invalid":
            text = json.dumps({"features": [{"id": "not_a_feature", "evidence": "x"}], "extra": 1})
        else:
            answer = self.responder(kind, body)
            if isinstance(answer, bytes):  # the whole body, of whatever shape
                self._count(kind)
                return 200, headers, answer
            text = answer if isinstance(answer, str) else json.dumps(answer)
        if fk in ("incomplete", "length"):
            text = text[: len(text) // 2]
        if self._hold.is_set():
            with self._lock:
                self.parked += 1
            try:
                while self._hold.is_set():
                    wait(0.02)
            finally:
                with self._lock:
                    self.parked -= 1
        model = str(body.get("model", "")) + self.model_suffix
        usage = {**DEFAULT_USAGE, **self.usage(kind, body)} if callable(self.usage) else self.usage
        obj = (response_body if kind == "responses" else chat_body)(n, model, text, fk, usage)
        self._count(kind)
        if fk == "trickle":
            headers["x-stub-trickle"] = f"{fault.delay:g}"  # the handler sends it byte by byte
        if fk in (None, "slow"):
            with self._lock:
                self.completions += 1
        return 200, headers, obj

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    # -- batches ---------------------------------------------------------------------------
    def run_batch(self, batch: dict) -> None:
        lines = self.files[batch["input_file_id"]]["content"].decode().splitlines()
        out, err = [], []
        for i, line in enumerate(l for l in lines if l.strip()):
            req = json.loads(line)
            kind = "responses" if req["url"].endswith("/responses") else "chat"
            status, headers, obj = self.complete(kind, req["body"], json.dumps(req["body"]), lambda s: None)
            self._count("batch_line")
            if isinstance(obj, bytes):  # a broken body cannot be embedded: report it as a 500 line
                status, obj = 500, error_body("malformed upstream body (stub)", "server_error")
            row = {"id": f"batch_req_{batch['id']}_{i}", "custom_id": req["custom_id"],
                   "response": {"status_code": status, "request_id": headers["x-request-id"], "body": obj},
                   "error": None}
            (out if status == 200 else err).append(json.dumps(row))
        batch["output_file_id"] = self.add_file("batch_output.jsonl", "batch_output", out) if out else None
        batch["error_file_id"] = self.add_file("batch_errors.jsonl", "batch_output", err) if err else None
        batch["request_counts"] = {"total": len(out) + len(err), "completed": len(out), "failed": len(err)}
        batch["status"], batch["completed_at"] = "completed", int(time.time())

    def add_file(self, filename: str, purpose: str, content: bytes | list[str]) -> str:
        if isinstance(content, list):
            content = ("\n".join(content) + "\n").encode()
        with self._lock:
            fid = f"file-{len(self.files) + 1:04d}"
            self.files[fid] = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                               "filename": filename, "purpose": purpose, "status": "processed", "content": content}
        return fid


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="serve the OpenAI API stub until SIGINT/SIGTERM")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--batch-polls", type=int, default=1)
    args = p.parse_args(argv)
    import signal

    stub = OpenAIStub(latency=args.latency, port=args.port, batch_polls=args.batch_polls).start()
    print(stub.base_url, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # set both: a background job starts with SIGINT ignored
        signal.signal(sig, lambda *a: stop.set())
    while not stop.wait(0.2):
        pass
    stub.stop()


if __name__ == "__main__":
    main()
