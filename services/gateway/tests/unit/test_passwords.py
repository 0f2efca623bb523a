"""The password hashing policy: scrypt with a per-user salt, parameters carried in the hash."""

import pytest

from gateway.app.passwords import PasswordHasher, ScryptCost, check_new_password
from gavel_core.errors import Violations

CHEAP = ScryptCost(log2_n=8)  # the real policy costs ~0.1 s a hash: too slow for unit tests


@pytest.fixture
def hasher():
    return PasswordHasher(CHEAP)


def test_a_hash_verifies_the_password_it_was_made_from(hasher):
    encoded = hasher.hash("correct horse")
    assert hasher.verify("correct horse", encoded)


def test_a_hash_refuses_any_other_password(hasher):
    encoded = hasher.hash("correct horse")
    assert not hasher.verify("correct horsE", encoded)
    assert not hasher.verify("", encoded)


def test_two_hashes_of_one_password_differ_because_each_has_its_own_salt(hasher):
    first, second = hasher.hash("same"), hasher.hash("same")
    assert first != second
    assert first.split("$")[3] != second.split("$")[3]
    assert hasher.verify("same", first)
    assert hasher.verify("same", second)


def test_the_encoded_hash_names_the_scheme_and_its_cost(hasher):
    assert hasher.hash("pw").startswith("$scrypt$ln=8,r=8,p=1$")


def test_the_hash_does_not_contain_the_password(hasher):
    assert "hunter2hunter2" not in hasher.hash("hunter2hunter2")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain-text",
        "$bcrypt$ln=8,r=8,p=1$c2FsdA$aGFzaA",
        "$scrypt$ln=8$c2FsdA$aGFzaA",
        "$scrypt$ln=8,r=8,p=1$!!$aGFzaA",
    ],
)
def test_a_malformed_hash_never_verifies(hasher, encoded):
    assert not hasher.verify("anything", encoded)


def test_a_hash_with_absurd_cost_is_refused_rather_than_computed(hasher):
    assert not hasher.verify("pw", "$scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")


def test_a_hash_made_under_another_cost_verifies_and_asks_for_a_rehash():
    old = PasswordHasher(ScryptCost(log2_n=6)).hash("pw")
    current = PasswordHasher(CHEAP)
    assert current.verify("pw", old)
    assert current.needs_rehash(old)
    assert not current.needs_rehash(current.hash("pw"))


def test_the_default_cost_is_scrypt_n_2_15_r_8_p_1():
    cost = PasswordHasher().cost
    assert (cost.log2_n, cost.r, cost.p) == (15, 8, 1)


@pytest.mark.parametrize(("password", "ok"), [("1234567", False), ("12345678", True), ("x" * 1025, False)])
def test_new_passwords_need_between_8_and_1024_characters(password, ok):
    violations = Violations()
    check_new_password(password, violations)
    assert (not violations.items) is ok
