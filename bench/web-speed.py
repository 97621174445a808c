#!/usr/bin/env python3
"""Times the relay's web page on a real plan: GET of the plan page, GET of
the live fragment (what an open page fetches on each change) and one web
edit (POST a status change: load, edit, group-committed store, fan-out),
against GET /healthz in the same run as the baseline. Medians of --runs.

Usage: bench/web-speed.py LINK [--runs 30]
LINK is a read-write link from `map share --web` on a running relay.
Standard library only (urllib with a cookie jar)."""
import argparse
import http.cookiejar
import re
import statistics
import time
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("link")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    quiet = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    base = args.link.split("/web/")[0]
    page = opener.open(args.link).read().decode()
    plan_path = re.search(r'action="(/web/plans/[^/"]+)/name"', page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    if plan_path:
        data = urllib.parse.urlencode({"csrf": csrf, "name": "Bench Buyer"}).encode()
        opener.open(base + plan_path.group(1) + "/name", data).read()
        path = plan_path.group(1)
    else:
        path = re.search(r'data-live="(/web/plans/[^/"]+)/live"', page).group(1)
    page = opener.open(base + path).read().decode()
    task = re.search(r'id="task-([a-z0-9]+)"', page).group(1)

    def timed(fn):
        out = []
        for _ in range(args.runs):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
        return statistics.median(out)

    def edit(state=[0]):
        state[0] += 1
        status = "done" if state[0] % 2 else "todo"
        data = urllib.parse.urlencode({"csrf": csrf, "status": status}).encode()
        try:
            quiet.open(base + path + f"/tasks/{task}/status", data)
        except urllib.error.HTTPError as e:
            if e.code != 303:
                raise

    health = timed(lambda: opener.open(base + "/healthz").read())
    figures = {
        "GET /healthz (baseline)": health,
        "GET plan page": timed(lambda: opener.open(base + path).read()),
        "GET live fragment": timed(lambda: opener.open(base + path + "/live").read()),
        "POST status edit": timed(edit),
    }
    for name, ms in figures.items():
        print(f"{name:28} median {ms:8.2f} ms  ({ms / health:6.1f}x baseline)")


if __name__ == "__main__":
    main()
