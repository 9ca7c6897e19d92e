"""In-cluster Python API for driver scripts and notebooks on the Ray cluster:
the same operations as the HTTP API, through actor handles (no HTTP, no Serve hop).

    import raysearch
    rs = raysearch.connect()          # joins the running cluster (address="auto")
    rs.search("debian", "tiling window manager")["hits"]
"""

from __future__ import annotations

import asyncio
import json
import threading

from raysearch.config import NAMESPACE, Settings


class InClusterClient:
    def __init__(self, settings: Settings):
        from raysearch.app.service import SearchService

        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True, name="raysearch-client").start()
        self.service = self._run(self._make(SearchService, settings))
        self.settings = settings

    @staticmethod
    async def _make(cls, settings):
        return cls(settings)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def search(self, index: str, q: str, size: int = 10, from_: int = 0, fields: str | None = None,
               operator: str = "or", highlight: bool = False) -> dict:
        from raysearch.models import SearchRequest

        request = SearchRequest(q=q, size=size, fields=fields, operator=operator, highlight=highlight,
                                **{"from": from_})
        return self._run(self.service.search(index, request))

    def bulk(self, index: str, documents: list[dict]) -> dict:
        body = json.dumps(documents, ensure_ascii=False).encode()
        return self._run(self.service.bulk(index, body, "application/json"))

    def operation(self, op_id: str) -> dict:
        return self._run(self.service.operation(op_id))

    def get(self, index: str, doc_id: str) -> dict:
        return self._run(self.service.get_document(index, doc_id))

    def index(self, index: str) -> dict:
        return self._run(self.service.index_info(index))


def connect(address: str = "auto") -> InClusterClient:
    """Join the Ray cluster the service runs on and return a client over its actors."""
    import ray

    from raysearch.actors import registry

    if not ray.is_initialized():
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
    tracker = registry.find(registry.TRACKER)
    if tracker is None:
        raise RuntimeError("no raysearch service runs on this Ray cluster (no raysearch:tracker actor)")
    settings = Settings(**ray.get(tracker.service_settings.remote(), timeout=60))
    return InClusterClient(settings)
