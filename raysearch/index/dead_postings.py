"""Dead postings: the postings of removed documents that a shard's blocks still hold, and
the purges that drop them.

Removing a document (a delete, or a re-index of its id) deletes its T, D and V entries in
the apply's atomic write and leaves its postings in its batch's blocks: its number is dead
in the live set, and every search skips dead numbers. An update then costs an insert plus
three deletes wherever its old version sits, where rewriting every block its T entry names
cost ~100 block reads and writes per document. Lucene and tantivy mark deletions the same
way and drop them when segments merge.

The dead postings are dropped batch by batch: a purge reads a batch's L entry (the term
prefixes of its blocks), rewrites each block without the dead documents, and writes the L
entry anew with the documents its blocks now hold. Which batch, and when: while more than
`share` of the documents the blocks hold is dead, the batch holding the most dead
documents (greedy, as a log-structured store's cleaner or Lucene's merge policy picking
the segments with most deletions: each purge reclaims the most for what it rewrites).
Searches answer the same before and after a purge.

Pure logic (no Ray), over the KV store and the shard's live set; ShardIndex drives it.
"""

from __future__ import annotations

import numpy as np

from raysearch.index import keys as K
from raysearch.index.encoding import blocks_keeping, dead_in_blocks
from raysearch.storage.kv import KV

# Candidates looked at per purge call: most only correct an estimate (see account).
_ROUNDS = 64


class DeadPostings:
    def __init__(self, bases: dict[int, int], next_docnum: int, live: bytearray):
        self.bases = bases  # opstamp -> base document number of its batch (the shard's own dict)
        # Each batch's document count: numbers are handed out in opstamp order, so a batch's
        # count is the gap to the next base.
        order = sorted(bases.items())
        ends = [b for _, b in order[1:]] + [next_docnum]
        self.sizes = {o: end - b for (o, b), end in zip(order, ends)}
        self.held: dict[int, int] = {}  # opstamp -> documents its blocks hold (as its L entry says)
        self.due: set[int] = set()  # batches whose blocks hold dead documents
        # Documents the blocks hold, and how many of them are dead. Until a batch's L entry
        # is read, its blocks are taken to hold the whole batch: an overestimate after
        # earlier purges, corrected when the entry is read.
        self.held_docs = self.dead_docs = 0
        for o, b in order:
            size = self.sizes[o]
            alive = live[b : b + size].count(1)
            self.held_docs += size
            if alive < size:
                self.due.add(o)
                self.dead_docs += size - alive

    # ------------------------------------------------------------ bookkeeping
    def batch_added(self, opstamp: int, documents: int) -> None:
        self.sizes[opstamp] = documents
        if documents:
            self.held[opstamp] = documents
            self.held_docs += documents

    def removed(self, batches: set[int], documents: int) -> None:
        """`documents` live documents of these batches died (each one held by its blocks)."""
        self.due.update(batches)
        self.dead_docs += documents

    def account(self, opstamp: int, held: int, alive: int) -> None:
        """The batch's blocks hold `held` documents, `alive` of them live (after a purge, or
        as read from its L entry): the counts follow."""
        old = self.held.get(opstamp, self.sizes.get(opstamp, held))
        old_dead = old - alive if opstamp in self.due else 0
        self.held_docs += held - old
        self.dead_docs += (held - alive) - old_dead
        self.held[opstamp] = held
        if held > alive:
            self.due.add(opstamp)
        else:
            self.due.discard(opstamp)

    def share(self) -> tuple[int, int]:
        """(dead documents the blocks hold, documents the blocks hold)."""
        return self.dead_docs, self.held_docs

    # ------------------------------------------------------------------ purge
    def purge_into(self, kv: KV, changes: dict, live: bytearray, share: float,
                   max_batches: int = 2) -> tuple[dict[int, int], int]:
        """Into `changes` (a write the caller makes atomically): the purges of up to
        `max_batches` batches while more than `share` of what the blocks hold is dead (the
        second only while more than twice that). Returns (opstamp -> documents its blocks
        hold after the purge, for `account` once the write is durable; bytes superseded)."""
        held_after: dict[int, int] = {}
        garbage = 0
        for _ in range(_ROUNDS):
            dead, held_docs = self.dead_docs, self.held_docs
            if (dead <= share * held_docs or not self.due.difference(held_after) or len(held_after) >= max_batches
                    or (held_after and dead <= 2 * share * held_docs)):
                break
            choice = self._most_dead(live, exclude=held_after)
            if choice is None:
                continue
            opstamp, base, size, alive, held = choice
            raw = kv.get(K.batch_blocks_key(opstamp))
            if raw is None:  # a batch with no blocks: nothing to purge
                self.account(opstamp, alive, alive)
                continue
            read_held, prefixes = K.split_batch_blocks(raw)
            if read_held != held:  # the blocks hold less, as the batch's last purge left them:
                self.account(opstamp, read_held, alive)  # correct the counts, choose again
                continue
            live_here = np.frombuffer(live[base : base + size], dtype=np.bool_)  # a copy
            stamp = K.opstamp_bytes(opstamp)
            keys = [prefix + stamp for prefix in prefixes]
            kept = []
            garbage += len(raw)
            found = [(prefix, key, block) for prefix, key, block in zip(prefixes, keys, kv.multi_get(keys))
                     if block is not None]
            sizes, dead = dead_in_blocks([block for _, _, block in found], live_here)
            mixed = ((dead > 0) & (dead < sizes)).tolist()
            rewritten = iter(blocks_keeping([block for (_, _, block), m in zip(found, mixed) if m], live_here))
            for (prefix, key, block), size, gone, m in zip(found, sizes.tolist(), dead.tolist(), mixed):
                if not gone:  # no dead document in this block: it stays as it is
                    kept.append(prefix)
                    continue
                garbage += len(block)
                if gone == size:  # only dead ones: the block goes
                    changes[key] = None
                    continue
                changes[key] = next(rewritten)  # some dead, some live: rewritten with the live ones
                kept.append(prefix)
            changes[K.batch_blocks_key(opstamp)] = K.batch_blocks_value(alive, kept) if kept else None
            held_after[opstamp] = alive
        return held_after, garbage

    def _most_dead(self, live: bytearray, exclude) -> tuple[int, int, int, int, int] | None:
        """(opstamp, base, size, live documents, documents its blocks hold) of the candidate
        batch holding the most dead documents; None when that one turns out to hold none
        (it leaves the candidates)."""
        best, best_dead = None, 0
        for opstamp in self.due:
            if opstamp in exclude:
                continue
            base, size = self.bases[opstamp], self.sizes[opstamp]
            alive = live[base : base + size].count(1)
            held = self.held.get(opstamp, size)
            if best is None or held - alive > best_dead:
                best, best_dead = (opstamp, base, size, alive, held), held - alive
        if best is not None and best_dead <= 0:
            self.due.discard(best[0])
            return None
        return best
