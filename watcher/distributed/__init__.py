"""Scale-out: the task functions of :mod:`watcher.tasks` as Procrastinate jobs on PostgreSQL.

``queue: procrastinate`` in the config, then any number of identical ``watcher worker``
processes on any machines. There is no scheduler node: each worker offers the periodic jobs
(``schedule``, ``dispatch``, ``health``, ``prune``, ``recover``) and Procrastinate defers each
tick once however many workers run. The schedule stays on the domain rows
(``feed.next_poll_at``, ``article.next_check_at``); the ``schedule`` job turns what is due
into ``poll`` and ``check`` jobs.

The embedded guarantees, held across workers by the database, never by a process:

- one check of an article at a time (a job lock ``article:ID``), one poll of a feed at a time
  (``feed:NAME``), one outbox round at a time (``watcher:outbox``: rate limits and digests
  read and write their state in the database, so serialising the rounds keeps them exact);
- per-host politeness: ``fetch.per_host`` slots in the ``host_slot`` table
  (:mod:`watcher.distributed.hostslots`);
- learned furniture read from the database on every check (no per-process cache), so two
  workers hash one page alike;
- a worker killed at any moment: its jobs are found stalled once its heartbeat is
  ``queue.stalled_after`` old and handed back (``recover``); versions are unique per (article,
  hash) and alerts per (rule, version), so a job run again stores nothing twice.
"""

from __future__ import annotations
