"""gigmatch: rank the freelancers who applied to a job post.

The domain package shared by the pipelines and the server: the data contract
(`schema`), the marketplace simulator, metrics, and the `gigmatch` CLI.
"""

__version__ = "0.1.0"
