"""What a lot's format is and which parameters it takes — one definition for catalog and room.

Catalog validates and stores these when a seller configures a lot; the room and tender engines run
the lot with the very same values. Amounts are integer minor units in the lot's currency; durations
are integer milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gavel_core.errors import InvalidArgument, Violations
from gavel_core.increments import IncrementTable
from gavel_core.money import MAX_AMOUNT_MINOR, validate_currency

MAX_DURATION_MS = 90 * 24 * 3600 * 1000  # ninety days: longer than any tender we run
MAX_BASIS_POINTS = 10_000
MAX_ROUNDS = 100
MAX_LUCKY_OPTIONS = 64
MAX_DUTCH_STEPS = 1_000  # a seller's random-step list: one request field, so bounded


class Format(StrEnum):
    ENGLISH = "english"
    DUTCH = "dutch"
    LUCKY = "lucky"
    TENDER_OPEN = "tender_open"
    TENDER_SEALED_FIRST_PRICE = "tender_sealed_first_price"
    TENDER_SEALED_SECOND_PRICE = "tender_sealed_second_price"
    TENDER_BID_TICKET = "tender_bid_ticket"

    @property
    def is_live(self) -> bool:
        """Live formats run in a room; the others are timed tenders."""
        return self in (Format.ENGLISH, Format.DUTCH, Format.LUCKY)


class EnglishClose(StrEnum):
    """How an English lot ends."""

    HARD = "hard"  # at the deadline, no extension
    SOFT = "soft"  # hanging bid: a late bid extends the deadline, up to a cap
    CRIER = "crier"  # the crier hammers or passes
    ROUNDS = "rounds"  # a fixed number of timed bidding rounds


class SoftCloseMode(StrEnum):
    RESET = "reset"  # a late bid resets the remaining time to the window
    EXTEND = "extend"  # a late bid adds the window to the deadline


class DutchStepMode(StrEnum):
    FIXED = "fixed"
    # The seller's steps (`steps`, summing to the start price) or, with `random_steps`, the drop
    # from start to floor split into that many steps; either way presented in an order drawn
    # from the lot's seed.
    RANDOM = "random"


class LuckyWinningRule(StrEnum):
    """Who fixes the winning option. The room does (docs/auction-formats.md "Lucky pick")."""

    DRAWN = "drawn"  # the room draws it once per lot from its own secret and commits to it
    DRAWN_PER_WINDOW = "drawn_per_window"  # a fresh committed draw for every window
    # Retired: refused for new lots; kept so logs recorded before the room drew the option replay.
    FIXED = "fixed"  # the seller named it
    SEEDED = "seeded"  # derived from the lot's seed, which the seller can read


RETIRED_LUCKY_RULES = frozenset({LuckyWinningRule.FIXED, LuckyWinningRule.SEEDED})


@dataclass(frozen=True, slots=True)
class EnglishParams:
    opening_bid: int
    increments: IncrementTable
    reserve: int | None = None
    buy_now: int | None = None
    close: EnglishClose = EnglishClose.HARD
    duration_ms: int = 0  # bidding time from open (HARD and SOFT)
    rounds: int = 0  # ROUNDS only
    round_duration_ms: int = 0  # ROUNDS only
    soft_close_window_ms: int = 0  # SOFT: a bid this close to the end extends it
    soft_close_mode: SoftCloseMode = SoftCloseMode.RESET
    soft_close_max_extension_ms: int = 0  # SOFT: total extension cap (0 = no cap)
    vendor_may_accept: bool = False  # SOFT: the vendor may accept the standing bid while extended
    opening_call_reserve_bp: int = 0  # >0: the opening call is this fraction of the reserve, rounded to the increment
    reopen_grace_ms: int = 0  # CRIER: how long after a hammer the crier may reopen
    # ROUNDS: bids must beat the highest (the previous round's, then the round's) by an increment.
    # Off (the specification's rule): at or above it, and on equal bids the earlier one leads.
    rounds_beat_by_increment: bool = False


@dataclass(frozen=True, slots=True)
class DutchParams:
    start_price: int
    floor_price: int
    tick_ms: int
    step_mode: DutchStepMode = DutchStepMode.FIXED
    step: int = 0  # FIXED: the drop per tick
    random_steps: int = 0  # RANDOM without `steps`: how many ticks the drop from start to floor is split into
    steps: tuple[int, ...] = ()  # RANDOM: the seller's steps (a multiset summing to the start price)


@dataclass(frozen=True, slots=True)
class LuckyParams:
    options: tuple[str, ...]
    price: int
    window_ms: int
    winning_rule: LuckyWinningRule = LuckyWinningRule.DRAWN
    winning_option: int = 0  # retired (FIXED only): the seller's index into options; must be 0 otherwise


@dataclass(frozen=True, slots=True)
class TenderParams:
    start_price: int
    minimum_price: int | None = None  # the lowest price at which the leader becomes owner
    increment: int = 0  # open tender: a new bid must beat the leader by at least this
    soft_close_window_ms: int = 0
    soft_close_max_extension_ms: int = 0
    ticket_price: int = 0  # bid-ticket sales: the price of one ticket (one bid)
    ticket_step: int = 0  # bid-ticket sales: each bid raises the price by this fixed step


FormatParams = EnglishParams | DutchParams | LuckyParams | TenderParams


@dataclass(frozen=True, slots=True)
class LotTerms:
    """The format-independent terms of a lot."""

    currency: str
    format: Format
    params: FormatParams
    buyer_premium_bp: int = 0  # basis points of the hammer price
    tax_bp: int = 0  # basis points of hammer + premium
    confirmation_timeout_ms: int = 0  # 0: the winner need not confirm
    # Feeds every seeded choice (the Dutch random steps and their order), fixed per lot for replay.
    # The seller can read it, so nothing a seller must not predict (the lucky option) comes from it.
    seed: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def validate(self, prefix: str = "lot", *, allow_retired: bool = False) -> None:
        """Raise InvalidArgument listing every bad parameter, with dotted field paths under `prefix`.

        `allow_retired` accepts the retired lucky rules (FIXED, SEEDED): only for rebuilding a lot
        from a log recorded before they were retired, never for a lot being created or configured.
        """
        violations = Violations()
        try:
            validate_currency(self.currency, f"{prefix}.currency")
        except InvalidArgument as exc:  # collect rather than stop at the first problem
            violations.items.extend(exc.violations)
        _basis_points(violations, f"{prefix}.buyer_premium_bp", self.buyer_premium_bp)
        _basis_points(violations, f"{prefix}.tax_bp", self.tax_bp)
        _duration(violations, f"{prefix}.confirmation_timeout_ms", self.confirmation_timeout_ms)
        violations.require(0 <= self.seed < 2**63, f"{prefix}.seed", "seed must fit in a signed 64-bit integer")
        expected = _PARAMS_BY_FORMAT[self.format]
        if not isinstance(self.params, expected):
            violations.add(f"{prefix}.params", f"format {self.format.value} takes {expected.__name__}")
        elif isinstance(self.params, EnglishParams):
            _validate_english(violations, f"{prefix}.english", self.params)
        elif isinstance(self.params, DutchParams):
            _validate_dutch(violations, f"{prefix}.dutch", self.params)
        elif isinstance(self.params, LuckyParams):
            _validate_lucky(violations, f"{prefix}.lucky", self.params, allow_retired=allow_retired)
        else:
            _validate_tender(violations, f"{prefix}.tender", self.format, self.params)
        violations.raise_if_any()


_PARAMS_BY_FORMAT: dict[Format, type] = {
    Format.ENGLISH: EnglishParams,
    Format.DUTCH: DutchParams,
    Format.LUCKY: LuckyParams,
    Format.TENDER_OPEN: TenderParams,
    Format.TENDER_SEALED_FIRST_PRICE: TenderParams,
    Format.TENDER_SEALED_SECOND_PRICE: TenderParams,
    Format.TENDER_BID_TICKET: TenderParams,
}


MIN_DUTCH_TICK_MS = 250


def _amount(violations: Violations, path: str, value: int | None, *, positive: bool = False) -> None:
    if value is None:
        return
    if value < 0 or value > MAX_AMOUNT_MINOR or (positive and value == 0):
        violations.add(path, f"must be {'positive' if positive else 'non-negative'} and at most {MAX_AMOUNT_MINOR}")


def _duration(violations: Violations, path: str, value: int, *, positive: bool = False) -> None:
    if value < 0 or value > MAX_DURATION_MS or (positive and value == 0):
        violations.add(path, f"must be {'positive' if positive else 'non-negative'} milliseconds, at most 90 days")


def _basis_points(violations: Violations, path: str, value: int) -> None:
    violations.require(0 <= value <= MAX_BASIS_POINTS, path, "must be between 0 and 10000 basis points")


def _validate_english(v: Violations, p: str, e: EnglishParams) -> None:
    _amount(v, f"{p}.opening_bid", e.opening_bid, positive=True)
    _amount(v, f"{p}.reserve", e.reserve)
    _amount(v, f"{p}.buy_now", e.buy_now, positive=True)
    if e.buy_now is not None and e.buy_now < e.opening_bid:
        v.add(f"{p}.buy_now", "buy-now price must not be below the opening bid")
    if e.buy_now is not None and e.reserve is not None and e.buy_now < e.reserve:
        v.add(f"{p}.buy_now", "buy-now price must not be below the reserve")
    _duration(v, f"{p}.duration_ms", e.duration_ms, positive=e.close in (EnglishClose.HARD, EnglishClose.SOFT))
    _basis_points(v, f"{p}.opening_call_reserve_bp", e.opening_call_reserve_bp)
    if e.opening_call_reserve_bp and e.reserve is None:
        v.add(f"{p}.opening_call_reserve_bp", "an opening call derived from the reserve needs a reserve")
    _duration(v, f"{p}.reopen_grace_ms", e.reopen_grace_ms)
    if e.close is EnglishClose.ROUNDS:
        v.require(1 <= e.rounds <= MAX_ROUNDS, f"{p}.rounds", f"a round-limited auction has 1 to {MAX_ROUNDS} rounds")
        _duration(v, f"{p}.round_duration_ms", e.round_duration_ms, positive=True)
    else:
        v.require(not e.rounds, f"{p}.rounds", "rounds apply only to close=rounds")
        v.require(not e.rounds_beat_by_increment, f"{p}.rounds_beat_by_increment", "applies only to close=rounds")
    if e.close is EnglishClose.SOFT:
        _duration(v, f"{p}.soft_close_window_ms", e.soft_close_window_ms, positive=True)
        _duration(v, f"{p}.soft_close_max_extension_ms", e.soft_close_max_extension_ms)
    else:
        v.require(e.soft_close_window_ms == 0, f"{p}.soft_close_window_ms", "a soft-close window needs close=soft")
        v.require(not e.vendor_may_accept, f"{p}.vendor_may_accept", "vendor acceptance needs close=soft")


def _validate_dutch(v: Violations, p: str, d: DutchParams) -> None:
    _amount(v, f"{p}.start_price", d.start_price, positive=True)
    _amount(v, f"{p}.floor_price", d.floor_price)
    if d.floor_price >= d.start_price:
        v.add(f"{p}.floor_price", "the floor must be below the start price")
    _duration(v, f"{p}.tick_ms", d.tick_ms, positive=True)
    if 0 < d.tick_ms < MIN_DUTCH_TICK_MS:  # a 1 ms clock wrote hundreds of batches a second
        v.add(f"{p}.tick_ms", f"a Dutch clock ticks at most every {MIN_DUTCH_TICK_MS} ms")
    if d.step_mode is DutchStepMode.FIXED:
        _amount(v, f"{p}.step", d.step, positive=True)
        v.require(not d.steps, f"{p}.steps", "a list of steps needs step_mode=random")
    elif d.steps:
        _validate_supplied_steps(v, p, d)
    else:
        drop = d.start_price - d.floor_price
        v.require(
            1 <= d.random_steps <= max(drop, 1), f"{p}.random_steps", "random steps must be between 1 and the drop"
        )


def _validate_supplied_steps(v: Violations, p: str, d: DutchParams) -> None:
    """The specification's random steps: the seller composes the start price as a sum of steps."""
    v.require(d.random_steps == 0, f"{p}.random_steps", "give either steps or random_steps, not both")
    if not 2 <= len(d.steps) <= MAX_DUTCH_STEPS:
        v.add(f"{p}.steps", f"give 2 to {MAX_DUTCH_STEPS} steps")
        return
    bad = False
    for index, step in enumerate(d.steps):
        if not 0 < step <= MAX_AMOUNT_MINOR:
            v.add(f"{p}.steps[{index}]", f"a step must be positive and at most {MAX_AMOUNT_MINOR}")
            bad = True
    total = sum(d.steps)
    if not bad and total != d.start_price:
        v.add(f"{p}.steps", f"the steps must add up to the start price {d.start_price}; they add up to {total}")


