"""Login, registration and account upserts against an in-memory repository."""

import datetime as dt
import itertools

import pytest

from gateway.app.accounts import AccountGone, Accounts, InvalidCredentials
from gateway.app.passwords import PasswordHasher, ScryptCost
from gavel_core.auth import Principal, Role
from gavel_core.errors import AlreadyExists, InvalidArgument

NOW = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)


class FakeUsers:
    def __init__(self):
        self.by_id = {}
        self.revocations = []

    async def get(self, user_id):
        return self.by_id.get(user_id)

    async def get_by_email(self, email):
        return next((u for u in self.by_id.values() if u.email == email), None)

    async def add(self, user):
        if await self.get_by_email(user.email) is not None:
            raise AlreadyExists("user", user.email)
        self.by_id[user.id] = user

    async def update(self, user, revocation=None):
        self.by_id[user.id] = user
        if revocation is not None:
            self.revocations.append(revocation)


class FakeTokens:
    def __init__(self):
        self.issued = []

    def issue(self, subject, roles, display_name="", ttl_s=300):
        self.issued.append((subject, frozenset(roles), display_name, ttl_s))
        return f"token-for-{subject}"


@pytest.fixture
def users():
    return FakeUsers()


@pytest.fixture
def tokens():
    return FakeTokens()


@pytest.fixture
def accounts(users, tokens):
    ids = (f"user-{n}" for n in itertools.count(1))
    return Accounts(
        users,
        PasswordHasher(ScryptCost(log2_n=8)),
        tokens,
        token_ttl_s=900,
        clock=lambda: NOW,
        new_id=lambda: next(ids),
    )


async def test_a_saved_user_logs_in_and_gets_a_token_with_their_roles(accounts, tokens):
    await accounts.save_user("seller@gavel.local", "s3cret", "Sam", "seller,bidder")
    session = await accounts.login("seller@gavel.local", "s3cret")
    assert session.access_token == "token-for-user-1"
    assert session.expires_in == 900
    assert session.user.email == "seller@gavel.local"
    assert tokens.issued == [("user-1", frozenset({Role.SELLER, Role.BIDDER}), "Sam", 900)]


async def test_login_ignores_the_letter_case_and_spaces_of_the_email(accounts):
    await accounts.save_user("ann@example.com", "s3cret", "Ann", "bidder")
    session = await accounts.login("  ANN@Example.com ", "s3cret")
    assert session.user.id == "user-1"


async def test_a_wrong_password_is_refused_as_invalid_credentials(accounts):
    await accounts.save_user("ann@example.com", "s3cret", "Ann", "bidder")
    with pytest.raises(InvalidCredentials) as caught:
        await accounts.login("ann@example.com", "S3cret")
    assert caught.value.reason == "INVALID_CREDENTIALS"


async def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(accounts):
    await accounts.save_user("ann@example.com", "s3cret", "Ann", "bidder")
    with pytest.raises(InvalidCredentials) as unknown:
        await accounts.login("bob@example.com", "s3cret")
    with pytest.raises(InvalidCredentials) as wrong:
        await accounts.login("ann@example.com", "nope")
    assert unknown.value.message == wrong.value.message


async def test_saving_an_existing_email_updates_name_password_and_roles_instead_of_duplicating(accounts, users):
    first, created = await accounts.save_user("ann@example.com", "old-password", "Ann", "bidder")
    assert created
    second, created_again = await accounts.save_user("ANN@example.com", "new-password", "Ann B.", "seller")
    assert not created_again
    assert second.id == first.id
    assert (second.display_name, second.roles) == ("Ann B.", {Role.SELLER})
    assert len(users.by_id) == 1
    await accounts.login("ann@example.com", "new-password")
    with pytest.raises(InvalidCredentials):
        await accounts.login("ann@example.com", "old-password")


async def test_saving_a_user_reports_every_bad_field_at_once(accounts):
    with pytest.raises(InvalidArgument) as caught:
        await accounts.save_user("not-an-email", "", " ", "king")
    assert {v.field for v in caught.value.violations} == {"email", "password", "display_name", "roles"}


async def test_self_registration_creates_a_bidder_who_then_logs_in(accounts, users):
    assert await accounts.register("New@Example.com", "long-enough", "Nora") is None
    (user,) = users.by_id.values()
    assert user.roles == {Role.BIDDER}
    assert user.email == "new@example.com"
    assert user.created_at == NOW
    assert user.password_hash.startswith("$scrypt$")
    assert (await accounts.login("new@example.com", "long-enough")).user.id == user.id


async def test_self_registration_names_the_user_after_their_email_when_no_name_is_given(accounts, users):
    await accounts.register("nora@example.com", "long-enough")
    assert next(iter(users.by_id.values())).display_name == "nora"


async def test_self_registration_of_a_taken_email_answers_the_same_and_leaves_the_account_alone(accounts, users):
    ann, _ = await accounts.save_user("ann@example.com", "s3cret", "Ann", "seller")
    assert await accounts.register("ann@example.com", "long-enough", "Impostor") is None
    assert users.by_id == {ann.id: ann}


async def test_self_registration_applies_the_password_policy(accounts):
    with pytest.raises(InvalidArgument) as caught:
        await accounts.register("ann@example.com", "short", "Ann")
    assert [v.field for v in caught.value.violations] == ["password"]


async def test_a_hash_from_an_older_cost_policy_is_upgraded_at_the_next_login(users, tokens):
    old = Accounts(
        users, PasswordHasher(ScryptCost(log2_n=6)), tokens, token_ttl_s=60, clock=lambda: NOW, new_id=lambda: "u1"
    )
    await old.save_user("ann@example.com", "s3cret", "Ann", "bidder")
    new = Accounts(
        users, PasswordHasher(ScryptCost(log2_n=8)), tokens, token_ttl_s=60, clock=lambda: NOW, new_id=lambda: "u2"
    )
    await new.login("ann@example.com", "s3cret")
    assert users.by_id["u1"].password_hash.startswith("$scrypt$ln=8,")
    await new.login("ann@example.com", "s3cret")


async def test_me_is_the_account_of_the_token_subject(accounts):
    user, _ = await accounts.save_user("ann@example.com", "s3cret", "Ann", "bidder")
    assert await accounts.me(Principal(subject=user.id, roles=frozenset({Role.BIDDER}))) == user


async def test_me_refuses_a_token_whose_account_is_gone_or_is_a_service(accounts):
    with pytest.raises(AccountGone):
        await accounts.me(Principal(subject="deleted-user", roles=frozenset()))
    with pytest.raises(AccountGone):
        await accounts.me(Principal(subject="svc:room", roles=frozenset({Role.SERVICE})))
