"""The fitting-room service: a FastAPI app (``create_app``) with photo guidance, a garment catalogue, try-on jobs
that survive restarts, shoppers' ratings and the success rate, on SQLite (or PostgreSQL by URL)."""
