"""What every test's HTTP request to the API needs."""

from __future__ import annotations

# The API refuses (415) a POST, PUT, PATCH or DELETE that is not application/json, even
# one without a body: the header a body-less request must carry.
JSON = {"Content-Type": "application/json"}
