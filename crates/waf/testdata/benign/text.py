"""Pools of realistic values for the benign corpus generator (generate.py).

Everything here is what real users and clients put in real requests: names
with apostrophes, prose that happens to use SQL or shell words, markdown with
inline HTML, text in many scripts, URLs with query strings, long tokens.
None of it is an attack, and none of it comes from an attack corpus.
"""

import base64
import json
import struct
import zlib

FIRST = ["Liam", "Olivia", "Noah", "Emma", "Sean", "Siobhán", "José", "Zoë", "Jürgen",
         "François", "Ngozi", "Priya", "Wei", "Yuki", "Mateus", "Aleksandr", "Fatima",
         "Anne-Marie", "Jean-Luc", "Björn", "Chloé", "Dmitri", "Agnieszka", "Oluwaseun"]
LAST = ["O'Brien", "O'Connor", "D'Angelo", "Müller", "García", "Nguyen", "Smith",
        "van der Berg", "Okafor", "Kowalski", "Johansson", "Dubois", "Rossi", "Tanaka",
        "Singh", "Ivanova", "McDonald", "Al-Sayed", "Da Silva", "L'Estrange", "Schröder"]
CJK_NAMES = ["田中太郎", "山田花子", "王伟", "李娜", "김민준", "Дмитрий Петров", "محمد علي"]

DOMAINS = ["example.com", "example.org", "example.net", "mail.example.co.uk",
           "corp.example.io", "uni-example.de", "example.fr"]

WORDS = ["alpha", "atlas", "beacon", "cobalt", "delta", "ember", "falcon", "granite",
         "harbor", "iris", "juniper", "kestrel", "lumen", "meridian", "nimbus", "orchid",
         "pioneer", "quartz", "raven", "summit", "tundra", "umbra", "vertex", "willow"]

REPOS = ["website", "api-server", "docs", "infra", "mobile-app", "design-system",
         "data-pipeline", "cli", "terraform-modules", "helm-charts", "blog", "sdk-python"]

# Plain prose, several languages.
PROSE = [
    "Thanks for the quick reply! I'll try again tomorrow morning.",
    "Could you please select the best option for the customer and update the order?",
    "We can't reproduce this on Firefox, but it happens every time on Safari 17.",
    "Please drop me a line when the new schedule is ready.",
    "The union meeting has been moved to Thursday at 3 pm in room 4B.",
    "Order by Friday to get free shipping; delivery takes 3-5 business days.",
    "Shaun O'Brien's team owns the billing service, so I've assigned it to them.",
    "It's a 50% discount for the first 3 months, then $12.99/month.",
    "Where can I find the invoices from last year? I need them for my tax return.",
    "Insert the SIM card, then restart the phone and wait for the signal.",
    "Let's group by region and sort the results from highest to lowest.",
    "The \"Save\" button doesn't do anything when the form has an empty field.",
    "Meeting notes: 1) budget approved 2) hiring freeze lifted 3) offsite in May.",
    "Our café on Rue de l'Église is open 7/7, from 8:00 to 22:00.",
    "Can we delete the old backups from 2019 and create a new retention policy?",
    "I updated the README and added a section about running tests locally.",
    "Script for tonight's rehearsal: act 2, scene 1 — please bring your copies.",
    "Customer said: \"The package arrived damaged, I'd like a refund or a replacement.\"",
    "Between you & me, the old dashboard was faster; can we compare both?",
    "If the value is null or empty, fall back to the default currency (EUR).",
    "Rock 'n' roll night at the Johnson's place — bring snacks & drinks!",
    "Execute the migration plan after the board signs off on the budget.",
    "Select all that apply: wifi, parking, breakfast, pool, pets allowed.",
    "Version 2.4.1 fixes the login loop when the session cookie expires.",
    "Merci pour votre commande ! Elle sera expédiée sous 48 heures.",
    "Bitte überprüfen Sie Ihre Adresse, bevor Sie die Bestellung abschließen.",
    "¿Podrías enviarme el informe trimestral antes del viernes? ¡Gracias!",
    "Obrigado pelo retorno, vou verificar o pedido nº 4521 hoje à tarde.",
    "Grazie mille per l'aiuto, l'aggiornamento funziona perfettamente.",
    "Спасибо за быстрый ответ, всё работает как надо.",
    "ご連絡ありがとうございます。明日の会議は10時からです。",
    "感谢您的反馈，我们会在下个版本中修复这个问题。",
    "회의 자료를 공유해 주셔서 감사합니다. 내일 검토하겠습니다.",
    "شكراً لتواصلك معنا، سنرد على طلبك خلال يومي عمل.",
    "आपका ऑर्डर भेज दिया गया है और जल्द ही पहुंच जाएगा।",
    "Dziękuję za szybką odpowiedź, wszystko działa poprawnie.",
    "Tack för hjälpen! Vi ses på fredag kl. 14:00.",
    "Great work everyone 🎉 the release is out 🚀",
    "The temperature ranged from -5 °C to +12 °C; expect rain on Sunday.",
    "Use the coupon code SPRING-2024 at checkout (valid until 31/05).",
]

