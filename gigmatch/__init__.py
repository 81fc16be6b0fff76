"""gigmatch: rank the freelancers who applied to a job post.

One subpackage per stage of the lifecycle, in the order it runs: `data`,
`features`, `model`, `training`, `monitoring`, `repro`; a few shared modules
(`params`, `errors`, `settings`, `files`, `groups`); and `cli`, the `gigmatch`
command. A stage imports the ones before it, never one after (import-linter,
contracts in pyproject.toml).
"""

__version__ = "0.1.0"
