"""``dssr check``'s parts: the checks, how they are ordered and skipped, how they print."""
