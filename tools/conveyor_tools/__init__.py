"""Development tools for Conveyor, kept out of the product package.

`conveyor dev` (`devrun`: the whole system on one machine, what `make run` starts) and
`conveyor bench` (`bench`: throughput, latency and cost measurements). They plug into the
`conveyor` command through the ``conveyor.commands`` entry point group, so they appear
once this distribution is installed next to `conveyor`; the container images install
`conveyor` alone.
"""
