"""One router per resource, mounted by ``api.app.create_app``."""
