"""Activities: everything that touches the outside world (files, clocks, people, channels)."""
