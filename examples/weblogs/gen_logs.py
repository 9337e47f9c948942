"""Writes logs/access.log: 500 access-log lines from up to 30 clients over three days, reproducibly
(seed 7), in the Combined Log Format except for one client (curl, logged in the Common format).
The bundled file was made with `python3 gen_logs.py`; give a line count to make more.

Each client visits one to four times; a visit's hits are seconds to minutes apart, with an
occasional pause of 20 to 40 minutes (a new session at the default 30-minute gap, or not), and
pages load their stylesheet and script in the same second. Lines are in time order except that
a few neighbours are swapped, as in logs merged from several servers."""

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

rng = random.Random(7)
target = int(sys.argv[1]) if len(sys.argv) > 1 else 500

ips = (
    [f"192.0.2.{n}" for n in rng.sample(range(1, 255), 12)]
    + [f"198.51.100.{n}" for n in rng.sample(range(1, 255), 10)]
    + [f"203.0.113.{n}" for n in rng.sample(range(1, 255), 7)]
    + ["2001:db8::7"] * 3
)
pages = (
    ["/", "/index.html", "/about.html", "/products", "/cart", "/checkout", "/contact.html"]
    + [f"/products/{n}" for n in range(1, 9)]
    + [f"/blog/{slug}" for slug in ("hello-world", "release-2-0", "mapreduce-in-wasm")]
)
weights = [12, 8, 3, 9, 4, 2, 2] + [5, 4, 3, 3, 2, 2, 1, 1] + [3, 2, 1]
agents = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/129.0 Safari/537.36",
    "curl/8.9.1",
]
start = datetime(2026, 10, 10, tzinfo=timezone.utc)

hits = []  # (time, ip, method, target, status, bytes, referer, agent, common)
while len(hits) < target:
    ip = rng.choice(ips)
    agent = agents[3] if ip == "2001:db8::7" else rng.choice(agents[:3])
    common = agent.startswith("curl")
    t = start + timedelta(seconds=rng.randrange(3 * 86400 - 3 * 3600))
    referer = "-"
    for _ in range(rng.randint(2, 12)):
        page = rng.choices(pages, weights)[0]
        method, status, size = "GET", rng.choices([200, 304, 404], [90, 7, 3])[0], None
        target_ = page
        if page == "/checkout" and rng.random() < 0.5:
            method, status = "POST", 302
        if page == "/products" and rng.random() < 0.3:
            target_ = f"/products?sort={rng.choice(['price', 'name'])}&page={rng.randint(1, 3)}"
        size = "-" if status in (302, 304) else str(rng.randint(300, 40000))
        hits.append((t, ip, method, target_, status, size, referer, agent, common))
        if page in ("/", "/index.html") and not common:
            for asset, n in (("/static/app.css", 4211), ("/static/app.js", 18733)):
                hits.append((t, ip, "GET", asset, 200, str(n), f"https://shop.example{page}", agent, False))
        referer = f"https://shop.example{page}"
        pause = rng.random()
        if pause < 0.08:
            t += timedelta(minutes=rng.randint(20, 40), seconds=rng.randrange(60))
        else:
            t += timedelta(seconds=rng.randint(1, 600))

hits.sort(key=lambda h: h[0])
for i in range(len(hits) - 1):
    if rng.random() < 0.04:
        hits[i], hits[i + 1] = hits[i + 1], hits[i]

lines = []
for t, ip, method, target_, status, size, referer, agent, common in hits:
    line = f'{ip} - - [{t.strftime("%d/%b/%Y:%H:%M:%S +0000")}] "{method} {target_} HTTP/1.1" {status} {size}'
    if not common:
        line += f' "{referer}" "{agent}"'
    lines.append(line)
out = Path(__file__).parent / "logs" / "access.log"
out.write_text("\n".join(lines) + "\n")
print(f"{out}: {len(lines)} lines")
