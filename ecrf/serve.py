"""Serving under gunicorn (``ecrf serve`` and ``ecrf demo``)."""
from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, app, options):
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


def run(app, host, port, workers):
    """Serve ``app`` on host:port with ``workers`` processes (blocks until stopped)."""
    # Connections opened while setting up must not be shared with the forked workers.
    app.extensions["ecrf_db"].engine.dispose()
    _Server(app, {"bind": f"{host}:{port}", "workers": workers, "accesslog": "-",
                  "limit_request_line": 8190, "timeout": 60}).run()
