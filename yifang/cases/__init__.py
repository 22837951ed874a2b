"""The national infectious-disease report card (传染病报告卡): validation, review workflow,
duplicates and import with quarantine."""
