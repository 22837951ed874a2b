"""hospital capability."""
