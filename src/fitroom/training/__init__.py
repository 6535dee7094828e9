"""Training: losses now; the trainer (accelerate, mixed precision, accumulation, resume) comes next."""
