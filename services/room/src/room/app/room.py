"""The room's use cases, run on the replica that owns the lot's partition.

Roles are enforced by each RPC's access option before a call gets here; what depends on the lot
is checked here: staff act only on the sales they are assigned to (crier and sale-admin commands,
floor devices; NOT_STAFF — site admins act on every sale), a seller never bids on their own lot
(OWN_LOT), only the lot's vendor (or its sale admin) takes vendor decisions, amounts are in the
lot's currency. Eligibility at bid time, failing closed: an approved registration for the sale when
the lot's sale requires one (NOT_REGISTERED), bans and bid limits from payment, seating for
multi-room products — resolved into the command's `standing`, which the engine refuses from; while
this replica has not caught up with those events, bid-like commands are UNAVAILABLE. Every
mutating call carries its request id, which is also the command id in the lot's log: a repeat is
answered from the log, never decided twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gavel_core.auth import Principal, Role
from gavel_core.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied, Unavailable
from gavel_core.money import MAX_AMOUNT_MINOR as MAX_AMOUNT
from room.app.eligibility import EligibilityBook
from room.app.lots import CommandRequest, LotActor, LotDirectory, WithdrawLot
from room.app.model import LotInfo, LotView, PublishedLot, Receipt
from room.app.ports import PaddleRegistry, Registrations, Seating, Staff
from room.app.views import lot_view
from room.domain import (
    GOOD_STANDING,
    BidderStanding,
    BuyNow,
    CallGoingOnce,
    CallGoingTwice,
    Command,
    ConfirmWin,
    DeclineWin,
    FloorBid,
    Hammer,
    OpenLot,
    PassLot,
    Pause,
    PickOption,
    PlaceBid,
    Reopen,
    Resume,
    SetAsking,
    SetIncrement,
    UndoLastBid,
    VendorAccept,
    VendorDecline,
)

OWN_LOT = "OWN_LOT"
NOT_VENDOR = "NOT_VENDOR"
NOT_STAFF = "NOT_STAFF"
NOT_REGISTERED = "NOT_REGISTERED"
MAX_REQUEST_ID = 128
# Request ids travel in NATS headers and logs: a safe charset (UUIDs, ULIDs and the like fit).
REQUEST_ID = re.compile(r"^[A-Za-z0-9._~:+=-]{1,128}$")
MAX_FORCE = 1_000  # the device's full scale
MAX_PRESS_MS = 60_000
MAX_PADDLE = 32
MAX_REASON = 500
CRIER, CLERK, SALE_ADMIN = "crier", "clerk", "sale_admin"
_PLATFORM_ROLES = {CRIER: Role.CRIER, CLERK: Role.DEVICE, SALE_ADMIN: Role.SALE_ADMIN}

# What the crier (or a sale admin) may do, by RPC name.
CRIER_COMMANDS = {
    "GoingOnce": CallGoingOnce,
    "GoingTwice": CallGoingTwice,
    "Hammer": Hammer,
    "Pass": PassLot,
    "Reopen": Reopen,
    "UndoLastBid": UndoLastBid,
    "Pause": Pause,
    "Resume": Resume,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """An accepted command's answer plus the lot as it stands now."""

    receipt: Receipt
    view: LotView


def _view(actor: LotActor) -> LotView:
    assert actor.info is not None
    assert actor.engine is not None
    assert actor.state is not None
    return lot_view(actor.info, actor.engine, actor.state, actor.lot_sequence)


def require_request_id(request_id: str) -> str:
    if not REQUEST_ID.match(request_id):
        raise InvalidArgument(
            [
                FieldViolation(
                    "request_id",
                    f"1 to {MAX_REQUEST_ID} letters, digits or . _ ~ : + = - (a UUID), unique per request",
                )
            ]
        )
    return request_id


def command_id(caller: Principal, request_id: str) -> str:
    """A request id is the caller's own: scoped by who sent it, the same id from two callers is two
    requests (and nobody can spoil another's request by using its id first)."""
    return f"{require_request_id(request_id)}@{caller.subject}"


def require_amount(amount: int, field: str, max_amount: int) -> None:
    if not 0 < amount <= max_amount:
        raise InvalidArgument([FieldViolation(f"{field}.amount_minor", f"must be 1 to {max_amount} minor units")])


