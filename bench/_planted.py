"""Realistic fake secrets of many kinds, in their real formats (prefixes, lengths, alphabets,
JWT structure, a real RSA key block), generated from a seed: never real credentials. Shared by
bench/scrub.py and tests/test_scrub.py."""

from __future__ import annotations

import base64
import json
import random
import string
import urllib.parse
from collections.abc import Callable

AZ09 = string.ascii_letters + string.digits
UP09 = string.ascii_uppercase + string.digits
LOW09 = string.ascii_lowercase + string.digits
B32 = string.ascii_uppercase + "234567"  # AWS key ids: base32


def _s(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def _b64url(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _rsa_block(r: random.Random) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode().strip()


#: kind -> (placeholder kind expected, value generator, how it appears in code: {v} = value)
GENERATORS: dict[str, tuple[str, Callable[[random.Random], str], str]] = {
    "aws_access_key": ("AWS_ACCESS_KEY", lambda r: "AKIA" + _s(r, B32, 16),
                       'AWS_ACCESS_KEY_ID = "{v}"'),
    "aws_secret_key": ("SECRET", lambda r: _s(r, AZ09 + "/+", 40),
                       'aws_secret_access_key = "{v}"'),
    "github_token": ("GITHUB_TOKEN", lambda r: "ghp_" + _s(r, AZ09, 36),
                     'headers = {{"Authorization": "token {v}"}}'),
    "gitlab_token": ("GITLAB_TOKEN", lambda r: "glpat-" + _s(r, AZ09 + "_-", 20),
                     'GITLAB = "{v}"'),
    "slack_token": ("SLACK_TOKEN", lambda r: f"xoxb-{_s(r, string.digits, 12)}-"
                    f"{_s(r, string.digits, 13)}-{_s(r, LOW09, 24)}",
                    "# slack bot: {v}"),
    "stripe_key": ("STRIPE_KEY", lambda r: "sk_live_" + _s(r, AZ09, 24),
                   "stripe.api_key = '{v}'"),
    "twilio_key": ("TWILIO_KEY", lambda r: "SK" + _s(r, "0123456789abcdef", 32),
                   'client = Client("{v}", auth)'),
    "jwt": ("JWT", lambda r: ".".join([
        _b64url({"alg": "HS256", "typ": "JWT"}),
        _b64url({"sub": _s(r, string.digits, 10), "name": _s(r, string.ascii_letters, 8)}),
        base64.urlsafe_b64encode(r.randbytes(32)).decode().rstrip("=")]),
        'TOKEN = "{v}"'),
    "npm_token": ("NPM_TOKEN", lambda r: "npm_" + _s(r, AZ09, 36),
                  "# .npmrc: //registry.npmjs.org/:_authToken={v}"),
    "pypi_token": ("PYPI_TOKEN", lambda r: "pypi-AgEIcHlwaS5vcmc" + _s(r, AZ09 + "-_", 80),
                   'TWINE_PASSWORD = "{v}"'),
    "openai_key": ("OPENAI_KEY", lambda r: "sk-" + _s(r, AZ09, 20) + "T3BlbkFJ"
                   + _s(r, AZ09, 20), 'openai.api_key = "{v}"'),
    "sendgrid_key": ("SENDGRID_KEY", lambda r: "SG." + _s(r, AZ09 + "_-", 22) + "."
                     + _s(r, AZ09 + "_-", 43), 'SENDGRID = "{v}"'),
    "azure_key": ("AZURE_KEY", lambda r: _s(r, AZ09 + "+/", 86) + "==",
                  'conn = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey={v}"'),
    "db_password": ("PASSWORD", lambda r: _s(r, AZ09, 14),
                    'DATABASE_URL = "postgresql://app:{v}@db.internal.corp:5432/prod"'),
    "password_assignment": ("PASSWORD", lambda r: _s(r, AZ09, 12) + "!",
                            'password = "{v}"'),
    "secret_assignment": ("SECRET", lambda r: _s(r, AZ09, 32), "client_secret = '{v}'"),
    "email": ("EMAIL", lambda r: f"{_s(r, string.ascii_lowercase, 7)}."
              f"{_s(r, string.ascii_lowercase, 6)}@{_s(r, string.ascii_lowercase, 8)}.io",
              "# Author: J. Doe <{v}>"),
    "ipv4": ("IP_ADDRESS", lambda r: f"{r.choice([23, 34, 52, 81, 104, 151, 185])}."
             f"{r.randint(1, 254)}.{r.randint(1, 254)}.{r.randint(1, 254)}",
             'SERVER = "{v}"'),
    "private_key": ("PRIVATE_KEY", _rsa_block, 'KEY = """{v}"""'),
    "github_fine_grained": ("GITHUB_TOKEN", lambda r: "github_pat_" + _s(r, AZ09, 22) + "_"
                            + _s(r, AZ09, 59), 'GH_TOKEN = "{v}"'),
    "github_app_token": ("GITHUB_TOKEN", lambda r: "ghs_" + _s(r, AZ09, 36),
                         "token = '{v}'"),
    "gcp_api_key": ("GCP_API_KEY", lambda r: "AIza" + _s(r, AZ09 + "_-", 35),
                    'GOOGLE_API_KEY = "{v}"'),
    "hf_token": ("HF_TOKEN", lambda r: "hf_" + _s(r, string.ascii_letters, 34),
                 'login(token="{v}")'),
    "anthropic_key": ("ANTHROPIC_KEY", lambda r: "sk-ant-api03-" + _s(r, AZ09 + "_-", 93)
                      + "AA", 'client = Anthropic(api_key="{v}")'),
    "slack_webhook": ("SLACK_WEBHOOK", lambda r: "https://hooks.slack.com/services/T"
                      + _s(r, UP09, 8) + "/B" + _s(r, UP09, 8) + "/" + _s(r, AZ09, 24),
                      'WEBHOOK = "{v}"'),
    "hash_password": ("PASSWORD", lambda r: _s(r, AZ09, 6) + "#" + _s(r, AZ09, 5) + ";x",
                      'DB_PASSWORD = "{v}"'),
}

#: the environment-variable name a kind is usually given (config, .env, YAML and JSON contexts)
NAMES = {"aws_access_key": "AWS_ACCESS_KEY_ID", "aws_secret_key": "AWS_SECRET_ACCESS_KEY",
         "db_password": "DATABASE_PASSWORD", "password_assignment": "PASSWORD",
         "hash_password": "DB_PASSWORD", "secret_assignment": "CLIENT_SECRET",
         "email": "AUTHOR_EMAIL", "ipv4": "SERVER_IP"}

#: how a value appears: (file suffix; None keeps the real file's), template over {N}: the
#: variable's name, {n}: the same lower-cased, {v}: the value
CONTEXTS: dict[str, tuple[str | None, str]] = {
    "assignment": (None, '{N} = "{v}"'),
    "dict": (None, 'settings = {{"{n}": "{v}", "timeout": 30}}'),
    "call": (None, 'connect(host="db", {n}="{v}")'),
    "comment": (None, "# {N}: {v}"),
    "docstring": (None, '"""Example::\n\n    export {N}={v}\n"""'),
    "env": (".env", "{N}={v}"),
    "yaml": (".yaml", "{n}: {v}"),
    "yaml_quoted": (".yml", '{n}: "{v}"'),
    "json": (".json", '{{"{n}": "{v}"}}'),
    "url": (None, 'URL = "https://{n}:{v}@api.internal.corp/v1"'),
}
#: lines around the planted one in a config file of its own
CONFIG_BODY = {".env": ["APP_ENV=production", "PORT=8080", "DEBUG=false"],
               ".yaml": ["app:", "  name: billing", "  port: 8080"],
               ".yml": ["service:", "  replicas: 3"],
               ".json": ['{{"name": "billing", "port": 8080}}']}


def name_of(kind: str) -> str:
    return NAMES.get(kind, kind.upper())


def plant_in(text: str, path: str, kind: str, context: str, r: random.Random,
             ) -> tuple[str, str, str]:
    """One value of `kind` written in `context`: inside the real file (a line of its own at a
    random line boundary) or, for a config context, as a config file of its own; returns
    (text, path, value). A private key keeps its own shape in every context."""
    _, gen, template = GENERATORS[kind]
    value = gen(r)
    suffix, shape = CONTEXTS[context]
    if kind == "private_key":
        shape = template if suffix is None else "key: |\n  " + "{v}".replace("\n", "\n  ")
        if suffix == ".env" or suffix == ".json":
            shape = template
            suffix = None
    name = name_of(kind)
    if context == "url" and kind != "private_key":  # userinfo is percent-encoded (RFC 3986)
        value = urllib.parse.quote(value, safe="")
    line = shape.format(N=name, n=name.lower(), v=value)
    if kind == "private_key" and suffix is not None:
        line = "key: |\n" + "\n".join("  " + x for x in value.split("\n"))
    if suffix is not None:
        body = CONFIG_BODY[suffix][:]
        if suffix == ".json":
            return '{\n  "name": "billing",\n  ' + line.strip("{}") + "\n}\n", \
                path + suffix, value
        body.insert(r.randint(0, len(body)), line)
        return "\n".join(body) + "\n", path.rsplit("/", 1)[0] + "/config" + suffix, value
    lines = text.split("\n")
    at = r.randint(0, len(lines))
    lines.insert(at, line)
    return "\n".join(lines), path, value


def plant(text: str, kind: str, r: random.Random, style: str = "code") -> tuple[str, str]:
    """`text` with one secret of `kind` inserted on a line of its own at a random line
    boundary, as code (the kind's template), a comment (`# ` + template) or a config line
    (`NAME=value`, dotenv style); returns (new text, the planted value)."""
    _, gen, template = GENERATORS[kind]
    value = gen(r)
    if style == "comment":
        template = "# " + template.lstrip("# ")
    elif style == "config" and kind != "private_key":
        template = kind.upper() + "={v}"
    lines = text.split("\n")
    at = r.randint(0, len(lines))
    indent = ""
    if at < len(lines):
        indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at, indent + template.format(v=value))
    return "\n".join(lines), value