def _validate_lucky(v: Violations, p: str, lucky: LuckyParams, *, allow_retired: bool) -> None:
    v.require(2 <= len(lucky.options) <= MAX_LUCKY_OPTIONS, f"{p}.options", f"offer 2 to {MAX_LUCKY_OPTIONS} options")
    for index, option in enumerate(lucky.options):
        v.require(0 < len(option.strip()) <= 200, f"{p}.options[{index}]", "an option is 1 to 200 characters")
    v.require(len(set(lucky.options)) == len(lucky.options), f"{p}.options", "options must be distinct")
    _amount(v, f"{p}.price", lucky.price, positive=True)
    _duration(v, f"{p}.window_ms", lucky.window_ms, positive=True)
    retired = lucky.winning_rule in RETIRED_LUCKY_RULES
    if retired and not allow_retired:
        v.add(
            f"{p}.winning_rule",
            f"{lucky.winning_rule.value} is retired: the room draws the winning option and publishes a commitment"
            " to it (use drawn or drawn_per_window)",
        )
    elif lucky.winning_rule is LuckyWinningRule.FIXED:
        v.require(0 <= lucky.winning_option < len(lucky.options), f"{p}.winning_option", "must index an option")
    if not retired:
        v.require(
            lucky.winning_option == 0,
            f"{p}.winning_option",
            "deprecated: the room draws the winning option, a seller may not choose it; leave it unset",
        )


def _validate_tender(v: Violations, p: str, fmt: Format, t: TenderParams) -> None:
    _amount(v, f"{p}.start_price", t.start_price)
    _amount(v, f"{p}.minimum_price", t.minimum_price)
    _amount(v, f"{p}.increment", t.increment)
    _duration(v, f"{p}.soft_close_window_ms", t.soft_close_window_ms)
    _duration(v, f"{p}.soft_close_max_extension_ms", t.soft_close_max_extension_ms)
    if fmt is Format.TENDER_BID_TICKET:
        _amount(v, f"{p}.ticket_price", t.ticket_price, positive=True)
        _amount(v, f"{p}.ticket_step", t.ticket_step, positive=True)
    else:
        v.require(
            t.ticket_price == 0 and t.ticket_step == 0, f"{p}.ticket_price", "tickets apply only to bid-ticket sales"
        )
    if fmt in (Format.TENDER_SEALED_FIRST_PRICE, Format.TENDER_SEALED_SECOND_PRICE):
        v.require(t.soft_close_window_ms == 0, f"{p}.soft_close_window_ms", "sealed tenders close hard")
