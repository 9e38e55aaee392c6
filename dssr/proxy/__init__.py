"""DSSR's proxy to interactive jobs' web apps, over forwarded SSH streams."""
