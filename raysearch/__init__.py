"""raysearch: a full-text search engine built as an actor system on Ray.

Public entry points:
- ``raysearch.Client``  -- HTTP client (``raysearch.client``)
- ``raysearch serve``   -- command line (``raysearch.cli``)
- ``raysearch.RaySearchDatasink`` -- Ray Data sink (``raysearch.datasink``)
- ``raysearch.base64_vector(v)`` -- a vector as a bulk request may send it: the base64 of its
  big-endian float32 values (a quarter of the bytes of JSON numbers, and nothing to parse)
"""

__version__ = "0.1.0"


def __getattr__(name):  # lazy: importing raysearch must not pull in httpx or Ray
    if name == "Client":
        from raysearch.client import Client

        return Client
    if name == "connect":
        from raysearch.incluster import connect

        return connect
    if name == "base64_vector":
        from raysearch.schema import base64_vector

        return base64_vector
    if name == "RaySearchDatasink":
        from raysearch.datasink import RaySearchDatasink

        return RaySearchDatasink
    raise AttributeError(name)
