"""The application: what raysearch does, as plain async methods over the actors' clients
(actors/clients.py). `SearchService` is the one entry point of the HTTP API (serve/),
the Elasticsearch layer (elastic/) and the in-cluster client (incluster.py); the
catalog of indexes is its part that the Ray Data sink shares."""
