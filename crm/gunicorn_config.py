"""gunicorn's settings for `crm/serve web`. With LOG_FORMAT=json its own lines (start-up,
workers, errors) are JSON objects like the app's; requests are logged by the app
(crm.middleware.log_requests), so gunicorn's access log stays off."""

import os

if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "crm.logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                                 "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["console"],
                                       "propagate": False}},
    }
