"""Process life: the daemon, the APScheduler adapter, sd_notify, metrics, the lock."""
