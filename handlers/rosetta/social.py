"""Social login (OAuth2 / OpenID Connect) for apps and the web app: placeholder, being written."""

from sanic import Blueprint

bp = Blueprint("rosetta_social")
