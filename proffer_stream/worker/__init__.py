"""The Faust worker: the app, its agents and timers. Scale out by running more."""
