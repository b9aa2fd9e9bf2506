"""The API client shared by hivectl (and later the TUI): one method per route, errors as exceptions."""

from __future__ import annotations

from typing import Any

import httpx

from hivectl.endpoint import Endpoint


class ClientError(Exception):
    exit_code = 1


class DaemonUnreachable(ClientError):
    exit_code = 3


class NotAuthorized(ClientError):
    exit_code = 4


class ApiError(ClientError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def detail_of(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail", resp.text)
    except ValueError:
        return resp.text.strip() or f"HTTP {resp.status_code}"
    if isinstance(detail, list):  # FastAPI's own shape
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail)


class Client:
    def __init__(self, endpoint: Endpoint, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.http = httpx.Client(**endpoint.client_kwargs(timeout))

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        if self.endpoint.socket is not None and not self.endpoint.socket.exists():
            raise DaemonUnreachable(
                f"hived is not running (no socket at {self.endpoint.socket}); "
                "start it with: hivectl daemon start"
            )
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise DaemonUnreachable(
                f"cannot reach hived at {self.endpoint.describe()} ({exc}); "
                "start it with: hivectl daemon start"
            ) from None
        if resp.status_code in (401, 403):
            raise NotAuthorized(detail_of(resp))
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, detail_of(resp))
        return resp

    def json(self, method: str, path: str, **kw: Any) -> Any:
        return self.request(method, path, **kw).json()

    # --- routes -----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self.json("GET", "/healthz")

    def status(self) -> dict[str, Any]:
        return self.json("GET", "/status")

    def agents(self, **filters: Any) -> list[dict[str, Any]]:
        return self.json("GET", "/agents", params={k: v for k, v in filters.items() if v})["items"]

    def agent(self, ref: str) -> dict[str, Any]:
        return self.json("GET", f"/agents/{ref}")

    def spawn(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.json("POST", "/agents", json=spec)

    def apply_agent(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.json("PUT", f"/agents/{spec['name']}", json=spec)

    def restart_agent(self, ref: str) -> dict[str, Any]:
        return self.json("POST", f"/agents/{ref}/restart", timeout=120)

    def delete_agent(self, ref: str, drain: bool, timeout: float) -> dict[str, Any]:
        return self.json(
            "DELETE", f"/agents/{ref}", params={"drain": drain, "timeout": timeout}, timeout=timeout + 60
        )

    def agent_logs(self, ref: str, offset: int, incarnation: int | None = None) -> tuple[str, int]:
        params: dict[str, Any] = {"offset": offset}
        if incarnation is not None:
            params["incarnation"] = incarnation
        resp = self.request("GET", f"/agents/{ref}/logs", params=params)
        return resp.text, int(resp.headers.get("X-Log-Offset", offset))

    def submit(self, task: dict[str, Any]) -> dict[str, Any]:
        return self.json("POST", "/tasks", json=task)

    def tasks(self, **filters: Any) -> list[dict[str, Any]]:
        return self.json("GET", "/tasks", params={k: v for k, v in filters.items() if v})["items"]

    def task(self, ref: str) -> dict[str, Any]:
        return self.json("GET", f"/tasks/{ref}")

    def cancel_task(self, ref: str) -> dict[str, Any]:
        return self.json("PUT", f"/tasks/{ref}/cancel")

    def retry_task(self, ref: str) -> dict[str, Any]:
        return self.json("POST", f"/tasks/{ref}/retry")

    def task_logs(self, ref: str, offset: int) -> tuple[str, int]:
        resp = self.request("GET", f"/tasks/{ref}/logs", params={"offset": offset})
        return resp.text, int(resp.headers.get("X-Log-Offset", offset))
