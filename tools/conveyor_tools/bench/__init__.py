"""`conveyor bench`: measure enqueue rate, drain rate, pickup latency and per-job cost.

Each module does one job: `server` (the Redis to measure against), `procs` (API and worker
subprocesses, their CPU time), `redisinfo` (INFO counters), `load` (enqueue phases),
`drain` (drain rate and cost), `latency` (pickup latency at a fixed offered load),
`memory` (bytes per waiting job), `verify` (every job completed exactly once), `report`
(table and JSON), `cli` (the command).
"""
