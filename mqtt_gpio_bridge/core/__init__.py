"""The run path's core: the one poll loop, its timers, and the wiring of every part."""
