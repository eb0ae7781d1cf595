"""Where the worker reaches into faust-streaming's internals, one named seam per concern.

No other worker module touches Faust's private names. Each seam says which Faust behaviour
or issue it works around and what it measured; :func:`version.require_pinned_faust` stops
the worker on a faust-streaming other than the one they are written against, and
tests/integration/worker fail if one stops working.

- :mod:`.transport`: the Kafka transport: fetch wait, checked high watermarks, inbox
  routing, a safe seek after recovery, a hook before every offset commit.
- :mod:`.tables`: tables written a checkpoint at a time (store and changelog directly,
  the changelog offset the store holds), and the partition Faust's RocksDB store reads
  from the current event.
- :mod:`.stores`: the table manager's start without its second of sleep; on-disk stores
  that hold a log the broker lost, dropped at start.
"""
