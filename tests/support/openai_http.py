"""The HTTP side of the OpenAI API stub (routing, waiting, multipart uploads); see openai_server.py."""

from __future__ import annotations

import email.parser
import email.policy
import json
import select
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.openai_payloads import Fault, error_body


class Gone(Exception):
    """The client closed its connection while the handler waited."""


class Handler(BaseHTTPRequestHandler):
    stub: Any  # OpenAIStub, set by OpenAIStub.start()
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args):  # quiet: tests read stub.requests instead
        pass

    def _send(self, status: int, obj: Any, headers: dict | None = None, ctype="application/json") -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _trickle(self, status: int, obj: Any, headers: dict) -> None:
        """The headers at once, then the body one byte every `x-stub-trickle` seconds (Gone when the
        client closes the connection meanwhile); counts "trickled bytes" sent."""
        interval = float(headers.pop("x-stub-trickle"))
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()
        for i in range(len(data)):
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError as e:
                raise Gone() from e
            self.stub._count("trickled bytes")
            self._wait(interval)

    def _wait(self, seconds: float) -> None:
        """Sleep, but raise Gone as soon as the client closes the connection."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if ready:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        raise Gone()
                except (ConnectionResetError, OSError) as e:
                    raise Gone() from e
                time.sleep(min(left, 0.05))  # data waiting (pipelining): keep sleeping

    def _read(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorised(self) -> bool:
        key = self.stub.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        # Like the real API, the message quotes the key it got: a client must not copy it anywhere.
        got = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        self._send(401, error_body(f"Incorrect API key provided: {got} (stub)", "invalid_api_key"))
        return False

    def do_GET(self):
        stub, path = self.stub, self.path.split("?")[0]
        if path == "/stub/stats":  # control paths are not API requests: not recorded
            return self._send(200, stub.stats())
        with stub._lock:
            stub.requests.append((path, None, dict(self.headers)))
        if not self._authorised():
            return
        parts = path.strip("/").split("/")
        if path == "/v1/models":
            return self._send(200, {"object": "list", "data": []})
        if parts[:2] == ["v1", "files"] and len(parts) >= 3 and parts[2] in stub.files:
            f = stub.files[parts[2]]
            if len(parts) == 4 and parts[3] == "content":
                return self._send(200, f["content"], ctype="application/octet-stream")
            return self._send(200, {k: v for k, v in f.items() if k != "content"})
        if parts[:2] == ["v1", "batches"] and len(parts) == 3 and parts[2] in stub.batches:
            batch = stub.batches[parts[2]]
            with stub._lock:
                batch["_polls"] += 1
                due = batch["status"] != "completed" and batch["_polls"] >= stub.batch_polls
                if batch["status"] == "validating":
                    batch["status"] = "in_progress"
            if due:
                stub.run_batch(batch)
            return self._send(200, {k: v for k, v in batch.items() if not k.startswith("_")})
        return self._send(404, error_body(f"no route {path} (stub)", "not_found"))

    def do_POST(self):
        stub, path = self.stub, self.path.split("?")[0]
        raw = self._read()
        ctype = self.headers.get("Content-Type", "")
        body = None if ctype.startswith("multipart/") else _json_or_none(raw)
        if not path.startswith("/stub/"):
            with stub._lock:
                stub.requests.append((path, body, dict(self.headers)))
        if path == "/stub/hold":
            stub.hold()
            return self._send(200, stub.stats())
        if path == "/stub/release":
            stub.release()
            return self._send(200, stub.stats())
        if path == "/stub/faults":
            stub.faults.append(Fault(**body))
            return self._send(200, {"faults": len(stub.faults)})
        if not self._authorised():
            return
        if path in ("/v1/responses", "/v1/chat/completions"):
            if not isinstance(body, dict):
                return self._send(400, error_body("request body is not a JSON object (stub)", "invalid_request_error"))
            if body.get("stream"):
                return self._send(400, error_body("streaming is not supported by the stub", "invalid_request_error"))
            kind = "responses" if path == "/v1/responses" else "chat"
            try:
                status, headers, obj = stub.complete(kind, body, raw.decode("utf-8", "replace"), self._wait)
                if "x-stub-trickle" in headers:
                    return self._trickle(status, obj, headers)
            except Gone:
                stub._count("abandoned")
                self.close_connection = True
                return
            return self._send(status, obj, headers)
        if path == "/v1/files":
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
            fields = {part.get_param("name", header="content-disposition"): part for part in msg.iter_parts()}
            upload = fields["file"]
            fid = stub.add_file(upload.get_filename() or "upload", fields["purpose"].get_content().strip(),
                                upload.get_payload(decode=True))
            return self._send(200, {k: v for k, v in stub.files[fid].items() if k != "content"})
        if path == "/v1/batches":
            if body.get("input_file_id") not in stub.files:
                return self._send(400, error_body(f"no file {body.get('input_file_id')} (stub)", "invalid_request_error"))
            with stub._lock:
                bid = f"batch_{len(stub.batches) + 1:04d}"
                stub.batches[bid] = {"id": bid, "object": "batch", "endpoint": body["endpoint"],
                                     "input_file_id": body["input_file_id"],
                                     "completion_window": body.get("completion_window", "24h"),
                                     "status": "validating", "created_at": int(time.time()),
                                     "output_file_id": None, "error_file_id": None, "errors": None,
                                     "metadata": body.get("metadata"),
                                     "request_counts": {"total": 0, "completed": 0, "failed": 0}, "_polls": 0}
            return self._send(200, {k: v for k, v in stub.batches[bid].items() if not k.startswith("_")})
        return self._send(404, error_body(f"no route {path} (stub)", "not_found"))


def _json_or_none(raw: bytes):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
