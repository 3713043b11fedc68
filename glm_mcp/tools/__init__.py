"""The tools: one module (a room) per tool or small family, and the modules they share."""
