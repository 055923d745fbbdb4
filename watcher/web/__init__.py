"""The read-only web view: pages, Atom feeds of changes and a JSON API over the database.

It reads the store and renders with the pipeline's diff; it never writes a row and never
fetches a URL. ``watcher web`` serves it alone; ``watcher run`` serves it on ``web.listen``
beside ``/metrics`` and ``/healthz``.
"""
