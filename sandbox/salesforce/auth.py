"""OAuth 2.0 for the Salesforce side: the token endpoint and the bearer check on API calls.

``POST /services/oauth2/token`` grants tokens for the JWT bearer flow, client credentials,
username-password and refresh tokens, with Salesforce's error bodies
(``{"error": ..., "error_description": ...}``). Tokens expire after ``faults.token_ttl``
seconds or when ``faults`` revokes every token; an API call with an unknown or expired token
answers 401 ``INVALID_SESSION_ID``. Every authorised API call is counted against the daily
allocation; beyond it calls answer 403 ``REQUEST_LIMIT_EXCEEDED``.
"""

from __future__ import annotations

import base64
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import jwt

from sandbox.http import Request, Response, json_response
from sandbox.salesforce.state import ORG_ID, USER_ID, SalesforceState, errors

OAUTH_ENDPOINT = "/services/oauth2/token"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class Auth:
    """The token endpoint and the bearer check."""

    def __init__(self, state: SalesforceState) -> None:
        self.state = state

    def authorize(self, req: Request) -> Response | None:
        """None when the bearer token is valid and the budget allows one more call (counted)."""
        st = self.state
        auth = req.headers.get("authorization", "")
        token = auth.split(" ", 1)[1].strip() if " " in auth else ""
        issued = st.tokens.get(token)
        if (
            issued is None
            or issued[1] < st.faults.token_epoch
            or time.monotonic() - issued[0] > st.faults.token_ttl
        ):
            return errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with st.lock:
            if st.api_used >= st.faults.api_limit:
                return errors(
                    403,
                    "REQUEST_LIMIT_EXCEEDED",
                    "TotalRequests Limit exceeded.",
                    st.limit_header(),
                )
            st.api_used += 1
        return None

    def _issue(self) -> Response:
        st = self.state
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(48)}"
        with st.lock:
            st.tokens[token] = (time.monotonic(), st.faults.token_epoch)
        st.counter.add_key("salesforce.token")  # logins do not count against the API budget
        issued_at = str(int(time.time() * 1000))
        return json_response(
            200,
            {
                "access_token": token,
                "instance_url": st.base_url(),
                "id": f"{st.base_url()}/id/{ORG_ID}/{USER_ID}",
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
                "scope": "api",
            },
        )

    def token(self, req: Request) -> Response:
        """``POST /services/oauth2/token``: JWT bearer, client credentials, password, refresh."""
        form = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        form.update({k: v for k, v in req.query.items() if k not in form})
        grant = form.get("grant_type", "")
        if grant == _JWT_BEARER:
            return self._jwt_bearer(form.get("assertion", ""))
        if grant == "client_credentials":
            return self._client_credentials(form)
        if grant == "password":
            return self._password(form)
        if grant == "refresh_token":
            return self._refresh_token(form)
        return _fail("unsupported_grant_type", "grant type not supported")

    def _jwt_bearer(self, assertion: str) -> Response:
        creds = self.state.creds
        try:
            claims = jwt.decode(
                assertion,
                creds.jwt_public_key,
                algorithms=["RS256"],
                options={"require": ["exp", "iss", "sub", "aud"], "verify_aud": False},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            return _fail("invalid_grant", "expired authorization code")
        except jwt.PyJWTError:
            return _fail("invalid_grant", "invalid assertion")
        if claims.get("iss") != creds.client_id:
            return _fail("invalid_client_id", "client identifier invalid")
        if claims.get("sub") != creds.username:
            return _fail("invalid_grant", "user hasn't approved this consumer")
        aud = str(claims.get("aud", "")).rstrip("/")
        base_url = self.state.base_url()
        allowed = {
            base_url.rstrip("/"),
            urlsplit(base_url).netloc,
            "https://login.salesforce.com",
            "https://test.salesforce.com",
        }
        if aud not in allowed:
            return _fail("invalid_grant", "audience is invalid")
        exp = float(claims["exp"])
        if exp - time.time() > 3600 * 24:
            return _fail("invalid_grant", "expiration is too far in the future")
        return self._issue()

    def _client_credentials(self, form: dict[str, str]) -> Response:
        creds = self.state.creds
        if (
            form.get("client_id") != creds.client_id
            or form.get("client_secret") != creds.client_secret
        ):
            return _fail("invalid_client", "invalid client credentials")
        return self._issue()

    def _password(self, form: dict[str, str]) -> Response:
        creds = self.state.creds
        if form.get("client_id") != creds.client_id or form.get("client_secret") not in (
            creds.client_secret,
            None,
        ):
            return _fail("invalid_client_id", "client identifier invalid")
        if form.get("username") != creds.username or form.get("password") != creds.password:
            return _fail("invalid_grant", "authentication failure")
        return self._issue()

    def _refresh_token(self, form: dict[str, str]) -> Response:
        creds = self.state.creds
        if form.get("client_id") != creds.client_id:
            return _fail("invalid_client_id", "client identifier invalid")
        if form.get("refresh_token") != creds.refresh_token:
            return _fail("invalid_grant", "expired access/refresh token")
        return self._issue()


def _fail(error: str, description: str) -> Response:
    code = 401 if error == "invalid_client" else 400
    return json_response(code, {"error": error, "error_description": description})
