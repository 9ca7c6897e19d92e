"""The Elasticsearch-compatible API (`/_elastic`, docs/api.md): pure translation modules
(query_dsl and its dsl_* parts, vectors, bulk, responses, errors) and the FastAPI router (routes) onto SearchService."""
