"""What each backend answer means (system_apis/http.py ``classify``), decided once for every system API."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from app.errors import BackendRejected, BackendUnavailable
from system_apis.http import classify, parse_retry_after

NOW = 1_800_000_000.0


def answer(status: int, body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_retry_after_as_seconds_or_as_an_http_date():
    assert parse_retry_after("120") == 120.0
    in_30s = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after(in_30s, now=NOW) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(NOW - 60, usegmt=True), now=NOW) == 0.0  # already past
    for unreadable in (None, "", "soon", "-5", "1e9", "Mon, 99 Foo 2026 00:00:00 GMT"):
        assert parse_retry_after(unreadable, now=NOW) is None, unreadable


def test_success_and_expected_statuses_are_answers():
    assert classify("erp", "GET", answer(200, {"id": "1"})) is None
    assert classify("erp", "GET", answer(404, {"code": "NOT_FOUND"}), expect={404}) is None
    assert classify("tax", "POST", answer(422, {"code": "INVALID_TAX_ID"}), expect={422}) is None


@pytest.mark.parametrize("method, ambiguous", [("PUT", True), ("POST", True), ("GET", False)])
def test_a_5xx_is_retryable_and_ambiguous_for_a_write(method, ambiguous):
    failure = classify("erp", method, answer(503, {"code": "DOWN", "detail": "db password is hunter2"}))
    assert isinstance(failure, BackendUnavailable)
    assert failure.ambiguous is ambiguous
    assert failure.detail == "erp: HTTP 503 DOWN"  # the vendor's body never reaches our callers
    assert failure.backend_retry_after is None and failure.retry_after == 30.0  # our default for callers


def test_throttles_and_unexpected_404s_are_retried_after_the_backends_retry_after():
    in_7s = email.utils.formatdate(time.time() + 7, usegmt=True)
    throttled = classify("psa", "POST", answer(429, None, **{"Retry-After": "12"}))
    assert isinstance(throttled, BackendUnavailable) and throttled.backend_retry_after == 12.0
    assert not throttled.ambiguous  # a throttle did nothing
    dated = classify("crm", "POST", answer(429, None, **{"Retry-After": in_7s}))
    assert isinstance(dated, BackendUnavailable) and 0 < dated.backend_retry_after <= 7.0 + 1
    wrong_route = classify("tax", "POST", answer(404, {"code": "NOT_FOUND"}))  # a 404 the caller did not expect
    assert isinstance(wrong_route, BackendUnavailable) and not wrong_route.ambiguous


def test_a_throttle_dressed_as_a_400_is_retryable_when_the_system_says_so():
    netsuite = answer(400, {"code": "CONCURRENCY_LIMIT_EXCEEDED"})
    assert isinstance(
        classify("erp", "PUT", netsuite, throttle_codes={"CONCURRENCY_LIMIT_EXCEEDED"}), BackendUnavailable
    )
    assert isinstance(classify("erp", "PUT", netsuite), BackendRejected)


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
def test_other_4xx_are_rejections_not_retried(status):
    failure = classify("psa", "POST", answer(status, {"code": "INVALID_REQUEST", "detail": "budget: required"}))
    assert isinstance(failure, BackendRejected)
    assert (failure.vendor_code, failure.vendor_detail) == ("INVALID_REQUEST", "budget: required")
    assert failure.status == 502 and failure.detail == "psa refused the request: INVALID_REQUEST"


def test_a_body_that_is_not_json_still_classifies():
    failure = classify("crm", "POST", httpx.Response(418, text="<html>teapot</html>"))
    assert isinstance(failure, BackendRejected) and failure.vendor_code == "HTTP_418"
