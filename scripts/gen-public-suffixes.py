#!/usr/bin/env python3
"""Regenerates crates/waf/data/public_suffix_list.txt from the Public Suffix
List (default: Debian's package, /usr/share/publicsuffix/public_suffix_list.dat):
rules only, lower case, Unicode rules also in punycode, sorted bytewise."""
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/publicsuffix/public_suffix_list.dat"
out = sys.argv[2] if len(sys.argv) > 2 else "crates/waf/data/public_suffix_list.txt"
rules = set()
for line in open(src, encoding="utf-8"):
    line = line.strip()
    if not line or line.startswith("//"):
        continue
    rule = line.split()[0].lower()
    rules.add(rule)
    bang = "!" if rule.startswith("!") else ""
    labels = [
        l if l == "*" or l.isascii() else "xn--" + l.encode("punycode").decode("ascii")
        for l in rule.lstrip("!").split(".")
    ]
    rules.add(bang + ".".join(labels))
with open(out, "w", encoding="utf-8") as f:
    f.write("\n".join(sorted(rules, key=lambda r: r.encode("utf-8"))) + "\n")
print(f"{len(rules)} rules -> {out}")
