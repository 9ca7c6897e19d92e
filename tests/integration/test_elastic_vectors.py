"""Elasticsearch's vector search through the official client (issue 22): a dense_vector
mapping, top-level knn with a filter, the rrf retriever equal to raysearch's own hybrid
search; then langchain-elasticsearch's ElasticsearchStore against the running service
with a deterministic fake embedding: add texts, similarity search, hybrid search."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from elasticsearch import BadRequestError

from tests.conftest import debian_docs

DIMS = 32


def _vector(text: str) -> list[float]:
    """A deterministic embedding: words hashed into DIMS buckets (texts sharing words are near)."""
    v = np.zeros(DIMS)
    for word in text.lower().split():
        h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")
        v[h % DIMS] += 1.0 if h & 1 else -1.0
    if not v.any():
        v[0] = 1.0
    return (v / np.linalg.norm(v)).round(5).tolist()


@pytest.fixture(scope="module")
def es_docs(es):
    index = "es_vectors"
    es.options(ignore_status=404).indices.delete(index=index)
    es.indices.create(index=index, mappings={"properties": {
        "title": {"type": "text"}, "section": {"type": "keyword"},
        "vec": {"type": "dense_vector", "dims": DIMS, "index": True, "similarity": "cosine"}}})
    docs = debian_docs(0, 300)
    actions = [{"_index": index, "_id": d["id"], "title": d.get("title", ""), "section": d.get("section", "none"),
                "vec": _vector(d.get("title", "") + " " + d.get("description", ""))} for d in docs]
    from elasticsearch import helpers
    ok, errors = helpers.bulk(es, actions, refresh=True)
    assert ok == len(docs) and not errors
    return index, docs


def test_mapping_shows_dense_vector(es, es_docs):
    index, _ = es_docs
    props = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert props["vec"] == {"type": "dense_vector", "dims": DIMS, "index": True, "similarity": "cosine"}


def test_knn_and_rrf_retriever_equal_raysearchs_own_answers(es, es_docs, http):
    index, docs = es_docs
    query = _vector("python library module")
    got = es.search(index=index, knn={"field": "vec", "query_vector": query, "k": 10, "num_candidates": 50,
                                      "filter": {"term": {"section": "python"}}}, size=10)
    own = http.post(f"/indexes/{index}/search", json={
        "knn": {"field": "vec", "vector": query, "k": 10}, "filter": {"term": {"section": "python"}}, "size": 10}).json()
    assert [h["_id"] for h in got["hits"]["hits"]] == [h["id"] for h in own["hits"]]
    assert got["hits"]["hits"] and all(h["_source"]["section"] == "python" for h in got["hits"]["hits"])
    assert [h["_score"] for h in got["hits"]["hits"]] == pytest.approx([h["score"] for h in own["hits"]])
    rrf = es.search(index=index, retriever={"rrf": {
        "retrievers": [{"standard": {"query": {"match": {"title": "python library"}}}},
                       {"knn": {"field": "vec", "query_vector": query, "k": 50, "num_candidates": 100}}],
        "rank_constant": 20, "rank_window_size": 50}}, size=10)
    own = http.post(f"/indexes/{index}/search", json={
        "q": "python library", "fields": "title", "knn": {"field": "vec", "vector": query, "k": 50},
        "rank": {"rrf": {"rank_constant": 20, "window": 50}}, "size": 10}).json()
    assert [h["_id"] for h in rrf["hits"]["hits"]] == [h["id"] for h in own["hits"]]
    assert rrf["hits"]["total"]["value"] == own["total"]
    with pytest.raises(BadRequestError, match="rrf retriever"):
        es.search(index=index, query={"match": {"title": "python"}}, knn={"field": "vec", "query_vector": query, "k": 5})
    with pytest.raises(BadRequestError, match="vector field"):
        es.search(index=index, knn={"field": "title", "query_vector": query, "k": 5})


class _FakeEmbeddings:
    """TEST ONLY: a deterministic embedding for langchain (no model, no download)."""

    def embed_documents(self, texts):
        return [_vector(t) for t in texts]

    def embed_query(self, text):
        return _vector(text)


def test_langchain_elasticsearch_store_adds_and_searches(service):
    langchain_es = pytest.importorskip("langchain_elasticsearch")
    from langchain_core.embeddings import Embeddings

    class Fake(_FakeEmbeddings, Embeddings):
        pass

    texts = ["the python programming language", "a library for parsing json", "tools for the c compiler",
             "python bindings for the gtk toolkit", "a web server written in rust"]
    metadatas = [{"n": i} for i in range(len(texts))]
    store = langchain_es.ElasticsearchStore(index_name="lc_vectors", embedding=Fake(),
                                            es_url=service.url + "/_elastic", es_params={"request_timeout": 120})
    store.client.options(ignore_status=404).indices.delete(index="lc_vectors")
    ids = store.add_texts(texts, metadatas=metadatas, ids=[f"t{i}" for i in range(len(texts))])
    assert len(ids) == len(texts)
    found = store.similarity_search("python programming language", k=2)
    assert found[0].page_content == texts[0] and found[0].metadata == {"n": 0}
    hybrid = langchain_es.ElasticsearchStore(
        index_name="lc_vectors", embedding=Fake(), es_url=service.url + "/_elastic",
        strategy=langchain_es.DenseVectorStrategy(hybrid=True))
    fused = hybrid.similarity_search("python toolkit", k=3)  # (langchain gives no scores in hybrid mode)
    assert texts[3] in {doc.page_content for doc in fused}
    scored = store.similarity_search_with_score("gtk toolkit", k=3)
    q = np.asarray(_vector("gtk toolkit"))
    # nearest first (cosines .58, .29, then exact zeros: tied, by id as the engine breaks them)
    ranked = sorted(range(len(texts)), key=lambda i: (-round(float(np.asarray(_vector(texts[i])) @ q), 4), f"t{i}"))
    assert [doc.page_content for doc, _ in scored] == [texts[i] for i in ranked[:3]]
    assert all(0 < score <= 1 for _, score in scored)
    store.client.close()
    hybrid.client.close()
