"""raysearch: a full-text search engine built as an actor system on Ray.

Public entry points:
- ``raysearch.Client``  -- HTTP client (``raysearch.client``)
- ``raysearch serve``   -- command line (``raysearch.cli``)
"""

__version__ = "0.1.0"


def __getattr__(name):  # lazy: importing raysearch must not pull in httpx or Ray
    if name == "Client":
        from raysearch.client import Client

        return Client
    if name == "connect":
        from raysearch.incluster import connect

        return connect
    raise AttributeError(name)
