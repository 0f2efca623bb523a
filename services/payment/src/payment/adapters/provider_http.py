"""The card provider over HTTP (the sandbox speaks this API; a real provider gets an adapter like it).

Every call carries the provider key (bearer) and an `Idempotency-Key`, so a retried call - by
tenacity here after a connection error or timeout, or by the reconciler later - is one operation
at the provider. Whatever cannot be answered within the retries is `ProviderUnavailable`: the
outcome is unknown, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from payment.app.ports import ProviderResult, ProviderStatus, ProviderUnavailable


def result_of(data: dict[str, Any]) -> ProviderResult:
    try:
        status = ProviderStatus(str(data.get("status", "")))
    except ValueError:
        status = ProviderStatus.FAILED
    return ProviderResult(
        status=status,
        provider_ref=str(data.get("id", "")),
        version=int(data.get("version", 0)),
        action_url=str(data.get("action_url", "")),
        reason=str(data.get("reason", "")),
    )


class HttpProvider:
    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        timeout_s: float = 3.0,
        attempts: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)
        self._api_key = api_key
        self._attempts = attempts

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
        retry = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.1, max=1),
            retry=retry_if_exception_type((httpx.TransportError, _ServerError)),
            reraise=True,
        )
        try:
            async for attempt in retry:
                with attempt:
                    response = await self._client.request(
                        method,
                        path,
                        json=body,
                        headers={"authorization": f"Bearer {self._api_key()}", "idempotency-key": key},
                    )
                    if response.status_code >= 500:
                        raise _ServerError(response.status_code)
                    return response
        except (httpx.TransportError, _ServerError) as exc:
            raise ProviderUnavailable(f"{method} {path}: {exc!r}") from exc
        raise ProviderUnavailable(f"{method} {path}: no answer")

    async def _result(self, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> ProviderResult:
        response = await self._call(method, path, key, body)
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            return ProviderResult(
                ProviderStatus.FAILED, reason=str(data.get("reason") or f"http_{response.status_code}")
            )
        return result_of(data)

    async def authorize(
        self, key: str, amount_minor: int, currency: str, payment_method: str, return_url: str, reference: str
    ) -> ProviderResult:
        body = {
            "amount_minor": amount_minor,
            "currency": currency,
            "payment_method": payment_method,
            "return_url": return_url,
            "reference": reference,
        }
        return await self._result("POST", "/v1/authorizations", key, body)

    async def capture(self, key: str, provider_ref: str, amount_minor: int) -> ProviderResult:
        return await self._result(
            "POST", f"/v1/authorizations/{provider_ref}/capture", key, {"amount_minor": amount_minor}
        )

    async def void(self, key: str, provider_ref: str) -> ProviderResult:
        return await self._result("POST", f"/v1/authorizations/{provider_ref}/void", key, {})

    async def refund(self, key: str, provider_ref: str, amount_minor: int) -> ProviderResult:
        return await self._result(
            "POST", f"/v1/authorizations/{provider_ref}/refunds", key, {"amount_minor": amount_minor}
        )

    async def lookup(self, key: str) -> ProviderResult | None:
        response = await self._call("GET", f"/v1/authorizations?idempotency_key={key}", f"lookup:{key}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise ProviderUnavailable(f"lookup {key}: HTTP {response.status_code}")
        return result_of(response.json())


class _ServerError(Exception):
    pass
