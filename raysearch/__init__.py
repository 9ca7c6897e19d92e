"""raysearch: a full-text search engine built as an actor system on Ray.

Public entry points:
- ``raysearch.Client``  -- HTTP client (``raysearch.client``)
- ``raysearch serve``   -- command line (``raysearch.cli``)
- ``raysearch.RaySearchDatasink`` -- Ray Data sink (``raysearch.datasink``)
"""

__version__ = "0.1.0"


def __getattr__(name):  # lazy: importing raysearch must not pull in httpx or Ray
    if name == "Client":
        from raysearch.client import Client

        return Client
    if name == "connect":
        from raysearch.incluster import connect

        return connect
    if name == "RaySearchDatasink":
        from raysearch.datasink import RaySearchDatasink

        return RaySearchDatasink
    raise AttributeError(name)
