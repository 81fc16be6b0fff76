"""Scaling out: the stages that grow with the data, run on a Dask cluster, partitioned by job.

`engine.kind` in params.yaml picks the engine (in-process, the default, or Dask);
`GIGMATCH_DASK_ADDRESS` points the Dask engine at a running scheduler, otherwise a
`distributed.LocalCluster` sized to the machine is started for the command and stopped
after it (`cluster`). Every partition holds whole jobs (`partitions`): a job's candidates
are ranked against each other, so a job split over two partitions would be ranked wrong.
"""
