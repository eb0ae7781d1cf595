"""What every package shares: settings, types, ids, errors, retry and metrics. No I/O."""
