"""Document -> shard: a stable hash of the id, so re-indexing and deletes stay local."""

import hashlib


def shard_for(doc_id: str, shards: int) -> int:
    digest = hashlib.blake2b(doc_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shards
