"""The FastAPI application: mounts every capability's routes and pages."""
