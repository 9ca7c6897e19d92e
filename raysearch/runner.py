"""Start and stop the whole service locally: MongoDB (unless a URI is given), Ray, Serve."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import httpx

from raysearch.config import NAMESPACE, Settings

log = logging.getLogger("raysearch.runner")
APP_NAME = "raysearch"


class LocalService:
    def __init__(self, settings: Settings, ray_address: str | None = None, dashboard: bool = True):
        self.settings = settings.model_copy()
        self.ray_address = ray_address
        self.dashboard = dashboard
        self.mongo = None
        self.dashboard_url: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def start(self, ready_timeout_s: float = 180) -> "LocalService":
        import ray
        from ray import serve

        from raysearch.serve.app import Ingress

        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        if not self.settings.mongo_uri:
            from raysearch.storage.local_mongo import LocalMongo

            mongo_dir = os.path.join(self.settings.data_dir, "mongo")
            self.mongo = LocalMongo(mongo_dir, log_path=os.path.join(self.settings.data_dir, "mongo.log")).start()
            self.settings.mongo_uri = self.mongo.uri
        if not ray.is_initialized():
            context = ray.init(
                address=self.ray_address or "local",
                namespace=NAMESPACE,
                include_dashboard=self.dashboard,
                log_to_driver=False,
                configure_logging=False,
            )
            self.dashboard_url = getattr(context, "dashboard_url", None)
        serve.start(http_options={"host": self.settings.host, "port": self.settings.port})
        serve.run(Ingress.bind(self.settings.model_dump()), name=APP_NAME, route_prefix="/", blocking=False)
        self.wait_ready(ready_timeout_s)
        return self

    def wait_ready(self, timeout_s: float) -> None:
        deadline, reason = time.time() + timeout_s, "no answer"
        while time.time() < deadline:
            try:
                r = httpx.get(self.url + "/readyz", timeout=15, headers=self._auth())
                if r.status_code == 200:
                    return
                reason = r.text
            except httpx.HTTPError as exc:
                reason = str(exc)
            time.sleep(0.5)
        raise RuntimeError(f"service not ready after {timeout_s}s: {reason}")

    def _auth(self) -> dict:
        key = os.environ.get("RAYSEARCH_API_KEY")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def stop(self) -> None:
        self.stop_ray()
        if self.mongo:
            self.mongo.stop()
            self.mongo = None

    def stop_ray(self) -> None:
        """Stop Serve and Ray (every actor); MongoDB and the data directory stay."""
        import ray
        from ray import serve

        if ray.is_initialized():
            try:
                serve.shutdown()
            except Exception as exc:  # shutting down anyway
                log.warning("serve.shutdown failed: %s", exc)
            ray.shutdown()
