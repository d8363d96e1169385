"""Analysis of songs and stems (no Qt)."""
