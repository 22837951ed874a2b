"""respond capability."""
