"""Calling the API as a script would: with a user's token in the Authorization header."""

import json

from django.test import Client

from crm.tokens import ApiToken


class ApiClient:
    def __init__(self, user):
        _token, self.secret = ApiToken.issue(user, "tests")
        self.client = Client()

    def headers(self, extra=None):
        return {"Authorization": f"Bearer {self.secret}", **(extra or {})}

    def get(self, path, **params):
        return self.client.get(path, params, headers=self.headers())

    def send(self, method, path, body=None, *, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(body or {}, default=str)
        return getattr(self.client, method)(path, data, content_type="application/json",
                                            headers=self.headers(headers))

    def post(self, path, body=None, **kwargs):
        return self.send("post", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.send("patch", path, body, **kwargs)

    def put(self, path, body=None, **kwargs):
        return self.send("put", path, body, **kwargs)
