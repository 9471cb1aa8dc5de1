from crm.tokens import ApiToken, digest
from tests.api_client import ApiClient
from tests.factories import BdrFactory, RepFactory, UserFactory


def test_token_page_shows_the_new_secret_once_and_stores_only_its_hash(client, db):
    rep = RepFactory()
    client.force_login(rep)
    response = client.post("/account/tokens/", {"name": "Nightly export"})
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.encode() in response.content
    token = ApiToken.objects.get(user=rep)
    assert token.digest == digest(secret) and secret not in token.digest
    assert secret.encode() not in client.get("/account/tokens/").content
    assert b"Nightly export" in client.get("/account/tokens/").content


def test_a_token_without_a_name_is_refused_with_a_message(client, db):
    client.force_login(RepFactory())
    response = client.post("/account/tokens/", {"name": ""})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_a_token_acts_as_its_user_and_notes_when_it_was_used(db):
    rep = RepFactory(username="rita")
    api = ApiClient(rep)
    response = api.get("/api/me")
    assert response.status_code == 200
    assert response.json()["username"] == "rita" and response.json()["roles"] == ["rep"]
    assert ApiToken.objects.get(user=rep).last_used_at is not None


def test_a_revoked_token_is_refused_from_then_on(client, db):
    rep = RepFactory()
    api = ApiClient(rep)
    token = ApiToken.objects.get(user=rep)
    client.force_login(rep)
    response = client.post(f"/account/tokens/{token.pk}/revoke/")
    assert response.status_code == 200
    assert api.get("/api/me").status_code == 401
    assert ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=False).exists()


def test_nobody_revokes_another_users_token(client, db):
    api = ApiClient(RepFactory())
    token = ApiToken.objects.get()
    client.force_login(BdrFactory())
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    assert api.get("/api/me").status_code == 200


def test_unknown_missing_and_deactivated_users_tokens_are_refused(db):
    rep = RepFactory()
    api = ApiClient(rep)
    assert api.client.get("/api/me").status_code == 401
    assert api.client.get("/api/me", headers={"Authorization": "Bearer prg_nope"}
                          ).status_code == 401
    rep.is_active = False
    rep.save()
    assert api.get("/api/me").status_code == 401


def test_the_token_page_speaks_german(client, db):
    client.force_login(RepFactory(language="de"))
    response = client.get("/account/tokens/", headers={"Accept-Language": "de"})
    assert b"API-Token" in response.content


def test_a_superuser_revokes_a_leavers_tokens_in_the_admin_without_seeing_secrets(client, db):
    rep = RepFactory()
    api = ApiClient(rep)
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    listing = client.get("/admin/crm/apitoken/")
    assert listing.status_code == 200 and api.secret.encode() not in listing.content
    token = ApiToken.objects.get(user=rep)
    response = client.post("/admin/crm/apitoken/", {
        "action": "revoke_selected", "_selected_action": [token.pk]})
    assert response.status_code == 302
    assert api.get("/api/me").status_code == 401
