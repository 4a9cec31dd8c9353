"""Running trials, for ablations and searches alike: the executors (Ray, or this process), the
trial a worker runs, teachers' logits, progress lines, and interrupts that leave MLflow true.
Nothing here knows tables or studies: the ablation and search drivers hand it trial specs."""
