"""Fixtures for the sandbox tests: a fresh in-process sandbox per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox.app import create_sandbox_app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_sandbox_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client
