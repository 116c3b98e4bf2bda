#!/usr/bin/env python3
"""Runs the README's "Using the terminal shell" section as written, top to bottom, and fails
on the first command that does not do what the README says.

Each line of its ```sh blocks is run with bash in a scratch directory, with these
substitutions only (a reader would do the same by hand):
- `cargo run -p carepass-cli --` / `cargo run -p carepass-sandbox --` run the binaries that
  `cargo build` made (the same program, without a cargo per line);
- the port 8787 and the paths /tmp/platform, /tmp/phone and /tmp/carepass-* become a free
  port and fresh scratch paths (so a run does not meet an earlier one);
- `'CP1:…'` is a code the phone shows just then for the line's --purpose
  (`carepass code --purpose P --once`), `BILL_ID` is the newest pending bill in
  `carepass bills --json`, and `LINK_ID` the newest link the signed-in phone asked for
  (`carepass family list --json`).
A line ending in `&` runs in the background (the sandbox is waited for until it answers);
the live `code` view (until Ctrl-C) runs for 3 s and must have drawn a code. Everything
started is stopped at the end.
"""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

root = pathlib.Path(__file__).resolve().parent.parent
target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", root / "target")) / "debug"
subprocess.run(["cargo", "build", "-q", "-p", "carepass-cli", "-p", "carepass-sandbox"], cwd=root, check=True)
cli, sandbox = str(target / "carepass"), str(target / "carepass-sandbox")

readme = (root / "README.md").read_text()
section = readme.split("## Using the terminal shell", 1)[1].split("\n## ", 1)[0]
lines = []
for block in re.findall(r"```sh\n(.*?)```", section, re.S):
    lines += [l for l in block.splitlines() if l.strip()]
if len(lines) < 15:
    sys.exit(f"the README's terminal section has {len(lines)} command lines; expected the whole walk-through")

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
scratch = pathlib.Path(tempfile.mkdtemp(prefix="carepass-readme-"))
env = {k: v for k, v in os.environ.items() if not k.startswith("CAREPASS_")}
env["HOME"] = str(scratch / "home")  # the terminal's config (data keys) goes here
env["XDG_CONFIG_HOME"] = str(scratch / "home" / ".config")
background = []


def sub(line):
    line = line.replace("cargo run -p carepass-cli --", cli).replace("cargo run -p carepass-sandbox --", sandbox)
    line = line.replace("8787", str(port)).replace("/tmp/platform", str(scratch / "platform"))
    line = line.replace("/tmp/carepass-", str(scratch / "out-"))
    return line.replace("/tmp/phone", str(scratch / "phone"))


def run(cmd, timeout=120):
    return subprocess.run(["bash", "-c", cmd], cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)


def fail(line, out):
    sys.exit(f"README line failed: {line}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}")


try:
    for raw in lines:
        line = sub(raw)
        print(f"$ {raw}", flush=True)
        if "'CP1:…'" in line:
            purpose = re.search(r"--purpose (\S+)", line).group(1)
            code = run(f"{cli} code --purpose {purpose} --once")
            if code.returncode != 0:
                fail("(a fresh code)", code)
            line = line.replace("'CP1:…'", "'" + code.stdout.splitlines()[0] + "'")
        if "BILL_ID" in line:
            listed = run(f"{cli} bills --json")
            if listed.returncode != 0:
                fail("(the pending bill)", listed)
            pending = [b for b in json.loads(listed.stdout) if b["state"] == "pending"]
            if not pending:
                sys.exit(f"README line {raw!r}: no pending bill to pay")
            line = line.replace("BILL_ID", pending[0]["id"])
        if "LINK_ID" in line:
            listed = run(f"{cli} family list --json")
            if listed.returncode != 0:
                fail("(the newest link)", listed)
            asked = json.loads(listed.stdout)["acting_for"]
            if not asked:
                sys.exit(f"README line {raw!r}: no link was asked for")
            line = line.replace("LINK_ID", asked[0]["link"]["link_id"])
        m = re.match(r"export (.*)$", line)
        if m:
            for pair in m.group(1).split():
                k, v = pair.split("=", 1)
                env[k] = v
            continue
        if line.endswith("&"):
            p = subprocess.Popen(["bash", "-c", "exec " + line[:-1]], cwd=scratch, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)
            background.append(p)
            if " serve " in line:
                for _ in range(300):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                        break
                    except OSError:
                        if p.poll() is not None:
                            sys.exit(f"the sandbox exited: {p.stdout.read()}")
                        time.sleep(0.1)
                else:
                    sys.exit("the sandbox did not answer within 30 s")
            else:
                time.sleep(1.5)
                if p.poll() is not None:
                    sys.exit(f"README line {raw!r} ended at once: {p.stdout.read()}")
            continue
        if re.search(r" code --purpose \S+$", line):
            # The live view: draws until Ctrl-C.
            try:
                out = run(line, timeout=3)
                fail(raw, out)
            except subprocess.TimeoutExpired as e:
                shown = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                if "CP1:" not in shown and "█" not in shown and "▀" not in shown:
                    sys.exit(f"README line {raw!r}: the live code view drew nothing in 3 s: {shown!r}")
            continue
        out = run(line)
        if out.returncode != 0:
            fail(raw, out)
        tail = out.stdout.strip().splitlines()[-2:]
        for t in tail:
            print(f"  {t[:160]}")
    print(f"README: {len(lines)} lines ran as written")
finally:
    for p in background:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=5)
        except Exception:
            os.killpg(p.pid, signal.SIGKILL)
