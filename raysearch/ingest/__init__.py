"""The way in: decoding of request bodies and parameters, validation of documents, index
names and webhooks (pure, no Ray), and the ingest path that puts checked documents into
the intake log and registers their operation (ingest/submit.py). The HTTP API, the
Elasticsearch layer, the Ray Data sink and the actors all use it; it uses none of them."""
