"""What guards everything that leaves the process: secret scrubbing, value bounds, whole-file writes."""