# Markdown with the inline HTML, links and code that issue trackers and forums
# accept and render (GitHub, Gitea, Discourse, Jira comments).
MARKDOWN = [
    "## Steps to reproduce\n\n1. Open the settings page\n2. Click **Save**\n3. See the error\n\n"
    "Expected: the form is saved.\nActual: nothing happens.",
    "<details><summary>Full log</summary>\n\n```\nINFO  starting server on :8080\nWARN  config value "
    "'timeout' is deprecated, use 'request_timeout'\n```\n\n</details>",
    "Looks good to me 👍 — one nit: could you rename `getUserById` to `findUser`?",
    "See https://example.com/docs/getting-started?version=2.1&lang=en#install for details.",
    "> I think we should select the simplest approach here.\n\nAgreed, let's keep it simple.",
    "| Browser | Works |\n|---|---|\n| Chrome 131 | ✅ |\n| Firefox 133 | ✅ |\n| Safari 17 | ❌ |",
    "Fixed in #1234. Thanks @octocat and @O'Neil for the review!",
    "- [x] Update the changelog\n- [ ] Add tests\n- [ ] Ask Mary-Kate O'Hara for a review",
    "<img width=\"640\" alt=\"screenshot\" src=\"https://user-images.example.com/12345/67890-abc.png\">",
    "Run `cargo build --release` and then `./target/release/app --config ./config.toml`.",
    "The query the ORM generates is:\n\n```sql\nSELECT id, name FROM users WHERE org_id = $1 ORDER BY "
    "name LIMIT 50\n```\n\nwhich is fine with the new index.",
    "On Windows the path is `C:\\Users\\me\\AppData\\Roaming\\app\\settings.json`, on Linux "
    "`~/.config/app/settings.json`.",
    "Reproduced with Python 3.12:\n\n```python\nimport app\nprint(app.load('data.csv', sep=';'))\n```",
    "Bumps [lodash](https://github.com/lodash/lodash) from 4.17.20 to 4.17.21.\n\n<p>Release notes</p>",
    "I'd love to help with this one. Is it still open?",
    "Closing as a duplicate of #88 — let's continue the discussion there.",
    "Note: `<br>` tags in the description are rendered as line breaks since v3.",
    "**Environment**\n- OS: Ubuntu 24.04\n- Node: v20.11.1\n- Browser: Chrome 131",
    "Config snippet:\n\n```yaml\nserver:\n  port: 8080\n  hosts: [\"a.example.com\", \"b.example.com\"]\n```",
    "Try `curl -s https://api.example.com/v1/status | jq .version` to check the version.",
]

TITLES = [
    "Login page doesn't load on Safari", "Add dark mode to the dashboard",
    "Update dependencies for Q3", "Fix typo in the README", "Crash when uploading a large file",
    "Support for O'Reilly book covers", "Select the best default for time zones",
    "Order confirmation e-mail is sent twice", "Improve search results for accented words",
    "Mise à jour de la documentation", "Fehler beim Speichern des Profils",
    "Error al exportar a CSV", "翻訳の更新", "Drop support for Node 16",
    "Q4 planning: union of both roadmaps", "Release v2.4.1", "Refactor the payment module",
    "Where do we store the backups?", "Allow \"&\" in project names", "Café menu for May",
]

SEARCHES = [
    "is:open label:bug", "select the best option", "how to delete a table row in excel",
    "union station parking", "O'Brien", "rock & roll", "C++ templates", "50% off",
    "café near me", "what is the difference between null and undefined",
    "order by date", "café crème", "Zürich", "東京 ラーメン", "résumé template",
    "insert image in google docs", "where to buy", "drop shipping", "\"exact phrase\" search",
    "price < 100", "shell script tutorial", "java.lang.NullPointerException",
    "best laptop 2024", "script writing course", "update firmware",
]

FILES = [
    ("Q3 report (final).pdf", "application/pdf"), ("photo 2024-05-01 12.30.45.jpg", "image/jpeg"),
    ("café-menu.png", "image/png"), ("résumé.pdf", "application/pdf"),
    ("O'Brien contract.docx",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("data_export.csv", "text/csv"), ("notes.txt", "text/plain"), ("avatar.png", "image/png"),
    ("screenshot.png", "image/png"), ("backup-2024-06.zip", "application/zip"),
]

# Small but real file contents of each type.
def _png():
    """A real 16x16 RGB PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"".join(bytes((x * 16, y * 16, 128)) for x in range(16))
                    for y in range(16))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = _png()
JPEG = bytes.fromhex("ffd8ffe000104a46494600010101004800480000ffdb004300") + bytes(range(64)) + \
    bytes.fromhex("ffd9")
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages "
       b"/Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
ZIP = bytes.fromhex("504b0506") + bytes(18)
CSV = "id;name;city;amount\n1;Siobhán O'Brien;Dublin;12.50\n2;José García;Sevilla;7.00\n" \
      "3;\"Smith, John\";London;100.00\n"


def file_bytes(content_type):
    return {
        "image/png": PNG, "image/jpeg": JPEG, "application/pdf": PDF, "application/zip": ZIP,
        "text/csv": CSV.encode(), "text/plain": "Shopping list:\n- milk\n- eggs\n- café\n".encode(),
    }.get(content_type, PDF)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(rng):
    """An HS256/RS256-shaped JWT like identity providers issue."""
    header = {"alg": rng.choice(["RS256", "HS256"]), "typ": "JWT", "kid": rand_hex(rng, 16)}
    payload = {"sub": str(rng.randint(10**5, 10**9)), "iss": "https://auth.example.com/",
               "aud": "api", "iat": 1717000000 + rng.randint(0, 10**6),
               "exp": 1718000000 + rng.randint(0, 10**6), "scope": "read write",
               "name": rng.choice(FIRST) + " " + rng.choice(LAST)}
    sig = bytes(rng.randrange(256) for _ in range(rng.choice([32, 256])))
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()),
                     b64url(sig)])


def rand_alnum(rng, n):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                   for _ in range(n))


def rand_hex(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def email(rng):
    first = rng.choice(FIRST).lower().encode("ascii", "ignore").decode() or "user"
    last = rng.choice(LAST).lower().replace(" ", "").encode("ascii", "ignore").decode() or "x"
    local = rng.choice([f"{first}.{last}", f"{first}+{rng.choice(WORDS)}", f"{first[0]}{last}"])
    return f"{local}@{rng.choice(DOMAINS)}"
