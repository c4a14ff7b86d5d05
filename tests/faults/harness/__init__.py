"""The fault suite's harness: sizes (profile), the figures recorder, the execution ledger
tally, a worker supervisor, load generators and Redis readers."""
