"""fracdata.llm, the one place for API clients: redaction, Responses output, usage, prices, budget."""

from __future__ import annotations

import pytest

from fracdata.errors import FracdataError
from fracdata.llm.budget import Budget
from fracdata.llm.clients import client, missing_key, redact, sdk_error
from fracdata.llm.responses import responses_output, usage_from


def test_redact_removes_the_named_keys_whatever_their_length_and_key_shapes(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "oa-key-1")
    monkeypatch.setenv("FRACDATA_TEST_SHORT_KEY", "k3y")  # short and not sk-shaped: only its value finds it
    text = "sent k3y, oa-key-1, sk-abcd1234 and Bearer tok"
    assert redact(text, "FRACDATA_TEST_SHORT_KEY") == "sent ***, ***, *** and ***"
    assert redact(text) == "sent k3y, ***, *** and ***"  # an unnamed variable is not known to be a key
    monkeypatch.setenv("FRACDATA_TEST_EMPTY_KEY", "")
    assert redact("abc", "FRACDATA_TEST_EMPTY_KEY", None) == "abc"  # an empty value redacts nothing


def test_missing_key_and_client_errors_name_the_variable(monkeypatch):
    monkeypatch.delenv("FRACDATA_TEST_UNSET_KEY", raising=False)
    monkeypatch.setenv("FRACDATA_TEST_SET_KEY", "x")
    assert missing_key("FRACDATA_TEST_UNSET_KEY") == "FRACDATA_TEST_UNSET_KEY"
    assert missing_key("FRACDATA_TEST_SET_KEY") is None and missing_key(None) is None
    with pytest.raises(FracdataError, match=r"^cannot create the OpenAI client: .*\(set FRACDATA_TEST_UNSET_KEY; "):
        client(key_env="FRACDATA_TEST_UNSET_KEY")
    assert client("http://127.0.0.1:9/v1", key_env=None).api_key == "not-needed"  # a keyless local server


def test_sdk_error_is_one_redacted_line(monkeypatch):
    import httpx
    import openai

    monkeypatch.setenv("FRACDATA_TEST_KEY", "gem-4242")
    req = httpx.Request("POST", "http://x/v1/chat/completions")
    resp = httpx.Response(401, request=req)
    err = openai.AuthenticationError("sdk summary", response=resp,
                                     body={"error": {"message": "Incorrect API key provided:\n gem-4242"}})
    assert sdk_error(err, "FRACDATA_TEST_KEY") == "HTTP 401: Incorrect API key provided: ***"
    assert sdk_error(openai.APITimeoutError(req)) == "APITimeoutError: Request timed out."


def msg(*content, status="completed", **extra):
    return {"status": status, "output": [{"type": "reasoning"}, {"type": "message", "content": list(content)}], **extra}


@pytest.mark.parametrize("obj, want", [
    (msg({"type": "output_text", "text": "a"}, {"type": "output_text", "text": "b"}), ("ab", None, "")),
    (msg({"type": "refusal", "refusal": "no"}), (None, "refusal", "no")),
    (msg(status="incomplete", incomplete_details={"reason": "max_output_tokens"}),
     (None, "incomplete", "response incomplete: max_output_tokens")),
    (msg(status="incomplete", incomplete_details={"reason": "content_filter"}),
     (None, "content_filter", "response incomplete: content_filter")),
    (msg(status="failed", error={"message": "boom"}), (None, "response_failed", "response status failed: boom")),
])
def test_responses_output(obj, want):
    assert responses_output(obj) == want


def test_usage_from_reads_both_apis():
    chat = {"prompt_tokens": 10, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 1}}
    responses = {"input_tokens": 10, "output_tokens": 4, "input_tokens_details": {"cached_tokens": 3},
                 "output_tokens_details": {"reasoning_tokens": 1}}
    want = {"input_tokens": 10, "cached_tokens": 3, "output_tokens": 4, "reasoning_tokens": 1}
    assert usage_from(chat) == usage_from(responses) == want
    assert usage_from({"prompt_tokens": 7}) == {"input_tokens": 7, "cached_tokens": 0, "output_tokens": 0, "reasoning_tokens": 0}
    assert usage_from(None) is None


def test_one_budget_counts_earlier_spend_unreserved_charges_and_stops_at_the_first_refusal():
    p = {"input": 1.0, "cached_input": 0.1, "output": 10.0}
    b = Budget(0.01, p, max_output_tokens=300, spent_before=0.004)
    # worst case = (1,000 input * $1 + 300 output * $10) / 1M = $0.004
    assert b.worst_case(1000) == pytest.approx(0.004)
    b.charge(0.001)  # a call made whatever the budget (analyze's specialist)
    assert b.reserve(0.004) and b.reserved == pytest.approx(0.004)  # 0.004 + 0.001 + 0.004 <= 0.01
    usage = {"input_tokens": 1000, "cached_tokens": 200, "output_tokens": 100, "reasoning_tokens": 0}
    # billed: (800 * 1 + 200 * 0.1 + 100 * 10) / 1M = $0.00182
    assert b.settle(0.004, usage) == pytest.approx(0.00182)
    assert b.reserved == 0 and b.spent == pytest.approx(0.00682)
    assert not b.reserve(0.004) and b.stopped  # 0.00682 + 0.004 > 0.01
    assert not b.reserve(0.0001)  # once refused, nothing more is sent: runs stop in a predictable order
    free = Budget(None, None, 10_000)
    assert free.worst_case(10 ** 6) == 0.0 and free.reserve(0.0) and free.settle(0.0, usage) == 0.0
