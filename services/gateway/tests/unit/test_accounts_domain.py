"""Account values: emails, display names and role lists."""

import pytest

from gateway.domain.accounts import check_email, format_roles, normalise_email, parse_roles, roles_from_stored
from gavel_core.auth import Role
from gavel_core.errors import Violations


def test_emails_are_trimmed_and_lower_cased():
    assert normalise_email("  Ann@Example.COM ") == "ann@example.com"


@pytest.mark.parametrize("email", ["ann@example.com", "a.b+tag@sub.example.co.uk", "seller@gavel.local"])
def test_ordinary_emails_are_accepted(email):
    violations = Violations()
    check_email(email, violations)
    assert violations.items == []


@pytest.mark.parametrize("email", ["", "ann", "ann@", "@example.com", "ann@example", "a nn@example.com", "a@b@c.com"])
def test_things_that_are_not_emails_are_refused(email):
    violations = Violations()
    check_email(email, violations)
    assert [v.field for v in violations.items] == ["email"]


def test_roles_are_read_from_a_comma_list_in_any_case_and_spacing():
    violations = Violations()
    assert parse_roles(" Seller, bidder ,,", violations) == {Role.SELLER, Role.BIDDER}
    assert violations.items == []


def test_an_unknown_role_is_a_violation_naming_the_known_ones():
    violations = Violations()
    parse_roles("seller,emperor", violations)
    assert len(violations.items) == 1
    assert "'emperor'" in violations.items[0].description
    assert "sale_admin" in violations.items[0].description


def test_at_least_one_role_is_required():
    violations = Violations()
    parse_roles(" , ", violations)
    assert violations.items[0].description == "at least one role is required"


def test_roles_are_stored_sorted_and_read_back_ignoring_unknown_ones():
    assert format_roles({Role.SELLER, Role.BIDDER}) == "bidder,seller"
    assert roles_from_stored("bidder,retired_role,seller") == {Role.BIDDER, Role.SELLER}
