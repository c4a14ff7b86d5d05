"""What every test's HTTP request to the API needs."""

from __future__ import annotations

# The API refuses (415) a POST, PUT, PATCH or DELETE that is not application/json, even
# one without a body: the header a body-less request must carry.
JSON = {"Content-Type": "application/json"}

TOKEN_VARIABLES = ("CONVEYOR_API_TOKENS", "CONVEYOR_API_READ_TOKENS", "CONVEYOR_API_TOKENS_FILE")


def open_unless_tokens(env: dict[str, str]) -> dict[str, str]:
    """`env` (changed in place) for an API process: open (``CONVEYOR_API_AUTH=none``)
    unless it configures a token or an auth mode itself; the API refuses to start with
    neither."""
    if "CONVEYOR_API_AUTH" not in env and not any(env.get(name) for name in TOKEN_VARIABLES):
        env["CONVEYOR_API_AUTH"] = "none"
    return env
