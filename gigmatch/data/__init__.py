"""Stage 1, data: the marketplace's vocabulary, the data contract, the pinned snapshot and where it comes from.

taxonomy (skills, categories, regions), market (rules the simulator and the
features share), contract (every column once) and validation (the checks),
snapshot (read and write the Parquet tables), pinning (materialise what
data.dvc pins), client_import (a client's own tables), simulator/ (a seeded
marketplace).
"""
