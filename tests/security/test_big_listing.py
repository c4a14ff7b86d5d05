"""Finding 4, second half: `GET /jobs?limit=500` used to return every payload and result in
full (60 jobs of 1 MB: a 62 MB response, +184 MB peak in the API, for a read-only token).

Now a listing leaves payload and result out unless `include` asks, and a page takes at
most max_list_bytes (8 MiB by default): a page of large jobs ends early with a cursor, and
the API reads the bulky fields only for the jobs that fit. Bound asserted: the API's peak
resident memory while it serves the listings grows by less than 6 x max_list_bytes
(measured: about 4.5 x; the stored values, their decoded form, their JSON and the joined
body each hold up to one page).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.system import System

JOBS = 60
PAYLOAD_CHARS = 1_000_000  # about 1 MB encoded, under the default max_payload_bytes
MAX_LIST_BYTES = 8 * 1024 * 1024  # the default
ENVELOPE = 1024


def _peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _reset_peak(pid: int) -> int:
    """Restart the peak count at the current resident size (clear_refs 5); the new peak."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _peak_kb(pid)


def test_a_listing_of_large_jobs_stays_under_its_byte_cap(closed: System, read_token: str) -> None:
    api = closed.start_api()
    pid = api.popen.pid
    payload = "p" * PAYLOAD_CHARS
    with httpx.Client(base_url=closed.api, timeout=60) as client:
        full = {"Authorization": f"Bearer {closed.token}"}
        for i in range(JOBS):
            created = client.post(
                "/jobs", json={"type": "echo", "payload": f"{i}:{payload}"}, headers=full
            )
            assert created.status_code == 201, created.text[:300]
        reader = {"Authorization": f"Bearer {read_token}"}

        baseline_kb = _reset_peak(pid)
        light = client.get("/jobs?limit=500", headers=reader)
        assert light.status_code == 200
        assert len(light.json()["items"]) == JOBS
        assert "payload" not in light.json()["items"][0]

        sizes: list[int] = []
        seen: list[str] = []
        cursor = None
        while True:
            query = "/jobs?limit=500&include=payload,result"
            page = client.get(query + (f"&cursor={cursor}" if cursor else ""), headers=reader)
            assert page.status_code == 200, page.text[:300]
            sizes.append(len(page.content))
            body = page.json()
            seen += [item["id"] for item in body["items"]]
            assert all(len(item["payload"]) > PAYLOAD_CHARS for item in body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
            assert len(sizes) <= JOBS, "the pages do not end"
        growth_kb = _peak_kb(pid) - baseline_kb

    figures = {
        "jobs": JOBS,
        "light_listing_bytes": len(light.content),
        "pages_with_payloads": len(sizes),
        "largest_page_bytes": max(sizes),
        "api_peak_growth_mb": round(growth_kb / 1024, 1),
    }
    print(figures)
    assert len(light.content) < 100 * 1024, figures
    assert sorted(seen) == sorted(set(seen))
    assert len(seen) == JOBS
    assert max(sizes) <= MAX_LIST_BYTES + ENVELOPE, figures
    assert growth_kb * 1024 < 6 * MAX_LIST_BYTES, figures
