"""The lot-starting scheduler: opens scheduled lots when their estimated start comes near.

Every `interval` it asks the lot repository for scheduled lots whose estimated start is before
now + `lead` (oldest first, at most `batch` per round; lots missed while the service was down
are therefore started late rather than never), and runs StartLot for each as the catalog's own
service identity. StartLot makes the lot live and emits LotStarting once:

  * it goes through the same idempotent path as the RPC, with request id
    `lot-starting-<lot_id>`, so a repeat returns the stored answer instead of acting twice;
  * a lot a crier already started is refused with INVALID_STATE (logged, not retried);
  * two catalog replicas racing on one lot: the lot's optimistic lock (or the idempotency
    record) lets one commit, the other gets Aborted and finds the lot live on its next round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from catalog.app.ports import CatalogUnitOfWork
from catalog.app.runner import run
from catalog.domain.access import Viewer
from catalog.domain.lots import Lot
from catalog.domain.queries import LotFilter
from catalog.domain.states import State
from gavel.catalog.v1 import catalog_service_pb2 as pb
from gavel_core.auth import Principal, Role
from gavel_core.errors import GavelError
from gavel_kit.logging import get_logger

log = get_logger("catalog.scheduler")

SCHEDULER = Principal("svc:catalog", frozenset({Role.SERVICE}), display_name="catalog lot scheduler")


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    lead: timedelta = timedelta(minutes=5)  # start lots whose estimated start is this close
    interval_s: float = 5.0  # how often to look
    batch: int = 200  # lots started per round at most
    enabled: bool = True
    # called after every round with the ids of the lots it started (tests wait on rounds with it)
    on_round: Callable[[list[str]], None] | None = None


class LotStartingScheduler:
    def __init__(
        self,
        uow_factory: Callable[[], CatalogUnitOfWork],
        start_lot: Callable[[pb.StartLotRequest, Principal], Awaitable[pb.StartLotResponse]],
        config: SchedulerConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow_factory = uow_factory
        self._start_lot = start_lot
        self._config = config
        self._clock = clock

    async def run(self) -> None:
        """Start due lots every interval, for the life of the process (a failed round is logged)."""
        while True:
            started: list[str] = []
            try:
                started = await self.tick()
            except Exception:
                log.exception("lot-starting round failed; trying again next round")
            if self._config.on_round is not None:
                self._config.on_round(started)
            await asyncio.sleep(self._config.interval_s)

    async def due(self) -> list[Lot]:
        until = self._clock() + self._config.lead
        due = LotFilter(
            viewer=Viewer(SCHEDULER.subject, sees_all_drafts=True),
            states=frozenset({State.SCHEDULED}),
            starts_before=until,
        )
        return await run(self._uow_factory(), lambda uow: uow.lots.list_scheduled(due, self._config.batch))

    async def tick(self) -> list[str]:
        """One round: start every due lot; return the ids of the lots this round started."""
        started = []
        for lot in await self.due():
            request = pb.StartLotRequest(request_id=f"lot-starting-{lot.id}", lot_id=lot.id)
            try:
                await self._start_lot(request, SCHEDULER)
            except GavelError as exc:  # a crier or another replica got there first
                log.info("lot not started", lot_id=lot.id, reason=exc.message)
                continue
            log.info("lot started", lot_id=lot.id, sale_id=lot.sale_id, estimated_start=str(lot.estimated_start))
            started.append(lot.id)
        return started
