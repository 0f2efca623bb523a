"""How the gateway turns gRPC status codes and Gavel errors into HTTP statuses and its JSON error shape."""

import json

import grpc
import pytest

from gateway.adapters.http.errors import from_gavel_error, http_status_of
from gateway.app.accounts import InvalidCredentials
from gavel_core.errors import AlreadyExists, FailedPrecondition, FieldViolation, InvalidArgument


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.FAILED_PRECONDITION, 409),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.INTERNAL, 502),
        (grpc.StatusCode.UNKNOWN, 502),
        (grpc.StatusCode.UNIMPLEMENTED, 502),
        (grpc.StatusCode.DATA_LOSS, 502),
    ],
)
def test_grpc_codes_map_to_http_statuses(code, status):
    assert http_status_of(code) == status


def _body(response):
    return json.loads(response.body)["error"]


def test_an_invalid_argument_lists_each_field_violation():
    response = from_gavel_error(InvalidArgument([FieldViolation("email", "is required")]))
    assert response.status_code == 400
    assert _body(response) == {
        "code": "INVALID_ARGUMENT",
        "message": "email: is required",
        "reason": "",
        "metadata": {},
        "field_violations": [{"field": "email", "description": "is required"}],
    }


def test_a_failed_precondition_carries_its_reason_and_metadata():
    response = from_gavel_error(FailedPrecondition("BID_TOO_LOW", "too low", {"min_amount_minor": "100"}))
    assert response.status_code == 409
    assert _body(response)["reason"] == "BID_TOO_LOW"
    assert _body(response)["metadata"] == {"min_amount_minor": "100"}


def test_wrong_credentials_are_401_with_a_bearer_challenge():
    response = from_gavel_error(InvalidCredentials())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert _body(response)["reason"] == "INVALID_CREDENTIALS"


def test_an_existing_account_is_a_409_conflict():
    assert from_gavel_error(AlreadyExists("user", "a@b.co")).status_code == 409
