"""One run: the Hydra task, the pipeline, training, schedules, recoveries, measurement."""