def require_currency(actor: LotActor, currency: str, field: str) -> None:
    assert actor.engine is not None
    expected = actor.engine.terms.currency
    if currency and currency != expected:
        raise InvalidArgument([FieldViolation(f"{field}.currency", f"this lot is in {expected}")])


def no_answer_yet() -> Unavailable:
    return Unavailable("this room replica is still catching up on eligibility (bans, registrations); retry")


class StaffRules:
    """Staff act only on the sales they are assigned to; site admins on every sale (NOT_STAFF)."""

    def __init__(self, staff: Staff) -> None:
        self._staff = staff

    async def require(self, caller: Principal, sale_id: str, *roles: str) -> None:
        if caller.has(Role.SITE_ADMIN):
            return
        for role in roles:
            if caller.has(_PLATFORM_ROLES[role]) and await self._staff.holds(sale_id, caller.subject, role):
                return
        wanted = " or ".join(role.replace("_", " ") for role in roles)
        raise PermissionDenied(f"only a {wanted} assigned to sale {sale_id!r} may do this", reason=NOT_STAFF)


class RoomService:
    def __init__(
        self,
        lots: LotDirectory,
        eligibility: EligibilityBook,
        seating: Seating,
        paddles: PaddleRegistry,
        registrations: Registrations,
        staff: Staff,
        caught_up: Callable[[], bool] = lambda: True,
    ) -> None:
        self.lots = lots
        self._eligibility = eligibility
        self._seating = seating
        self._paddles = paddles
        self._registrations = registrations
        self.staff = StaffRules(staff)
        self._caught_up = caught_up

    # -- bidders --------------------------------------------------------------------------------------

    async def place_bid(
        self, caller: Principal, lot_id: str, request_id: str, amount: int, currency: str, fingerprint: str
    ) -> Receipt:
        scoped = command_id(caller, request_id)
        require_amount(amount, "max_amount", MAX_AMOUNT)
        actor = await self.lots.loaded(lot_id)
        repeat = actor.receipt_for(scoped, fingerprint)
        if repeat is not None:
            return repeat
        require_currency(actor, currency, "max_amount")
        standing = await self._standing(caller, actor)
        command = PlaceBid(request_id, caller.subject, amount, standing)
        return await actor.execute(CommandRequest(scoped, "PlaceBid", caller.subject, fingerprint, command))

    async def buy_now(self, caller: Principal, lot_id: str, request_id: str, fingerprint: str) -> Outcome:
        scoped = command_id(caller, request_id)
        actor = await self.lots.loaded(lot_id)
        standing = await self._standing(caller, actor)
        command = BuyNow(request_id, caller.subject, standing)
        return await self._run(actor, CommandRequest(scoped, "BuyNow", caller.subject, fingerprint, command))

    async def pick_option(
        self, caller: Principal, lot_id: str, request_id: str, option: int, fingerprint: str
    ) -> Outcome:
        scoped = command_id(caller, request_id)
        actor = await self.lots.loaded(lot_id)
        standing = await self._standing(caller, actor)
        command = PickOption(request_id, caller.subject, option, standing)
        return await self._run(actor, CommandRequest(scoped, "PickOption", caller.subject, fingerprint, command))

    async def confirm_win(self, caller: Principal, lot_id: str, request_id: str, fingerprint: str) -> Outcome:
        return await self._simple(caller, lot_id, request_id, "ConfirmWin", ConfirmWin(caller.subject), fingerprint)

    async def decline_win(self, caller: Principal, lot_id: str, request_id: str, fingerprint: str) -> Outcome:
        return await self._simple(caller, lot_id, request_id, "DeclineWin", DeclineWin(caller.subject), fingerprint)

    # -- the floor ------------------------------------------------------------------------------------

    async def floor_bid(
        self,
        device: Principal,
        lot_id: str,
        request_id: str,
        paddle: str,
        force: int,
        press_ms: int,
        fingerprint: str,
    ) -> Outcome:
        """A paddle press on a device. The paddle's bidder must be in good standing; floor bidders
        are in the room itself, so seating (which room of a multi-room product) does not apply."""
        scoped = command_id(device, request_id)
        violations = []
        if not 1 <= len(paddle) <= MAX_PADDLE:
            violations.append(FieldViolation("paddle", f"1 to {MAX_PADDLE} characters"))
        if not 0 <= force <= MAX_FORCE:
            violations.append(FieldViolation("force", f"0 to {MAX_FORCE} (the device's full scale)"))
        if not 0 <= press_ms <= MAX_PRESS_MS:
            violations.append(FieldViolation("press_ms", f"0 to {MAX_PRESS_MS}"))
        if violations:
            raise InvalidArgument(violations)
        actor = await self.lots.loaded(lot_id)
        repeat = actor.receipt_for(scoped, fingerprint)
        if repeat is not None:
            return Outcome(repeat, await actor.read(_view))
        info = self._info(actor)
        await self.staff.require(device, info.sale_id, CLERK)
        if not self._caught_up():
            raise no_answer_yet()
        bidder = await self._paddles.bidder_for(info.sale_id, paddle)
        if bidder is None:
            raise FailedPrecondition(
                "PADDLE_NOT_REGISTERED",
                f"paddle {paddle!r} is not registered for this sale",
                {"paddle": paddle, "sale_id": info.sale_id},
            )
        if bidder == info.seller_id:
            raise PermissionDenied("a seller may not bid on their own lot", reason=OWN_LOT)
        standing = self._book_standing(bidder, actor, seated=True)
        command = FloorBid(request_id, bidder, paddle, device.subject, force, press_ms, standing)
        return await self._run(actor, CommandRequest(scoped, "FloorBid", device.subject, fingerprint, command))

    # -- the vendor -----------------------------------------------------------------------------------

    async def vendor_accept(self, caller: Principal, lot_id: str, request_id: str, fingerprint: str) -> Outcome:
        scoped = command_id(caller, request_id)
        actor = await self.lots.loaded(lot_id)
        await self._require_vendor(caller, actor)
        request = CommandRequest(scoped, "AcceptByVendor", caller.subject, fingerprint, VendorAccept(caller.subject))
        return await self._run(actor, request)

    async def vendor_decline(self, caller: Principal, lot_id: str, request_id: str, fingerprint: str) -> Outcome:
        scoped = command_id(caller, request_id)
        actor = await self.lots.loaded(lot_id)
        await self._require_vendor(caller, actor)
        command = VendorDecline(caller.subject)
        return await self._run(actor, CommandRequest(scoped, "DeclineByVendor", caller.subject, fingerprint, command))

    # -- the crier ------------------------------------------------------------------------------------

    async def open_lot(
        self, caller: Principal, lot_id: str, request_id: str, asking: int | None, currency: str, fingerprint: str
    ) -> Outcome:
        scoped = command_id(caller, request_id)
        if asking is not None:
            require_amount(asking, "asking", MAX_AMOUNT)
        actor = await self._crier_lot(caller, lot_id)
        if asking is not None:
            require_currency(actor, currency, "asking")
        command = OpenLot(caller.subject, asking)
        return await self._run(actor, CommandRequest(scoped, "OpenLot", caller.subject, fingerprint, command))

    async def set_asking(
        self, caller: Principal, lot_id: str, request_id: str, amount: int, currency: str, fingerprint: str
    ) -> Outcome:
        scoped = command_id(caller, request_id)
        require_amount(amount, "asking", MAX_AMOUNT)
        actor = await self._crier_lot(caller, lot_id)
        require_currency(actor, currency, "asking")
        command = SetAsking(caller.subject, amount)
        return await self._run(actor, CommandRequest(scoped, "SetAsking", caller.subject, fingerprint, command))

    async def set_increment(
        self, caller: Principal, lot_id: str, request_id: str, amount: int | None, currency: str, fingerprint: str
    ) -> Outcome:
        scoped = command_id(caller, request_id)
        if amount is not None:
            require_amount(amount, "increment", MAX_AMOUNT)
        actor = await self._crier_lot(caller, lot_id)
        if amount is not None:
            require_currency(actor, currency, "increment")
            asking = actor.state.asking if actor.state is not None and hasattr(actor.state, "asking") else 0
            if isinstance(asking, int) and asking + amount > MAX_AMOUNT:
                raise InvalidArgument(
                    [FieldViolation("increment.amount_minor", f"the asking price would pass {MAX_AMOUNT} minor units")]
                )
        command = SetIncrement(caller.subject, amount)
        return await self._run(actor, CommandRequest(scoped, "SetIncrement", caller.subject, fingerprint, command))

    async def crier(self, caller: Principal, lot_id: str, request_id: str, action: str, fingerprint: str) -> Outcome:
        """GoingOnce, GoingTwice, Hammer, Pass, Reopen, UndoLastBid, Pause, Resume."""
        command_type = CRIER_COMMANDS[action]
        scoped = command_id(caller, request_id)
        actor = await self._crier_lot(caller, lot_id)
        request = CommandRequest(scoped, action, caller.subject, fingerprint, command_type(caller.subject))
        return await self._run(actor, request)

    async def withdraw(self, caller: Principal, lot_id: str, request_id: str, reason: str, fingerprint: str) -> Outcome:
        """A sale admin stops a lot that has not ended (any format, any phase): audited in the log."""
        scoped = command_id(caller, request_id)
        if not reason.strip() or len(reason) > MAX_REASON:
            raise InvalidArgument([FieldViolation("reason", f"1 to {MAX_REASON} characters: why the lot is stopped")])
        actor = await self.lots.loaded(lot_id)
        await self.staff.require(caller, self._info(actor).sale_id, SALE_ADMIN)
        command = WithdrawLot(caller.subject, reason.strip())
        return await self._run(actor, CommandRequest(scoped, "Withdraw", caller.subject, fingerprint, command))

    # -- lots coming from the catalog ---------------------------------------------------------------

    async def start(self, published: PublishedLot) -> Receipt | None:
        """The catalog started a lot (LotStarting): run it from its published terms and open it,
        unless a crier runs it (the crier opens crier lots) or it is already open."""
        return await self.lots.start(published)

    async def withdraw_from_catalog(self, published: PublishedLot, reason: str) -> None:
        """The catalog withdrew a lot (or cancelled its sale) before it started: it ends here too."""
        await self.lots.withdraw(published, reason)

    # -- reads ----------------------------------------------------------------------------------------

    async def lot_state(self, lot_id: str) -> LotView:
        actor = await self.lots.loaded(lot_id)
        return await actor.read(_view)

    # -- helpers --------------------------------------------------------------------------------------

    async def _simple(
        self, caller: Principal, lot_id: str, request_id: str, name: str, command: Command, fingerprint: str
    ) -> Outcome:
        scoped = command_id(caller, request_id)
        actor = await self.lots.loaded(lot_id)
        return await self._run(actor, CommandRequest(scoped, name, caller.subject, fingerprint, command))

    async def _run(self, actor: LotActor, request: CommandRequest) -> Outcome:
        receipt = await actor.execute(request)
        return Outcome(receipt, await actor.read(_view))

    @staticmethod
    def _info(actor: LotActor) -> LotInfo:
        assert actor.info is not None
        return actor.info

    async def _crier_lot(self, caller: Principal, lot_id: str) -> LotActor:
        actor = await self.lots.loaded(lot_id)
        await self.staff.require(caller, self._info(actor).sale_id, CRIER, SALE_ADMIN)
        return actor

    async def _require_vendor(self, caller: Principal, actor: LotActor) -> None:
        info = self._info(actor)
        if caller.subject == info.seller_id:
            return
        if not caller.has(Role.SALE_ADMIN, Role.SITE_ADMIN):
            raise PermissionDenied("only the lot's vendor or a sale admin may decide", reason=NOT_VENDOR)
        await self.staff.require(caller, info.sale_id, SALE_ADMIN)

    def _book_standing(self, bidder: str, actor: LotActor, *, seated: bool) -> BidderStanding:
        info = self._info(actor)
        assert actor.engine is not None
        banned = self._eligibility.is_banned(bidder, info.sale_id)
        limit = self._eligibility.bid_limit(bidder, info.sale_id, actor.engine.terms.currency)
        if not banned and seated and limit is None:
            return GOOD_STANDING
        return BidderStanding(banned=banned, seated=seated, bid_limit_minor=limit)

    async def _standing(self, caller: Principal, actor: LotActor) -> BidderStanding:
        info = self._info(actor)
        if caller.subject == info.seller_id:
            raise PermissionDenied("a seller may not bid on their own lot", reason=OWN_LOT)
        if not self._caught_up():
            raise no_answer_yet()
        if info.registration_required and not await self._registrations.approved(info.sale_id, caller.subject):
            raise FailedPrecondition(
                NOT_REGISTERED,
                f"register for sale {info.sale_id!r} and be approved first",
                {"sale_id": info.sale_id},
            )
        seated = True
        if info.multi_room and not self._eligibility.is_banned(caller.subject, info.sale_id):
            seated = await self._seating.is_seated(info, caller.subject)
        return self._book_standing(caller.subject, actor, seated=seated)
