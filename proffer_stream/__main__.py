"""``python -m proffer_stream`` is the ``proffer-stream`` command."""

from proffer_stream.cli import main

raise SystemExit(main())
