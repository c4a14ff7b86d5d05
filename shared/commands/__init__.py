"""Producer commands of `conveyor`: enqueue, get, cancel, replay, ls, queues, workers, purge,
pause, resume, limits (ls, set, rm: Redis only), schedules.

Each talks to Redis directly (`conveyor.client`, with the usual settings: ``--redis-url``,
``--key-prefix``, ``--config``...) or, given ``--api-url`` (or ``CONVEYOR_API_URL``), to a
Conveyor HTTP API (`conveyor.http_client`), with ``CONVEYOR_API_TOKEN`` as its bearer
token (``--api-token`` on the command line is refused: `ps` would show it), through the
one interface of both (`conveyor.client_api`). Output is a table for people, or with
``--json`` the API's JSON. ``retry`` is a hidden alias of ``replay``.

`COMMANDS` lists them; `conveyor.cli` adds them to the `conveyor` group (nothing here
imports it).

Exit status: 0 on success; 1 when the job does not exist, the change is refused (conflict),
the store or API cannot be reached or the API refuses the request; 2 for invalid input.
Errors are one line on stderr; tokens and Redis passwords are never printed.

The modules: `settings` (the settings flags), `options` (the shared flags), `backend`
(Redis-direct or HTTP), `failures` (errors as messages and exit statuses), `output`
(tables and JSON), and the commands themselves in `jobs`, `monitoring`, `maintenance`
(purge: Redis only) `pausing` (pause and resume a queue) and
`schedules` (periodic schedules: Redis only).
"""

from conveyor.commands.failures import FAILURE_EXIT as FAILURE_EXIT
from conveyor.commands.failures import USAGE_EXIT as USAGE_EXIT
from conveyor.commands.failures import CommandFailed as CommandFailed
from conveyor.commands.failures import InvalidInput as InvalidInput
from conveyor.commands.jobs import (
    cancel_command,
    enqueue_command,
    get_command,
    ls_command,
    replay_command,
    retry_alias,
)
from conveyor.commands.limits import limits_group
from conveyor.commands.maintenance import purge_command
from conveyor.commands.monitoring import queues_command, resize_command, workers_command
from conveyor.commands.options import API_TOKEN_ENV as API_TOKEN_ENV
from conveyor.commands.options import API_URL_ENV as API_URL_ENV
from conveyor.commands.options import client_options as client_options
from conveyor.commands.output import ERROR_WIDTH as ERROR_WIDTH
from conveyor.commands.output import QUEUE_COLUMNS as QUEUE_COLUMNS
from conveyor.commands.output import WORKER_COLUMNS as WORKER_COLUMNS
from conveyor.commands.pausing import pause_command, resume_command
from conveyor.commands.schedules import schedules_command

COMMANDS = (
    enqueue_command,
    get_command,
    cancel_command,
    replay_command,
    retry_alias,
    ls_command,
    queues_command,
    workers_command,
    resize_command,
    purge_command,
    pause_command,
    resume_command,
    limits_group,
    schedules_command,
)
