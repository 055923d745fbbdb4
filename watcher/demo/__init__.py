"""``watcher demo``: a simulated newsroom on loopback and the daemon watching it."""
