"""``fetch.per_host`` across every worker: request slots per host in the ``host_slot`` table.

Inside one worker the in-process limit (:class:`~watcher.pipeline.fetch.HostSlots`) queues
the requests first, so only those about to go ask the database; each then takes a row of
the host's slots (an upsert that succeeds only on a free or expired slot), waits while all
are taken, and deletes its row when the request is done. A worker killed holding a slot
frees it when the slot's lease (the fetch deadline plus a margin) runs out.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from watcher.pipeline.fetch import HostSlots
from watcher.storage.store import Store

# How long a worker waits before asking again for a slot of a busy host (with jitter).
SLOT_POLL_SECONDS = 0.05


class SharedHostSlots:
    def __init__(
        self,
        store: Store,
        per_host: int,
        holder: str,
        lease: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.per_host = per_host
        self.holder = holder
        self.lease = lease
        self.clock = clock
        self._local = HostSlots(per_host)

    @asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        async with self._local.hold(host):
            slot = await self._take(host)
            try:
                yield
            finally:
                # Shielded: a request cancelled by a drain must still give its slot back.
                await asyncio.shield(
                    asyncio.to_thread(self.store.release_host_slot, host, slot, self.holder)
                )

    async def _take(self, host: str) -> int:
        while True:
            now = self.clock()
            slot = await asyncio.to_thread(
                self.store.take_host_slot,
                host,
                self.per_host,
                self.holder,
                now,
                expires=now + self.lease,
            )
            if slot is not None:
                return slot
            await asyncio.sleep(SLOT_POLL_SECONDS * random.uniform(0.5, 1.5))
